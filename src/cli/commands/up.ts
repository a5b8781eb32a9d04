import type { Command } from 'commander'
import { gatewayLoadOptions } from '../gateway-load.js'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { formatUnits, parseUnits } from 'ethers'
import { loadContext, type CommandContext } from '../context.js'
import { untilSignal } from '../lifecycle.js'
import { collectList, parseIntFlag } from '../flags.js'
import { parseAddress, useDeployment } from '../chain.js'
import { loadMinerModels, loadQuantizedSiblings, type MinerModels } from '../mesh.js'
import { VERSION } from '../version.js'
import { usageError } from '../../core/errors.js'
import { Store } from '../../core/store.js'
import { identityFromPrivateKey, keystoreAddress } from '../../core/identity.js'
import { heuristDomain } from '../../core/typed-data.js'
import { createHeuristNode, Advertiser, basicHardware, depositAdmission, type HeuristNode } from '../../p2p/index.js'
import { startDevnet, connectChain, writeDeployment, minerEligibility, depositReader, type Devnet, type ChainClient } from '../../chain/index.js'
import { ensureTinyModels } from '../../inference/index.js'
import { startGatewayService, VoucherInbox, fetchTranscript, type GatewayService } from '../../gateway/index.js'
import { chainStakeViews, chainSlasher, startValidatorService, defaultValidatorOptions, cheatingExecutor, cheatQuant, parseCheatMode, CHEAT_MODES, type CheatMode, type GatewayTranscript, imageRerun } from '../../validation/index.js'
import { nodeSource, type MinerPart } from '../../dashboard/index.js'
import { relayRewardRoots, startMinerRewards, startNodeDashboard, startValidatorEpochs } from '../rewards.js'
import { hostPods, startGatewayPods } from '../pod-host.js'
import { parseSampleRate } from './validate.js'

const WAD = 10n ** 18n
/** A cheater also lies about its speed: the gateway routes LLM jobs to the fastest advert, so this draws them (and the validators' samples) to it. */
const CHEATER_TOKENS_PER_SECOND = 100_000
/** An idle devnet mines an empty block this often (ms). */
const UP_BLOCK_INTERVAL_MS = 2000

interface UpOptions { fund?: string[], miners: string, port: string, rpcPort: string, price: string, validator: boolean, validators: string, cheat?: string, dashboardPort?: string, sampleRate?: string }

interface UpConfig { fund: string[], miners: number, port: number, rpcPort: number, price: bigint, validators: number, cheat: CheatMode | null, dashboardPort: number | undefined, sampleRate: number }

interface Miner { node: HeuristNode, store: Store, models: MinerModels, advertiser: Advertiser, inbox: VoucherInbox, chain: ChainClient }

/**
 * `heurist up`: the whole network on this machine, on the built-in tiny models. The devnet
 * chain with the contracts, N miners registered with collateral (dev accounts 2…), a staked
 * validator (the next dev account), and a gateway (dev account 1) whose Payments deposit
 * backs a demo API key. Everything runs in
 * this process; its state lives under <home>/up and starts fresh each time.
 */
