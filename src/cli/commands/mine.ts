import type { Command } from 'commander'
import { formatUnits, parseUnits } from 'ethers'
import { loadContext } from '../context.js'
import { withChainFlags, type ChainFlags } from '../chain.js'
import { collectList, parseIntFlag } from '../flags.js'
import { untilSignal } from '../lifecycle.js'
import { joinMesh, loadMinerModels, loadQuantizedSiblings, measureMinerMemory, receiptDomainFor, type MinerModels } from '../mesh.js'
import { Store } from '../../core/store.js'
import { usageError } from '../../core/errors.js'
import { heuristDomain } from '../../core/typed-data.js'
import { VoucherInbox } from '../../gateway/index.js'
import { VERSION } from '../version.js'
import { Advertiser, allAdmissions, basicHardware, budgetAdmission, depositAdmission, unpaidReceiptDomain, type Hardware } from '../../p2p/index.js'
import { depositReader } from '../../chain/index.js'
import { jobOverBudget, probeHardware } from '../../inference/index.js'
import { startMinerPods, type MinerPods } from '../pod-host.js'
import { CHEAT_MODES, assertCheatAllowed, cheatingExecutor, cheatQuant, parseCheatMode } from '../../validation/index.js'
import { nodeChain, rewardsDir, startMinerRewards, startNodeDashboard } from '../rewards.js'
import { recordClaimFailure } from '../../rewards/index.js'
import { FLOOR_WEI_PER_UNIT } from '../../economics/index.js'
import { startEarningsFeeds } from '../earnings-feeds.js'
import { nodeSource } from '../../dashboard/index.js'
import { Registry, minerMetrics, nodeMetrics, serveMetrics, type MetricsServer } from '../metrics-server.js'
import { createAlerts, loadOrAlert, startNodeWatch } from '../alerts.js'
import { MeshHealer, PartSupervisor, healingExecutor } from '../../ops/index.js'

interface MineOptions extends ChainFlags {
  models?: string[]
  listen?: string[]
  bootstrap?: string[]
  maxJobs?: string
  price?: string
  devnet?: boolean
  relay?: boolean
  cheat?: string
  autoClaim?: boolean
  dashboardPort?: string
  metricsPort?: string
}

/** GPU, VRAM, cores and RAM as the LLM runtime sees them; the OS view when it cannot start. */
async function hardware (gpu: 'auto' | 'cpu' | 'cuda' | 'vulkan' | 'metal', threads: number): Promise<Hardware> {
  try {
    const h = await probeHardware({ gpu, threads })
    const per = h.gpuNames.length === 0 ? 0 : Math.floor(h.vramTotalBytes / h.gpuNames.length)
    const free = h.gpuNames.length === 0 ? 0 : Math.floor(h.vramFreeBytes / h.gpuNames.length)
    return { gpus: h.gpuNames.slice(0, 16).map(name => ({ name: name.slice(0, 128), vramTotal: per, vramFree: free })), cpuCores: h.cpuCores, ramBytes: h.ramTotalBytes }
  } catch {
    return basicHardware()
  }
}

/** The gateways push each job's voucher just after the job ends: on shutdown, a moment for the last ones. */
const VOUCHER_SETTLE_MS = 1000

