import type { Command } from 'commander'
import { basename } from 'node:path'
import { formatUnits } from 'ethers'
import { HeuristError, usageError } from '../../core/errors.js'
import { loadContext } from '../context.js'
import { collectList, parseIntFlag, parseNumberFlag } from '../flags.js'
import { joinMesh } from '../mesh.js'
import { openChain, txsHuman, withChainFlags, resolveDeployment, type ChainFlags } from '../chain.js'
import { connectChain, type ChainClient } from '../../chain/index.js'
import {
  DemandBoard, MAX_SHARE_BPS, deployPod, podIdHex, podRevenueThisEpoch, podStates, readPods, retirePod, advertVramMb,
  type MinerView
} from '../../pods/index.js'

const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/

/** A wallet without ETH cannot pay gas: say so instead of the node's opaque error. */
async function needGas (chain: ChainClient): Promise<void> {
  const a = await chain.signer!.getAddress()
  if (await chain.provider.getBalance(a) === 0n) throw new HeuristError('CHAIN_NO_GAS', `the signing wallet ${a} has no ETH to pay gas (fund it, e.g. \`heurist devnet\` funds the operator)`)
}

interface DeployOptions extends ChainFlags { model: string, sha256: string, kind: string, minVram: string, shareBps: string, name?: string }
interface ListOptions extends ChainFlags { bootstrap?: string[], waitMs: string }

/** Flags checked before anything touches the chain: a bad value exits 2 naming the flag. */
export function parseDeployFlags (o: DeployOptions): { uri: string, sha256: string, kind: 'llm' | 'image', minVramMb: number, revenueBps: number, name: string } {
  const revenueBps = parseIntFlag('--share-bps', o.shareBps, 0, MAX_SHARE_BPS)
  let u: URL
  try { u = new URL(o.model) } catch { throw usageError('CLI_BAD_FLAG', `--model: expected the http(s) URL of the weights, got ${JSON.stringify(o.model)}`) }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usageError('CLI_BAD_FLAG', `--model: only http and https URLs, got ${u.protocol}`)
  if (o.model.length > 1024) throw usageError('CLI_BAD_FLAG', '--model: at most 1024 characters')
  const hex = o.sha256.startsWith('0x') ? o.sha256.slice(2) : o.sha256
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw usageError('CLI_BAD_FLAG', `--sha256: expected 64 hex digits (the sha256 of the weights), got ${JSON.stringify(o.sha256)}`)
  if (o.kind !== 'llm' && o.kind !== 'image') throw usageError('CLI_BAD_FLAG', `--kind: llm or image, got ${JSON.stringify(o.kind)}`)
  const minVramMb = Math.round(parseNumberFlag('--min-vram', o.minVram, 0, 4096) * 1024)
  const name = o.name ?? basename(u.pathname).replace(/\.[A-Za-z0-9]+$/, '')
  if (!NAME.test(name)) throw usageError('CLI_BAD_FLAG', `--name: letters, digits, . _ + - (at most 64, not starting with a symbol), got ${JSON.stringify(name)}`)
  return { uri: o.model, sha256: hex.toLowerCase(), kind: o.kind, minVramMb, revenueBps, name }
}

