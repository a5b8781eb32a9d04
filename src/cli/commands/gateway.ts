import type { Command } from 'commander'
import { gatewayLoadOptions } from '../gateway-load.js'
import { formatUnits, parseUnits } from 'ethers'
import { loadContext, type CommandContext } from '../context.js'
import { untilSignal } from '../lifecycle.js'
import { collectList, parseIntFlag } from '../flags.js'
import { usageError } from '../../core/errors.js'
import { Store } from '../../core/store.js'
import { heuristDomain } from '../../core/typed-data.js'
import type { Identity } from '../../core/identity.js'
import { connectChain, minerEligibility, type Deployment, type ChainClient } from '../../chain/index.js'
import { findDeployment, parseHeuArg, rpcFor, withChainFlags, type ChainFlags } from '../chain.js'
import { Accounts, startGatewayService } from '../../gateway/index.js'
import { startGatewayPods } from '../pod-host.js'
import { chainStakeViews } from '../../validation/index.js'
import { nodeSource } from '../../dashboard/index.js'
import { relayRewardRoots, startNodeDashboard } from '../rewards.js'

async function connect (ctx: CommandContext, deployment: Deployment, id: Identity, flags: ChainFlags): Promise<ChainClient> {
  const rpc = rpcFor(ctx, flags)
  return await connectChain({ deployment, signer: id.wallet, ...(rpc !== undefined ? { rpc } : {}) })
}

/** No chain means no vouchers (miners on a paid network refuse the jobs) and no backed keys: only with --unpaid. */
function unbacked (what: string): never {
  throw usageError('CHAIN_NO_DEPLOYMENT', `no chain deployment: ${what}. Pass --rpc URL --deployment FILE, or run \`heurist deployment import --rpc URL\` once (see docs/multi-host.md); --unpaid runs without a chain on purpose`)
}