export function registerMine (program: Command): void {
  withChainFlags(program.command('mine'))
    .description('load models, join the mesh, advertise capacity and serve jobs (SIGINT/SIGTERM drains)')
    .option('--models <list>', 'models to serve: names, sha256 ids or paths, comma-separated (default: inference.models, else the built-in tiny models)', collectList)
    .option('--listen <multiaddr>', 'address to listen on (repeatable; default p2p.listen)', collectList)
    .option('--bootstrap <multiaddr>', 'peer to join through, with /p2p/<peerId> (repeatable; default p2p.bootstrap)', collectList)
    .option('--max-jobs <n>', 'jobs run at once (default mine.maxJobs)')
    .option('--price <wei>', 'price per compute unit in wei (default mine.price)')
    .option('--devnet', 'loopback-only relaxations for a local devnet (p2p.devnet)')
    .option('--relay', 'also serve as a circuit relay for miners behind NAT (p2p.relay = on; auto relays on a public listen address)')
    .option('--cheat <mode>', `testing aid for validators, devnet only: serve dishonest results and sign receipts for them (${CHEAT_MODES.join(', ')})`)
    .option('--no-auto-claim', 'do not claim epoch rewards automatically (mine.autoClaim; `heurist claim` works by hand)')
    .option('--dashboard-port <port>', 'local dashboard port on 127.0.0.1 (dashboard.port; 0 = any free one)')
    .option('--metrics-port <port>', 'serve Prometheus metrics on this port, GET /metrics (metrics.port; 0 = off)')
    .action(async (opts: MineOptions, cmd: Command) => {
      const cheat = opts.cheat === undefined ? null : parseCheatMode(opts.cheat)
      const ctx = await loadContext(cmd, {
        'inference.models': opts.models,
        'p2p.listen': opts.listen,
        'p2p.bootstrap': opts.bootstrap,
        'p2p.devnet': opts.devnet === true ? true : undefined,
        'p2p.relay': opts.relay === true ? 'on' : undefined,
        'mine.maxJobs': opts.maxJobs === undefined ? undefined : parseIntFlag('--max-jobs', opts.maxJobs, 1, 256),
        'mine.price': opts.price,
        'mine.autoClaim': opts.autoClaim === false ? false : undefined,
        'dashboard.port': opts.dashboardPort === undefined ? undefined : parseIntFlag('--dashboard-port', opts.dashboardPort, 0, 65535),
        'metrics.port': opts.metricsPort === undefined ? undefined : parseIntFlag('--metrics-port', opts.metricsPort, 0, 65535),
        'chain.rpc': opts.rpc,
        'chain.deployment': opts.deployment
      })
      const { logger, config } = ctx
      const redeemThreshold = parseUnits(config.mine.redeemThreshold, 18)
      // the chain first: a bad --rpc/--deployment is a usage error before the password is asked
      const domain = await receiptDomainFor(ctx, opts)
      const identity = await ctx.identity()
      if (cheat !== null) assertCheatAllowed(cheat, domain === null ? null : domain.chainId)
      if (domain === null) logger.warn('no chain configured (no --deployment, chain.deployment, deployment.json or devnet.json): serving jobs unpaid; `heurist deployment import --rpc URL` joins a chain (docs/multi-host.md)')
      const store = await Store.open(ctx.paths.store)
      const alerts = createAlerts(ctx, identity.address, 'mine')
      // the memory budget, measured before anything loads: fixed models and pods are placed against it
      const memory = await measureMinerMemory(ctx, logger)
      let watch: Awaited<ReturnType<typeof startNodeWatch>> | undefined
      let healer: MeshHealer | undefined
      let loaded: MinerModels | undefined
      // self-healing: a crashed engine is stopped and its models loaded again, with backoff
      const engine = new PartSupervisor<MinerModels>({
        name: 'engine', logger, alerts,
        start: async () => await loadMinerModels(ctx, config.inference.models, logger, { memory }),
        stop: async m => { await m.stop() },
        onStartFailed: e => { alerts.raise('model_load_failed', `models failed to load again: ${e.message}`, { model: config.inference.models.join(','), code: (e as { code?: string }).code ?? 'UNKNOWN', reason: e.message }) }
      })
      let node: Awaited<ReturnType<typeof joinMesh>> | undefined
      let pods: MinerPods | undefined
      let rewards: { stop: () => Promise<void> } | undefined
      let chain: Awaited<ReturnType<typeof nodeChain>> = null
      let inbox: VoucherInbox | null = null
      let metrics: MetricsServer | null = null
      try {
        loaded = await loadOrAlert(alerts, config.inference.models.join(',') || 'built-in tiny models', async () => await engine.start())
        const hw = await hardware(config.inference.gpu, config.inference.threads)
        node = await joinMesh(ctx, { store, serving: true })
        // self-healing: libp2p that stops on its own is started again in place (same key and handlers)
        healer = new MeshHealer({ node, logger, alerts })
        await healer.start()
        // pods (PodRegistry) load and unload beside the fixed models, by demand and votes
        pods = await startMinerPods(ctx, node, hw, memory)
        const podModels = pods
        if (cheat !== null) logger.warn({ cheat }, 'CHEATING on purpose (--cheat, a testing aid): results are dishonest and validators should slash this miner')
        const quant = cheat === null ? null : cheatQuant(cheat)
        if (quant !== null) await loadQuantizedSiblings(ctx, loaded, quant, logger)
        const executor = cheat === null ? healingExecutor(engine) : cheatingExecutor(cheat, { llm: loaded.llm, images: loaded.images, models: loaded.models, honest: loaded.executor })
        chain = domain === null ? null : await nodeChain(ctx, identity.wallet, logger)
        // on a chain, only requesters whose Payments deposit covers the job are served
        // (mine.serveUnpaid: everyone, for local use)
        const admit = chain === null || config.mine.serveUnpaid ? {} : { admit: depositAdmission({ depositOf: depositReader(chain), pricePerUnit: () => BigInt(config.mine.price) }) }
        const overBudget = budgetAdmission((job, model) => jobOverBudget(job, memory.budget.placement(model.id)?.demand))
        const server = await node.serveJobs(podModels.executor(executor), {
          maxConcurrentJobs: config.mine.maxJobs,
          maxQueue: config.inference.maxQueue,
          receiptDomain: domain ?? unpaidReceiptDomain,
          // a job needing more memory than its model was budgeted is refused before it starts
          admit: admit.admit === undefined ? overBudget : allAdmissions(overBudget, admit.admit)
        })
        // getting paid: the gateways' cumulative vouchers on /heurist/voucher/1.0.0, redeemed in
        // Payments once a payer owes mine.redeemThreshold, everything owed as soon as the chain
        // passes an epoch's end (inside its redemption window: points count only redeemed
        // payments), and whatever is left on shutdown
        if (chain !== null) {
          inbox = new VoucherInbox(node, store, chain, logger, { domain: heuristDomain(chain.deployment.chainId, chain.deployment.contracts.Payments), thresholdWei: redeemThreshold })
          await inbox.start()
          const price = BigInt(config.mine.price)
          const floor = FLOOR_WEI_PER_UNIT.llama < FLOOR_WEI_PER_UNIT.waifu ? FLOOR_WEI_PER_UNIT.llama : FLOOR_WEI_PER_UNIT.waifu
          if (price < floor) {
            logger.warn(`mine.price is ${price} wei per compute unit (--price WEI), under the protocol floor of ${floor}: ${price === 0n
              ? 'on this paid network the jobs this miner serves earn it nothing, neither payment nor points'
              : 'its jobs earn points only for the units their payments cover at the floor price'}`)
          }
        } else if (domain !== null) {
          logger.warn('the chain cannot be reached: vouchers are not accepted, so jobs earn nothing until it can')
        }
        if (config.metrics.port !== 0) {
          const registry = new Registry()
          nodeMetrics(registry, node, node.stats)
          minerMetrics(registry, server)
          metrics = await serveMetrics(registry, { host: config.metrics.host, port: config.metrics.port, logger })
        }
        const fixed = loaded.models
        const models = (): typeof fixed => cheat === null ? engine.current()?.models ?? [] : fixed
        const n = node
        const advertiser = new Advertiser(node, {
          intervalMs: config.mine.advertIntervalMs,
          describe: () => ({
            hardware: hw,
            models: [...models(), ...podModels.models()],
            queueDepth: server.queueDepth,
            maxJobs: config.mine.maxJobs,
            tokensPerSecond: server.stats.tokensPerSecond,
            imagesPerSecond: server.stats.imagesPerSecond,
            price: BigInt(config.mine.price),
            version: VERSION,
            paid: domain !== null,
            // per GPU: the budget left and the models placed there
            gpus: memory.gpus.map(g => ({ index: g.index, name: g.name, vramTotal: g.vramTotal, vramFree: g.vramFree, budgetFree: memory.budget.remaining()[g.device] ?? 0, modelIds: memory.budget.byDevice()[g.device] ?? [] }))
          })
        }, logger)
        advertiser.start()
        podModels.onChange(() => { advertiser.advertiseSoon() })
        // alerts.*: gas, slashes, idle while advertising, reachability lost
        const s = server.stats
        watch = await startNodeWatch(ctx, alerts, { operator: identity.address, chain, jobsArrived: () => s.served + s.failed + s.rejected + s.running + s.queued, advertising: () => true, reachability: node.reachability, podEvents: () => podModels.host?.manager.events ?? [] })
        const w = watch
        // epoch rewards (claim files, auto-claim) and the local dashboard
        const box = inbox
        const claimer = await startMinerRewards(ctx, node, store, chain, logger, {
          onClaimFailed: (e, code, reason) => { w.claimFailed(e, code, reason); recordClaimFailure(rewardsDir(ctx), e, code, reason).catch(() => {}) },
          // status' running-epoch estimate counts the vouchers held (redeemed at the epoch's end)
          ...(box === null ? {} : { owedWei: async () => await box.owedByTriple() })
        })
        const dashboard = await startNodeDashboard(ctx, nodeSource({ role: 'miner', miners: [{ node, jobs: server, claimer }], chain }), logger)
        // heurist earnings: verdicts on our receipts, and the ledger part while the store is locked
        const stopFeeds = claimer === null || chain === null ? null : startEarningsFeeds({ node, store, ledger: claimer.ledger, chain, operator: identity.address, rewardsDir: rewardsDir(ctx), jobsServed: () => server.stats.served, logger })
        rewards = { async stop () { stopFeeds?.(); await dashboard?.stop(); await claimer?.stop() } }
        logger.info({ address: identity.address, peerId: identity.peerId.toString(), addrs: node.multiaddrs(), dashboard: dashboard?.url, metrics: metrics?.url, models: fixed.map(m => ({ name: m.name, id: m.id, kind: m.kind })), paid: domain !== null, redeemThreshold: inbox === null ? null : config.mine.redeemThreshold, reachability: node.reachability.report().status }, 'miner ready')

        const tty = process.stderr.isTTY === true && ctx.config.log.format !== 'json'
        // what other hosts put in --bootstrap (docs/multi-host.md): the full address, with /p2p/
        if (tty) process.stderr.write(`p2p address (other hosts bootstrap from it):\n${node.multiaddrs().filter(a => !a.includes('/p2p-circuit')).map(a => `  ${a}`).join('\n')}\n`)
        const status = (): string => `peers ${n.connectedPeers().length} · miners heard ${n.peerTable.miners().length} · jobs served ${server.stats.served} (running ${server.stats.running}) · ${server.stats.tokensPerSecond.toFixed(1)} tok/s`
        const ticker = setInterval(() => {
          if (tty) process.stderr.write(`\r\x1b[2K${status()}`)
        }, 1000)
        const heartbeat = setInterval(() => {
          if (!tty) logger.info({ peers: n.connectedPeers().length, miners: n.peerTable.miners().length, served: server.stats.served, running: server.stats.running, tokensPerSecond: server.stats.tokensPerSecond }, 'miner status')
        }, 30_000)

        await untilSignal(logger, async () => {
          clearInterval(ticker)
          clearInterval(heartbeat)
          if (tty) process.stderr.write('\n')
          advertiser.stop()
          watch?.stop()
          await healer?.stop()
          await rewards?.stop()
          logger.info({ running: server.stats.running, graceMs: config.mine.drainGraceMs }, 'draining: no new jobs, finishing running ones')
          await server.drain(config.mine.drainGraceMs)
          const box = inbox
          if (box !== null) {
            if (server.stats.served > 0) await new Promise(resolve => setTimeout(resolve, Math.min(VOUCHER_SETTLE_MS, config.mine.drainGraceMs)))
            await box.stop()
            logger.info({ redeemed: box.stats.redeemed.toString(), redeemedHeu: formatUnits(box.stats.redeemed, 18), transactions: box.stats.transactions, vouchers: box.stats.received, refused: box.stats.refused }, 'vouchers redeemed')
          }
          await n.stop(0)
          logger.info({ served: server.stats.served }, 'miner stopped')
        })
        const redeemed = inbox?.stats.redeemed ?? 0n
        ctx.print({ served: server.stats.served, failed: server.stats.failed, rejected: server.stats.rejected, redeemed: redeemed.toString() }, r => `served ${r.served} jobs${inbox === null ? '' : `, redeemed ${formatUnits(redeemed, 18)} HEU`}`)
      } finally {
        await metrics?.stop().catch(() => {})
        watch?.stop()
        await healer?.stop().catch(() => {})
        await alerts.flush(3000)
        alerts.stop()
        await rewards?.stop().catch(() => {})
        await inbox?.stop().catch(() => {})
        chain?.close()
        await node?.stop(0).catch(() => {})
        await pods?.stop().catch(() => {})
        await engine.stop().catch(() => {})
        await store.close()
      }
    })
}