export function registerUp (program: Command): void {
  program.command('up')
    .description('the whole network on this machine: devnet chain with the contracts, tiny models, miners, a validator and a gateway with a funded demo API key')
    .option('--miners <n>', 'miners to start', '2')
    .option('--port <port>', 'gateway HTTP port (0 = any free one)', '8080')
    .option('--rpc-port <port>', 'devnet JSON-RPC port (0 = any free one)', '8545')
    .option('--price <wei>', 'miners\' price per compute unit, in wei', '1000000000')
    .option('--no-validator', 'do not start a validator (same as --validators 0)')
    .option('--validators <n>', 'staked validators to start (they re-check sampled jobs and co-sign epoch reward roots)', '1')
    .option('--sample-rate <p>', `probability that each validator checks a receipt (default ${defaultValidatorOptions.sampleRate})`)
    .option('--cheat <mode>', `the last miner cheats (a testing aid for validators: ${CHEAT_MODES.join(', ')})`)
    .option('--fund <address>', 'also fund this address with HEU and ETH, e.g. the operator key of another home folder that pays by user (repeatable or comma-separated)', collectList)
    .option('--dashboard-port <port>', 'local dashboard port on 127.0.0.1 (dashboard.port; 0 = any free one)')
    .action(async (opts: UpOptions, cmd: Command) => {
      const n = parseIntFlag('--miners', opts.miners, 1, 8)
      const port = parseIntFlag('--port', opts.port, 0, 65535)
      const rpcPort = parseIntFlag('--rpc-port', opts.rpcPort, 0, 65535)
      if (!/^(0|[1-9]\d{0,30})$/.test(opts.price)) throw usageError('CLI_BAD_FLAG', `--price: expected a whole number of wei, got ${JSON.stringify(opts.price)}`)
      const price = BigInt(opts.price)
      const validators = opts.validator ? parseIntFlag('--validators', opts.validators, 0, 8) : 0
      const cheat = opts.cheat === undefined ? null : parseCheatMode(opts.cheat)
      const sampleRate = opts.sampleRate === undefined ? defaultValidatorOptions.sampleRate : parseSampleRate(opts.sampleRate)
      const dashboardPort = opts.dashboardPort === undefined ? undefined : parseIntFlag('--dashboard-port', opts.dashboardPort, 0, 65535)
      const fund = (opts.fund ?? []).map(a => parseAddress('--fund', a))
      if (fund.length > 64) throw usageError('CLI_BAD_FLAG', '--fund: at most 64 addresses')
      const ctx = await loadContext(cmd)
      await runUp(ctx, { fund, miners: n, port, rpcPort, price, validators, cheat, dashboardPort, sampleRate })
    })
}

function progress (ctx: CommandContext): (step: string) => void {
  const t0 = Date.now()
  return (step) => {
    if (ctx.json) ctx.logger.info({ step }, 'up')
    else process.stderr.write(`  [${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${step}\n`)
  }
}

async function runUp (ctx: CommandContext, o: UpConfig): Promise<void> {
  const root = join(ctx.paths.root, 'up')
  // one `up` per home: the lock store is held while it runs, so a second one cannot wipe the first's state
  let lock: Store
  try {
    lock = await Store.open(join(ctx.paths.root, 'up.lock'))
  } catch (e) {
    if ((e as { code?: string }).code === 'STORE_LOCKED') throw usageError('UP_ALREADY_RUNNING', `heurist up is already running with the home folder ${ctx.paths.root}; stop it or use another --home`)
    throw e
  }
  try {
    await runLocked(ctx, o, root)
  } finally {
    await lock.close()
    // what up wrote outside its own folder goes with it: a stale lock or devnet.json would
    // send later commands (`status`, `stake`) to a chain that no longer runs
    await rm(join(ctx.paths.root, 'up.lock'), { recursive: true, force: true })
  }
}