export function registerGateway (program: Command): void {
  const gw = withChainFlags(program.command('gateway'))
    .description('serve the OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/images/generations, /v1/models), routed over the mesh and paid with vouchers')
    .option('--port <port>', 'HTTP port (config gateway.port)')
    .option('--host <host>', 'address to listen on (config gateway.host)')
    .option('--bootstrap <multiaddr>', 'peer to join the mesh through (repeatable or comma-separated)', collectList)
    .option('--listen <multiaddr>', 'p2p listen address (repeatable)', collectList)
    .option('--unpaid', 'serve without a chain: no vouchers are signed, so only miners serving unpaid answer (local tests)')
    .action(async (opts: ChainFlags & { port?: string, host?: string, bootstrap?: string[], listen?: string[], unpaid?: boolean }, cmd: Command) => {
      const ctx = await loadContext(cmd, {
        'gateway.port': opts.port === undefined ? undefined : parseIntFlag('--port', opts.port, 0, 65535),
        'gateway.host': opts.host,
        'p2p.bootstrap': opts.bootstrap,
        'p2p.listen': opts.listen,
        'chain.rpc': opts.rpc,
        'chain.deployment': opts.deployment
      })
      const identity = await ctx.identity()
      const deployment = await findDeployment(ctx, opts)
      if (deployment === null && opts.unpaid !== true) unbacked('the gateway would sign no vouchers and pay no miner')
      // pods on chain: `model` may name a pod no miner hosts yet (miners scale up on the demand)
      const pods = await startGatewayPods(ctx, deployment)
      const store = await Store.open(ctx.paths.store)
      // validator stake is read from NodeRegistry: only validators get transcripts
      const reader = deployment === null ? null : await connect(ctx, deployment, identity, opts)
      try {
        const views = reader === null ? null : chainStakeViews(reader)
        const chain = deployment === null
          ? null
          : {
              voucherSigner: { wallet: identity.wallet, domain: heuristDomain(deployment.chainId, deployment.contracts.Payments) },
              receiptDomain: { chainId: deployment.chainId, verifyingContract: deployment.contracts.Slashing }
            }
        if (chain === null) ctx.logger.warn('--unpaid: no chain, jobs are served unpaid (no vouchers are signed)')
        const svc = await startGatewayService({
          identity,
          store,
          logger: ctx.logger,
          listen: ctx.config.p2p.listen,
          bootstrap: ctx.config.p2p.bootstrap,
          announce: ctx.config.p2p.announce,
          devnet: ctx.config.p2p.devnet,
          http: { host: ctx.config.gateway.host, port: ctx.config.gateway.port, metricsPublic: ctx.config.gateway.metricsPublic, coldStartTimeoutMs: ctx.config.pods.coldStartTimeoutMs, maxPricePerUnit: BigInt(ctx.config.gateway.maxPrice), ...gatewayLoadOptions(ctx.config) },
          ...(pods === null ? {} : { pods: pods.resolver }),
          // on a chain, only miners registered with collateral are routed to
          ...(reader === null ? {} : { eligible: minerEligibility(reader).isEligible }),
          chain,
          // Pay-by-User: a request without an API key pays from the caller's own deposit (402, X-PAYMENT)
          ...(reader === null || deployment === null ? {} : { payByUser: { chain: reader, asset: deployment.contracts.HeuristToken, withdrawDelaySeconds: BigInt(deployment.params.withdrawDelay), options: { settleThresholdWei: parseUnits(ctx.config.gateway.settleThreshold, 18) } } }),
          isValidator: async (a) => views !== null && await views.stakeOf(a) > 0n
        })
        // miners often hear validators only through the gateway: relay reward roots
        const unrelay = relayRewardRoots(svc.node, reader, ctx.logger)
        const dashboard = await startNodeDashboard(ctx, nodeSource({ role: 'gateway', miners: [], gateway: svc, chain: reader }), ctx.logger)
        ctx.print({ baseUrl: `${svc.gateway.url}/v1`, peerId: identity.peerId.toString(), address: identity.address, p2p: svc.node.multiaddrs(), paid: chain !== null, dashboard: dashboard?.url ?? null }, r =>
          `gateway ready: ${String(r.baseUrl)}\n  p2p  ${(r.p2p as string[]).join(' ')}${r.dashboard === null ? '' : `\n  dashboard  ${String(r.dashboard)}`}\nCtrl-C to stop.`)
        await untilSignal(ctx.logger, async () => { await dashboard?.stop(); unrelay(); await svc.stop() })
      } finally {
        reader?.close()
        pods?.stop()
        await store.close()
      }
    })

  const keys = gw.command('keys').description('API keys and credits of developers using this gateway')
  withChainFlags(keys.command('create'))
    .description('create an API key with credits; on a chain the credits are deposited into Payments from the operator key')
    .requiredOption('--credits <HEU>', 'credits in HEU (deposited into Payments when a chain is configured)')
    .option('--label <text>', 'a note to recognise the key by', '')
    .option('--unpaid', 'create the key without a chain: its credits are backed by nothing (for a gateway run with --unpaid)')
    .action(async (own: ChainFlags & { credits: string, label: string, unpaid?: boolean }, cmd: Command) => {
      // `gateway` declares --rpc, --deployment and --unpaid too, and commander gives them to it
      const opts = { ...cmd.optsWithGlobals<ChainFlags & { unpaid?: boolean }>(), ...own, ...(own.unpaid === true ? { unpaid: true } : {}) }
      const ctx = await loadContext(cmd, { 'chain.rpc': opts.rpc, 'chain.deployment': opts.deployment })
      const credits = parseHeuArg('--credits', opts.credits)
      if (opts.label.length > 128) throw usageError('CLI_BAD_FLAG', '--label: at most 128 characters')
      const deployment = await findDeployment(ctx, opts)
      if (deployment === null && opts.unpaid !== true) unbacked('the key\'s credits would be backed by no deposit')
      let depositTx: string | null = null
      if (deployment !== null && credits > 0n) {
        const chain = await connect(ctx, deployment, await ctx.identity(), opts)
        try {
          const txs = await chain.deposit(credits)
          depositTx = txs.at(-1)?.hash ?? null
        } finally {
          chain.close()
        }
      }
      const store = await Store.open(ctx.paths.store)
      try {
        const { apiKey, account } = await new Accounts(store).create(credits, opts.label)
        ctx.print({ apiKey, accountId: account.id, credits: credits.toString(), backedBy: depositTx === null ? null : { payments: deployment!.contracts.Payments, tx: depositTx } }, r =>
          `${String(r.apiKey)}\n  account ${String(r.accountId)}, ${formatUnits(credits, 18)} HEU${depositTx === null ? ' (not backed: no chain configured)' : `, deposited in Payments (tx ${depositTx})`}\n  the key is shown only now; keep it.`)
      } finally {
        await store.close()
      }
    })
}