export function registerPod (program: Command): void {
  const pod = program.command('pod').description('pods: deploy a model for miners to host by demand and votes, list pods, retire one')

  withChainFlags(pod.command('deploy')
    .description('register a pod in PodRegistry (the signing wallet is the deployer and earns its share of the pod\'s revenue)')
    .requiredOption('--model <url>', 'http(s) URL miners pull the weights from')
    .requiredOption('--sha256 <hash>', 'sha256 of the weights: the pod id, checked by every miner after the download')
    .option('--kind <kind>', 'llm or image', 'llm')
    .option('--min-vram <GB>', 'least GPU memory a host needs, GB (0 = runs on CPU)', '0')
    .option('--share-bps <N>', 'the deployer\'s share of each payment, basis points (0–10000; the deployment may cap it lower)', '0')
    .option('--name <name>', 'the name clients send as `model` (default: the file name)'))
    .action(async (opts: DeployOptions, cmd: Command) => {
      const p = parseDeployFlags(opts)
      const { ctx, chain } = await openChain(cmd, opts)
      try {
        const max = Number(await chain.read<bigint>(chain.contracts.pods, 'maxRevenueBps'))
        if (p.revenueBps > max) throw usageError('CLI_BAD_FLAG', `--share-bps: this deployment allows at most ${max} bps, got ${p.revenueBps}`)
        await needGas(chain)
        const txs = await deployPod(chain, p)
        const deployer = await chain.signer!.getAddress()
        ctx.print({ podId: '0x' + p.sha256, name: p.name, kind: p.kind, minVramMb: p.minVramMb, shareBps: p.revenueBps, uri: p.uri, deployer, transactions: txs },
          r => `pod ${String(r.name)} deployed: ${String(r.podId)}\n${txsHuman(txs)}`)
      } finally {
        chain.close()
      }
    })

  withChainFlags(pod.command('list')
    .description('pods with their votes, the miners hosting them now (from adverts), pending demand and revenue this epoch')
    .option('--bootstrap <multiaddr>', 'peer to join the mesh through, to hear adverts and demand (repeatable; default p2p.bootstrap)', collectList)
    .option('--wait-ms <ms>', 'how long to listen to the mesh (0 = chain only)', '3000'))
    .action(async (opts: ListOptions, cmd: Command) => {
      const ctx = await loadContext(cmd, { 'p2p.bootstrap': opts.bootstrap })
      const waitMs = parseIntFlag('--wait-ms', opts.waitMs, 0, 600_000)
      const { deployment, rpc } = await resolveDeployment(ctx, opts)
      const chain = await connectChain({ deployment, ...(rpc === undefined ? {} : { rpc }) })
      try {
        const pods = await readPods(chain)
        let miners: MinerView[] = []
        let demand = new Map<string, number>()
        if (waitMs > 0 && ctx.config.p2p.bootstrap.length > 0) {
          // a listener only: a throwaway key, and no port to open
          const node = await joinMesh(ctx, { ephemeral: true, listen: [], needs: { capacity: true } })
          const board = new DemandBoard(node, ctx.logger)
          board.start()
          try {
            await new Promise(resolve => setTimeout(resolve, waitMs))
            const ids = new Set(pods.map(p => p.id))
            miners = node.peerTable.miners().map(e => ({ address: e.address, vramMb: advertVramMb(e), hosting: e.advert.models.map(m => m.id).filter(id => ids.has(id)) }))
            demand = board.totals()
          } finally {
            board.stop()
            await node.stop()
          }
        }
        const states = podStates(pods, demand, miners)
        const rows: Array<Record<string, unknown> & { id: string, name: string, kind: string, status: string, reason: string, votes: bigint, hosts: string[], pending: number, revenueThisEpoch: bigint, shareBps: number, minVramMb: number }> = []
        for (const [i, p] of pods.entries()) {
          const s = states[i]!
          rows.push({
            id: '0x' + p.id,
            name: p.name,
            kind: p.kind,
            minVramMb: p.minVramMb,
            deployer: p.deployer,
            shareBps: p.revenueBps,
            uri: p.uri,
            retired: p.retired,
            votes: p.votes,
            hosts: miners.filter(m => m.hosting.includes(p.id)).map(m => m.address),
            pending: demand.get(p.id) ?? 0,
            revenueThisEpoch: await podRevenueThisEpoch(chain, p.id),
            status: s.state,
            reason: s.reason,
            desiredHosts: s.desired
          })
        }
        ctx.print({ pods: rows, miners: miners.length, listenedMs: ctx.config.p2p.bootstrap.length > 0 ? waitMs : 0 }, () => rows.length === 0
          ? 'no pods deployed'
          : rows.map(r => `${r.name}  ${r.id.slice(0, 14)}…  ${r.kind}  ${r.status} (${r.reason})\n  votes ${formatUnits(r.votes, 18)} stHEU · hosts ${r.hosts.length} · pending ${r.pending} · revenue this epoch ${formatUnits(r.revenueThisEpoch, 18)} HEU · share ${r.shareBps} bps · min VRAM ${(r.minVramMb / 1024).toFixed(1)} GB`).join('\n'))
      } finally {
        chain.close()
      }
    })

  withChainFlags(pod.command('retire <id>')
    .description('retire a pod you deployed: miners unload it and gateways stop routing to it'))
    .action(async (id: string, opts: ChainFlags, cmd: Command) => {
      let hex: string
      try { hex = podIdHex(id) } catch { throw usageError('CLI_BAD_ID', `id: expected 0x and 64 hex digits (the pod id), got ${JSON.stringify(id)}`) }
      const { ctx, chain } = await openChain(cmd, opts)
      try {
        await needGas(chain)
        const txs = await retirePod(chain, hex)
        ctx.print({ podId: '0x' + hex, retired: true, transactions: txs }, () => `pod 0x${hex} retired\n${txsHuman(txs)}`)
      } finally {
        chain.close()
      }
    })
}
