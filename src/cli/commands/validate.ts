import type { Command } from 'commander'
import { loadContext } from '../context.js'
import { collectList, parseIntFlag } from '../flags.js'
import { untilSignal } from '../lifecycle.js'
import { joinMesh, loadMinerModels } from '../mesh.js'
import { createAlerts, loadOrAlert, startNodeWatch } from '../alerts.js'
import { MeshHealer } from '../../ops/index.js'
import { resolveDeployment, withChainFlags, type ChainFlags } from '../chain.js'
import { usageError } from '../../core/errors.js'
import { Store } from '../../core/store.js'
import { connectChain } from '../../chain/index.js'
import { fetchTranscript } from '../../gateway/index.js'
import { chainSlasher, chainStakeViews, defaultValidatorOptions, startValidatorService, type GatewayTranscript, imageRerun } from '../../validation/index.js'
import { startValidatorEpochs } from '../rewards.js'
import { Registry, nodeMetrics, serveMetrics, statsMetrics, type MetricsServer } from '../metrics-server.js'

interface ValidateOptions extends ChainFlags {
  sampleRate?: string
  models?: string[]
  listen?: string[]
  bootstrap?: string[]
  devnet?: boolean
  metricsPort?: string
}

export function parseSampleRate (raw: string): number {
  const p = Number(raw)
  if (!/^\d*\.?\d+(e-?\d+)?$/i.test(raw.trim()) || !Number.isFinite(p) || p <= 0 || p > 1) throw usageError('CLI_BAD_FLAG', `--sample-rate must be a probability in (0, 1], got ${JSON.stringify(raw)}`)
  return p
}

export function registerValidate (program: Command): void {
  withChainFlags(program.command('validate')
    .description('validate: sample receipts from the mesh, re-check their jobs, gossip signed verdicts, and submit slashing evidence once validators holding 2/3 of the stake agree')
    .option('--sample-rate <p>', `probability that a receipt is checked (default ${defaultValidatorOptions.sampleRate})`)
    .option('--models <list>', 'models to check jobs of: names, sha256 ids or paths (default: inference.models, else the built-in tiny models)', collectList)
    .option('--listen <multiaddr>', 'address to listen on (repeatable; default p2p.listen)', collectList)
    .option('--bootstrap <multiaddr>', 'peer to join through, with /p2p/<peerId> (repeatable; default p2p.bootstrap)', collectList)
    .option('--devnet', 'loopback-only relaxations for a local devnet (p2p.devnet)')
    .option('--metrics-port <port>', 'serve Prometheus metrics on this port, GET /metrics (metrics.port; 0 = off)'))
    .action(async (opts: ValidateOptions, cmd: Command) => {
      const sampleRate = opts.sampleRate === undefined ? defaultValidatorOptions.sampleRate : parseSampleRate(opts.sampleRate)
      const ctx = await loadContext(cmd, {
        'inference.models': opts.models,
        'p2p.listen': opts.listen,
        'p2p.bootstrap': opts.bootstrap,
        'p2p.devnet': opts.devnet === true ? true : undefined,
        'metrics.port': opts.metricsPort === undefined ? undefined : parseIntFlag('--metrics-port', opts.metricsPort, 0, 65535)
      })
      const { logger, config } = ctx
      const identity = await ctx.identity()
      const { deployment, rpc } = await resolveDeployment(ctx, opts)
      const chain = await connectChain({ deployment, rpc, signer: identity.wallet })
      const store = await Store.open(ctx.paths.store)
      const alerts = createAlerts(ctx, identity.address, 'validate')
      let watch: Awaited<ReturnType<typeof startNodeWatch>> | undefined
      let healer: MeshHealer | undefined
      let loaded: Awaited<ReturnType<typeof loadMinerModels>> | undefined
      let node: Awaited<ReturnType<typeof joinMesh>> | undefined
      let metrics: MetricsServer | null = null
      try {
        const views = chainStakeViews(chain)
        if (await views.stakeOf(identity.address) === 0n) {
          throw usageError('VALIDATION_NOT_A_VALIDATOR', `${identity.address} has no validator stake in NodeRegistry: run \`heurist register --validator --collateral <HEU>\` first`)
        }
        loaded = await loadOrAlert(alerts, config.inference.models.join(',') || 'built-in tiny models', async () => await loadMinerModels(ctx, config.inference.models, logger, { imageThreads: 1 }))
        const images = loaded.images
        // re-runs on 1 thread (the same bits on every machine); jobs the miner ran on more threads are compared by SSIM/dHash
        const rerunImage = imageRerun(loaded.images, id => usageError('VALIDATION_MODEL_NOT_LOADED', `image model ${id.slice(0, 12)} is not loaded here`))
        node = await joinMesh(ctx, { store, needs: { receipts: true } })
        const n = node
        // self-healing: libp2p that stops on its own is started again in place
        healer = new MeshHealer({ node: n, logger, alerts })
        await healer.start()
        const domain = { chainId: deployment.chainId, verifyingContract: deployment.contracts.Slashing }
        // epochs: at each epoch's end, the reward table, its root co-signed and posted at quorum
        const epochs = await startValidatorEpochs(ctx, n, store, chain, identity.wallet, logger)
        const svc = startValidatorService({
          node: n,
          wallet: identity.wallet,
          domain,
          logger,
          llm: loaded.llm,
          rerunImage,
          ...views,
          slash: chainSlasher(chain),
          fetchFromGateway: async (peer, jobId, signal) => await fetchTranscript(n, peer, jobId, { signal }) as GatewayTranscript,
          options: { sampleRate },
          onVerdict: m => { epochs?.recordVerdict(m).catch(err => { logger.warn({ err: (err as Error).message }, 'cannot record our verdict') }) }
        })
        logger.info({ address: identity.address, peerId: identity.peerId.toString(), addrs: n.multiaddrs(), sampleRate, models: loaded.models.map(m => m.name) }, 'validator ready')
        if (config.metrics.port !== 0) {
          const registry = new Registry()
          nodeMetrics(registry, n, n.stats)
          statsMetrics(registry, 'heurist_validator_events_total', 'validator events: receipts seen and sampled, checks passed and failed, verdicts, slashes, errors', () => ({ ...svc.validator.stats }))
          metrics = await serveMetrics(registry, { host: config.metrics.host, port: config.metrics.port, logger })
        }
        // alerts.*: gas for posting roots and slashes, reachability
        watch = await startNodeWatch(ctx, alerts, { operator: identity.address, chain, jobsArrived: null, advertising: () => false, reachability: n.reachability })
        const heartbeat = setInterval(() => { logger.info({ ...svc.validator.stats, peers: n.connectedPeers().length }, 'validator status') }, 10_000)
        await untilSignal(logger, async () => {
          clearInterval(heartbeat)
          await healer?.stop()
          svc.stop()
          await epochs?.stop()
          await n.stop(0)
        })
        ctx.print(svc.validator.stats, s => `checked ${s.passed + s.failed} jobs: ${s.passed} passed, ${s.failed} failed, ${s.windowsFailed} window tests failed, ${s.gatewayBlamed} transcripts blamed on gateways; ${s.slashesSubmitted} slashes submitted`)
      } finally {
        await metrics?.stop().catch(() => {})
        watch?.stop()
        await healer?.stop().catch(() => {})
        await alerts.flush(3000)
        alerts.stop()
        await node?.stop(0).catch(() => {})
        await loaded?.stop().catch(() => {})
        chain.close()
        await store.close()
      }
    })
}