async function runLocked (ctx: CommandContext, o: UpConfig, root: string): Promise<void> {
  const say = progress(ctx)
  await rm(root, { recursive: true, force: true })
  await mkdir(root, { recursive: true, mode: 0o700 })
  const cleanups: Array<() => Promise<unknown>> = []
  const stopAll = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(err => { ctx.logger.warn({ err: (err as Error).message }, 'stop step failed') })
    cleanups.length = 0
  }
  try {
    let devnet: Devnet
    try {
      // the home folder's operator (if any) is funded too, so `stake`, `vote` or `pod deploy` work beside `up`
      const operator = await keystoreAddress(ctx.paths.keystore)
      // a block every 2 s when idle, as a chain keeps time: validators build an epoch's root once
      // the latest block is past its redemption window (the payment cap), which needs blocks
      devnet = await startDevnet({ port: o.rpcPort, accounts: Math.max(10, o.miners + o.validators + 3), blockIntervalMs: UP_BLOCK_INTERVAL_MS, fund: [...new Set([...(operator === undefined ? [] : [operator]), ...o.fund])], onProgress: say })
    } catch (e) {
      throw (e as { code?: string }).code === 'CHAIN_PORT_IN_USE' ? usageError('CHAIN_PORT_IN_USE', `${(e as Error).message} (use --rpc-port 0 for any free port)`) : e
    }
    cleanups.push(async () => { await devnet.stop() })
    const d = devnet.deployment
    // other commands (`gateway keys create`, `stake`, `status`) find this chain through devnet.json
    await writeDeployment(ctx.paths.devnet, d)
    cleanups.push(async () => { await rm(ctx.paths.devnet, { force: true }) })
    // this chain's reward files live where `status`, `earnings` and `claim` look for them:
    // under chains/<deployment key>/, as every chain command scopes its paths
    useDeployment(ctx, d)
    const paymentsDomain = heuristDomain(d.chainId, d.contracts.Payments)
    const receiptDomain = { chainId: d.chainId, verifyingContract: d.contracts.Slashing }

    say('building the built-in tiny models (once)')
    await ensureTinyModels(ctx.paths.models, { onProgress: (name, done, total) => { say(`  tiny model ${name} (${done}/${total})`) } })

    // the gateway's node is the mesh's bootstrap peer
    const gwWallet = devnet.accounts[1]!
    const gwId = identityFromPrivateKey(gwWallet.privateKey)
    const gwStore = await Store.open(join(root, 'gateway'))
    cleanups.push(async () => { await gwStore.close() })
    say('starting the gateway')
    const gwChain = await connectChain({ deployment: d, signer: gwWallet })
    cleanups.push(async () => { gwChain.close() })
    const stakeViews = chainStakeViews(gwChain)
    // pods (heurist pod deploy): clients may name one no miner hosts yet; miners scale up on the demand
    const gwPods = await startGatewayPods(ctx, d)
    cleanups.push(async () => { gwPods?.stop() })
    const svc: GatewayService = await startGatewayService({
      identity: gwId,
      store: gwStore,
      logger: ctx.logger,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      devnet: true,
      // --cheat: the gateway refers the cheater (routing rank 2), so it draws jobs for the
      // validators to catch; an advertised speed no longer does (the gateway ranks what it observed)
      http: { host: ctx.config.gateway.host, port: o.port, coldStartTimeoutMs: ctx.config.pods.coldStartTimeoutMs, maxPricePerUnit: BigInt(ctx.config.gateway.maxPrice), referred: o.cheat === null ? [] : [identityFromPrivateKey(devnet.accounts[2 + o.miners - 1]!.privateKey).peerId.toString()], ...gatewayLoadOptions(ctx.config) },
      ...(gwPods === null ? {} : { pods: gwPods.resolver }),
      eligible: minerEligibility(gwChain).isEligible,
      chain: { voucherSigner: { wallet: gwId.wallet, domain: paymentsDomain }, receiptDomain },
      // Pay-by-User: a request without an API key pays from the caller's own deposit (402, X-PAYMENT)
      payByUser: { chain: gwChain, asset: d.contracts.HeuristToken, withdrawDelaySeconds: BigInt(d.params.withdrawDelay), options: { settleThresholdWei: parseUnits(ctx.config.gateway.settleThreshold, 18) } },
      isValidator: async (a) => await stakeViews.stakeOf(a) > 0n
    }).catch((e: unknown) => {
      throw (e as { code?: string }).code === 'GATEWAY_PORT_IN_USE' ? usageError('GATEWAY_PORT_IN_USE', `${(e as Error).message} (use --port 0 for any free port)`) : e
    })
    cleanups.push(async () => { await svc.stop() })
    // miners hear the validators' reward roots through the gateway, the mesh's hub here
    const unrelay = relayRewardRoots(svc.node, gwChain, ctx.logger)
    cleanups.push(async () => { unrelay() })
    const boot = svc.node.multiaddrs()[0]!
    const parts: MinerPart[] = []

    const miners: Miner[] = []
    for (let i = 0; i < o.miners; i++) {
      const wallet = devnet.accounts[2 + i]!
      say(`miner ${i + 1}/${o.miners}: registering ${wallet.address} with collateral, loading models`)
      const chain = await connectChain({ deployment: d, signer: wallet })
      cleanups.push(async () => { chain.close() })
      await chain.register(BigInt(d.params.minCollateral))
      const store = await Store.open(join(root, `miner-${i + 1}`))
      cleanups.push(async () => { await store.close() })
      const models = await loadMinerModels(ctx, [], ctx.logger)
      cleanups.push(async () => { await models.stop() })
      const node = await createHeuristNode({ identity: identityFromPrivateKey(wallet.privateKey), logger: ctx.logger, store, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [boot], devnet: true })
      cleanups.push(async () => { await node.stop(5000) })
      const pods = await hostPods(ctx, node, chain, basicHardware())
      cleanups.push(async () => { await pods.stop() })
      const cheating = o.cheat !== null && i === o.miners - 1
      if (cheating) ctx.logger.warn({ miner: wallet.address, cheat: o.cheat }, 'this miner CHEATS on purpose (--cheat): validators should slash it')
      const quant = cheating ? cheatQuant(o.cheat!) : null
      if (quant !== null) await loadQuantizedSiblings(ctx, models, quant, ctx.logger)
      const executor = cheating ? cheatingExecutor(o.cheat!, { llm: models.llm, images: models.images, models: models.models, honest: models.executor }) : models.executor
      // served only for requesters whose deposit covers the job (the gateway deposits below, before any job)
      const admit = ctx.config.mine.serveUnpaid ? {} : { admit: depositAdmission({ depositOf: depositReader(chain), pricePerUnit: () => o.price }) }
      const server = await node.serveJobs(pods.executor(executor), { maxConcurrentJobs: ctx.config.mine.maxJobs, maxQueue: ctx.config.inference.maxQueue, receiptDomain, ...admit })
      // redeem once mine.redeemThreshold is owed, everything owed once the chain passes an epoch's
      // end (inside its redemption window: points count redeemed payments), the rest at shutdown
      const inbox = new VoucherInbox(node, store, chain, ctx.logger, { domain: paymentsDomain, thresholdWei: parseUnits(ctx.config.mine.redeemThreshold, 18) })
      await inbox.start()
      cleanups.push(async () => { await inbox.stop() })
      const advertiser = new Advertiser(node, {
        intervalMs: 1000,
        describe: () => ({ hardware: basicHardware(), models: [...models.models, ...pods.models()], queueDepth: server.queueDepth, maxJobs: ctx.config.mine.maxJobs, tokensPerSecond: cheating ? CHEATER_TOKENS_PER_SECOND : server.stats.tokensPerSecond, imagesPerSecond: server.stats.imagesPerSecond, price: o.price, version: VERSION, paid: true })
      }, ctx.logger)
      advertiser.start()
      cleanups.push(async () => { advertiser.stop() })
      pods.onChange(() => { advertiser.advertiseSoon() })
      miners.push({ node, store, models, advertiser, inbox, chain })
      // epoch rewards: claim files under <home>/rewards, claimed at once (mine.autoClaim);
      // miner 1 keeps the points snapshot `heurist status` reads
      const claimer = await startMinerRewards(ctx, node, store, chain, ctx.logger, { snapshotFile: i === 0 ? 'points.json' : null, owedWei: async () => await inbox.owedByTriple() })
      cleanups.push(async () => { await claimer?.stop() })
      parts.push({ node, jobs: server, claimer })
    }

    const validatorAddresses: string[] = []
    const validatorAddrs: string[] = []
    for (let j = 0; j < o.validators; j++) {
      const wallet = devnet.accounts[2 + o.miners + j]!
      say(`validator ${j + 1}/${o.validators}: staking ${wallet.address}, loading models`)
      const chain = await connectChain({ deployment: d, signer: wallet })
      cleanups.push(async () => { chain.close() })
      await chain.registerValidator(BigInt(d.params.minValidatorStake))
      const store = await Store.open(join(root, `validator-${j + 1}`))
      cleanups.push(async () => { await store.close() })
      const loaded = await loadMinerModels(ctx, [], ctx.logger, { imageThreads: 1 })
      cleanups.push(async () => { await loaded.stop() })
      const node = await createHeuristNode({ identity: identityFromPrivateKey(wallet.privateKey), logger: ctx.logger, store, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [boot], devnet: true })
      // validators gossip verdicts among themselves and the gateway does not relay them:
      // connect each validator to those before it
      for (const a of validatorAddrs) await node.dial(a).catch(err => { ctx.logger.warn({ err: (err as Error).message }, 'validator could not dial another validator') })
      validatorAddrs.push(node.multiaddrs()[0]!)
      cleanups.push(async () => { await node.stop(0) })
      // co-signs each finished epoch's reward root and posts it once a quorum signed
      const epochs = await startValidatorEpochs(ctx, node, store, chain, wallet, ctx.logger, join(root, `validator-${j + 1}-rewards`))
      cleanups.push(async () => { await epochs?.stop() })
      const rerunImage = imageRerun(loaded.images, id => usageError('VALIDATION_MODEL_NOT_LOADED', `image model ${id.slice(0, 12)} is not loaded here`))
      const v = startValidatorService({
        node,
        wallet,
        domain: receiptDomain,
        logger: ctx.logger,
        llm: loaded.llm,
        rerunImage,
        ...chainStakeViews(chain),
        slash: chainSlasher(chain),
        fetchFromGateway: async (peer, jobId, signal) => await fetchTranscript(node, peer, jobId, { signal }) as GatewayTranscript,
        onVerdict: m => { epochs?.recordVerdict(m).catch(() => {}) },
        options: { sampleRate: o.sampleRate }
      })
      cleanups.push(async () => { v.stop() })
      validatorAddresses.push(wallet.address)
    }

    say('funding the demo API key (Payments deposit)')
    const credits = 100n * WAD
    await gwChain.deposit(credits)
    const { apiKey } = await svc.accounts.create(credits, 'heurist up demo')

    say('waiting for the miners\' adverts to reach the gateway')
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      const seen = new Set(svc.node.peerTable.miners().map(m => m.address.toLowerCase()))
      if (miners.every(m => seen.has(m.node.address.toLowerCase()))) break
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    const models = svc.backend.models()
    if (models.length === 0) throw usageError('UP_NO_MINERS', 'no miner advert reached the gateway within 60 s')

    const dashboard = await startNodeDashboard(ctx, nodeSource({ role: 'up', miners: parts, gateway: svc, chain: gwChain }), ctx.logger, o.dashboardPort)
    cleanups.push(async () => { await dashboard?.stop() })

    const baseUrl = `${svc.gateway.url}/v1`
    const llm = models.find(m => m.kind === 'llm')?.name ?? models[0]!.name
    if (ctx.json) {
      process.stdout.write(JSON.stringify({
        baseUrl, apiKey, rpcUrl: devnet.rpcUrl, dashboard: dashboard?.url ?? null, p2p: svc.node.multiaddrs(),
        miners: miners.map(m => m.node.address), validators: validatorAddresses, validatorP2p: validatorAddrs, cheater: o.cheat === null ? null : miners[miners.length - 1]!.node.address
      }) + '\n')
    } else {
      process.stdout.write([
        '',
        `heurist is up: ${o.miners} miner${o.miners === 1 ? '' : 's'}, ${validatorAddresses.length === 0 ? 'no validator' : `${validatorAddresses.length} validator${validatorAddresses.length === 1 ? '' : 's'}`}, a gateway, and the devnet chain.`,
        `  base URL  ${baseUrl}`,
        `  API key   ${apiKey}   (${formatUnits(credits, 18)} HEU of credits)`,
        `  chain     ${devnet.rpcUrl}   (chain id ${d.chainId})`,
        `  models    ${models.map(m => `${m.name} (${m.kind})`).join(', ')}`,
        ...(dashboard === null ? [] : [`  dashboard ${dashboard.url}`]),
        '',
        'Try it:',
        `  curl ${baseUrl}/chat/completions \\`,
        `    -H "Authorization: Bearer ${apiKey}" -H "Content-Type: application/json" \\`,
        `    -d '{"model":"${llm}","messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'`,
        '',
        'Ctrl-C stops everything.',
        ''
      ].join('\n'))
    }
    await untilSignal(ctx.logger, async () => {
      say('stopping: gateway, miners (redeeming their vouchers), chain')
      await stopAll()
    })
  } finally {
    await stopAll()
  }
}
