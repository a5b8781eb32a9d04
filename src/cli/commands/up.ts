import type { Command } from 'commander'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { formatUnits } from 'ethers'
import { loadContext, type CommandContext } from '../context.js'
import { untilSignal } from '../lifecycle.js'
import { parseIntFlag } from '../flags.js'
import { loadMinerModels, type MinerModels } from '../mesh.js'
import { VERSION } from '../version.js'
import { usageError } from '../../core/errors.js'
import { Store } from '../../core/store.js'
import { identityFromPrivateKey } from '../../core/identity.js'
import { heuristDomain } from '../../core/typed-data.js'
import { createHeuristNode, Advertiser, basicHardware, type HeuristNode } from '../../p2p/index.js'
import { startDevnet, connectChain, writeDeployment, type Devnet, type ChainClient } from '../../chain/index.js'
import { ensureTinyModels } from '../../inference/index.js'
import { startGatewayService, VoucherInbox, fetchTranscript, type GatewayService } from '../../gateway/index.js'
import { chainStakeViews, chainSlasher, startValidatorService, type GatewayTranscript, type ImageRerun } from '../../validation/index.js'

const WAD = 10n ** 18n

interface UpOptions { miners: string, port: string, rpcPort: string, price: string, validator: boolean }

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
    .option('--no-validator', 'do not start the validator (it re-runs a sample of jobs)')
    .action(async (opts: UpOptions, cmd: Command) => {
      const n = parseIntFlag('--miners', opts.miners, 1, 8)
      const port = parseIntFlag('--port', opts.port, 0, 65535)
      const rpcPort = parseIntFlag('--rpc-port', opts.rpcPort, 0, 65535)
      if (!/^(0|[1-9]\d{0,30})$/.test(opts.price)) throw usageError('CLI_BAD_FLAG', `--price: expected a whole number of wei, got ${JSON.stringify(opts.price)}`)
      const price = BigInt(opts.price)
      const ctx = await loadContext(cmd)
      await runUp(ctx, { miners: n, port, rpcPort, price, validator: opts.validator })
    })
}

function progress (ctx: CommandContext): (step: string) => void {
  const t0 = Date.now()
  return (step) => {
    if (ctx.json) ctx.logger.info({ step }, 'up')
    else process.stderr.write(`  [${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${step}\n`)
  }
}

async function runUp (ctx: CommandContext, o: { miners: number, port: number, rpcPort: number, price: bigint, validator: boolean }): Promise<void> {
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
  }
}

async function runLocked (ctx: CommandContext, o: { miners: number, port: number, rpcPort: number, price: bigint, validator: boolean }, root: string): Promise<void> {
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
      devnet = await startDevnet({ port: o.rpcPort, accounts: Math.max(10, o.miners + 4), onProgress: say })
    } catch (e) {
      throw (e as { code?: string }).code === 'CHAIN_PORT_IN_USE' ? usageError('CHAIN_PORT_IN_USE', `${(e as Error).message} (use --rpc-port 0 for any free port)`) : e
    }
    cleanups.push(async () => { await devnet.stop() })
    const d = devnet.deployment
    // other commands (`gateway keys create`, `stake`, `status`) find this chain through devnet.json
    await writeDeployment(ctx.paths.devnet, d)
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
    const svc: GatewayService = await startGatewayService({
      identity: gwId,
      store: gwStore,
      logger: ctx.logger,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      devnet: true,
      http: { host: ctx.config.gateway.host, port: o.port },
      chain: { voucherSigner: { wallet: gwId.wallet, domain: paymentsDomain }, receiptDomain },
      isValidator: async (a) => await stakeViews.stakeOf(a) > 0n
    }).catch((e: unknown) => {
      throw (e as { code?: string }).code === 'GATEWAY_PORT_IN_USE' ? usageError('GATEWAY_PORT_IN_USE', `${(e as Error).message} (use --port 0 for any free port)`) : e
    })
    cleanups.push(async () => { await svc.stop() })
    const boot = svc.node.multiaddrs()[0]!

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
      const server = await node.serveJobs(models.executor, { maxConcurrentJobs: ctx.config.mine.maxJobs, maxQueue: ctx.config.inference.maxQueue, receiptDomain })
      // redeem once 0.01 HEU is owed, and whatever is left at shutdown
      const inbox = new VoucherInbox(node, store, chain, ctx.logger, { domain: paymentsDomain, thresholdWei: WAD / 100n })
      await inbox.start()
      cleanups.push(async () => { await inbox.stop() })
      const advertiser = new Advertiser(node, {
        intervalMs: 1000,
        describe: () => ({ hardware: basicHardware(), models: models.models, queueDepth: server.queueDepth, maxJobs: ctx.config.mine.maxJobs, tokensPerSecond: server.stats.tokensPerSecond, imagesPerSecond: server.stats.imagesPerSecond, price: o.price, version: VERSION, paid: true })
      }, ctx.logger)
      advertiser.start()
      cleanups.push(async () => { advertiser.stop() })
      miners.push({ node, store, models, advertiser, inbox, chain })
    }

    let validatorAddress: string | null = null
    if (o.validator) {
      const wallet = devnet.accounts[2 + o.miners]!
      say(`validator: staking ${wallet.address}, loading models`)
      const chain = await connectChain({ deployment: d, signer: wallet })
      cleanups.push(async () => { chain.close() })
      await chain.registerValidator(BigInt(d.params.minValidatorStake))
      const store = await Store.open(join(root, 'validator'))
      cleanups.push(async () => { await store.close() })
      const loaded = await loadMinerModels(ctx, [], ctx.logger)
      cleanups.push(async () => { await loaded.stop() })
      const node = await createHeuristNode({ identity: identityFromPrivateKey(wallet.privateKey), logger: ctx.logger, store, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [boot], devnet: true })
      cleanups.push(async () => { await node.stop(0) })
      const images = loaded.images
      const rerunImage: ImageRerun = async (request, _settings, signal) => {
        const model = images.get(request.modelId)
        if (model === undefined) throw usageError('VALIDATION_MODEL_NOT_LOADED', `image model ${request.modelId.slice(0, 12)} is not loaded here`)
        return await model.generate(request, { signal })
      }
      const v = startValidatorService({
        node,
        wallet,
        domain: receiptDomain,
        logger: ctx.logger,
        llm: loaded.llm,
        rerunImage,
        ...chainStakeViews(chain),
        slash: chainSlasher(chain),
        fetchFromGateway: async (peer, jobId, signal) => await fetchTranscript(node, peer, jobId, { signal }) as GatewayTranscript
      })
      cleanups.push(async () => { v.stop() })
      validatorAddress = wallet.address
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

    const baseUrl = `${svc.gateway.url}/v1`
    const llm = models.find(m => m.kind === 'llm')?.name ?? models[0]!.name
    if (ctx.json) {
      process.stdout.write(JSON.stringify({ baseUrl, apiKey, rpcUrl: devnet.rpcUrl }) + '\n')
    } else {
      process.stdout.write([
        '',
        `heurist is up: ${o.miners} miner${o.miners === 1 ? '' : 's'}, ${validatorAddress === null ? 'no validator' : 'a validator'}, a gateway, and the devnet chain.`,
        `  base URL  ${baseUrl}`,
        `  API key   ${apiKey}   (${formatUnits(credits, 18)} HEU of credits)`,
        `  chain     ${devnet.rpcUrl}   (chain id ${d.chainId})`,
        `  models    ${models.map(m => `${m.name} (${m.kind})`).join(', ')}`,
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
