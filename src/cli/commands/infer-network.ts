// `heurist infer --network`: the mesh client. The local path stays in infer.ts.
import type { CommandContext } from '../context.js'
import { HeuristError, isHeuristError, usageError } from '../../core/errors.js'
import { joinMesh, receiptDomainFor } from '../mesh.js'
import { unpaidReceiptDomain, type MinerEntry, type JobRequest } from '../../p2p/index.js'
import { parseIntFlag } from '../flags.js'
import { inputFromFlags, samplingFromFlags, type InferFlags } from './infer.js'
import { imageRequestFromFlags } from './infer-image.js'
import { deliveredPixels } from '../../inference/index.js'
import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'

export interface NetworkFlags extends InferFlags {
  bootstrap?: string[]
  /** Address or PeerId of the miner to use (default: picked from adverts). */
  miner?: string
  waitMs?: string
}

/**
 * Routing over live adverts, in the whitepaper's order (§2.2.2) as far as adverts tell it:
 * miners with the model loaded, then the fastest, then the shortest queue; ties at random.
 */
export function rankMiners (miners: MinerEntry[]): MinerEntry[] {
  const r = new Map(miners.map(m => [m, Math.random()]))
  return [...miners].sort((a, b) =>
    (b.advert.tokensPerSecond - a.advert.tokensPerSecond) ||
    (a.advert.queueDepth / Math.max(1, a.advert.maxJobs) - b.advert.queueDepth / Math.max(1, b.advert.maxJobs)) ||
    (r.get(a)! - r.get(b)!))
}

export async function inferNetwork (ctx: CommandContext, prompt: string, opts: NetworkFlags): Promise<void> {
  const kind = opts.image === true ? 'image' as const : 'llm' as const
  const sampling = samplingFromFlags(opts)
  const image = kind === 'image' ? imageRequestFromFlags(prompt, opts) : null
  if (prompt.length > 200_000) throw usageError('INFER_PROMPT_TOO_LARGE', 'a network prompt is limited to 200,000 characters')
  const ref = opts.model ?? (kind === 'image' ? 'tiny-sd' : 'tiny-llama')
  const waitMs = opts.waitMs === undefined ? 10_000 : parseIntFlag('--wait-ms', opts.waitMs, 0, 600_000)
  const input = inputFromFlags(prompt, opts)
  if (ctx.config.p2p.bootstrap.length === 0) throw usageError('P2P_NO_BOOTSTRAP', 'infer --network needs a peer to join through: --bootstrap MULTIADDR or p2p.bootstrap')
  const domain = await receiptDomainFor(ctx)
  let ephemeral = false
  try { await ctx.identity() } catch (e) {
    if (!isHeuristError(e, 'KEY_NOT_FOUND')) throw e
    ephemeral = true
    ctx.logger.warn('no operator key: using a throwaway key for this request (run `heurist init` to be the requester on receipts)')
  }
  const node = await joinMesh(ctx, { ephemeral, listen: [], needs: { capacity: true } })
  const ac = new AbortController()
  const onSignal = (): void => { ac.abort() }
  process.once('SIGINT', onSignal)
  try {
    const matches = (m: MinerEntry): boolean => (opts.miner === undefined || m.address.toLowerCase() === opts.miner.toLowerCase() || m.peerId === opts.miner) &&
      m.advert.models.some(x => (x.name === ref || x.id === ref.toLowerCase()) && x.kind === kind)
    const end = Date.now() + waitMs
    while (Date.now() < end && !node.peerTable.miners().some(matches) && !ac.signal.aborted) await new Promise(resolve => setTimeout(resolve, 100))
    const candidates = rankMiners(node.peerTable.miners().filter(matches))
    if (candidates.length === 0) throw new HeuristError('P2P_NO_MINER', `no miner serving ${ref} heard within ${waitMs} ms`)
    let lastError: unknown
    for (const m of candidates.slice(0, 3)) {
      const model = m.advert.models.find(x => x.name === ref || x.id === ref.toLowerCase())!
      const job: JobRequest = image === null ? { kind: 'llm', modelId: model.id, input, sampling } : { kind: 'image', modelId: model.id, image }
      try {
        const r = await node.runJob(m.peerId, job, {
          signal: ac.signal,
          receiptDomain: m.advert.paid ? (domain ?? unpaidReceiptDomain) : unpaidReceiptDomain,
          onToken: ctx.json ? undefined : t => { process.stdout.write(t) }
        })
        if (r.output.kind === 'image') {
          const res = r.output.result
          // the receipt signs a pixel hash: it must be the delivered PNG's, or nothing is written
          const got = await deliveredPixels(res.png)
          if (r.receiptValid && (got === null || got.pixelSha256 !== res.pixelSha256 || got.width !== res.width || got.height !== res.height)) {
            r.receiptValid = false
            r.receiptProblem = 'the delivered PNG does not decode to the pixels the receipt signs'
          }
          if (opts.out !== undefined && r.receiptValid) await writeFile(resolve(opts.out), res.png)
          ctx.print({ miner: r.miner, peerId: r.peerId, model: model.name, modelId: model.id, jobId: r.jobId, seed: image?.seed, width: res.width, height: res.height, pixelSha256: res.pixelSha256, receipt: r.receipt, receiptValid: r.receiptValid, ...(r.receiptProblem === undefined ? {} : { receiptProblem: r.receiptProblem }) },
            x => `${opts.out === undefined ? 'image generated (no --out given, PNG not written)' : `wrote ${opts.out}`}: ${String(x.width)}×${String(x.height)} by ${String(x.miner)}, pixels sha256 ${String(x.pixelSha256)}, receipt ${x.receiptValid === true ? 'valid' : 'INVALID'}`)
        } else if (r.output.kind !== 'llm') {
          throw new HeuristError('P2P_PROTOCOL', 'a non-text result for a text job')
        } else if (ctx.json) {
          ctx.print({ text: r.output.result.text, miner: r.miner, peerId: r.peerId, model: model.name, modelId: model.id, jobId: r.jobId, seed: sampling.seed, receipt: r.receipt, receiptValid: r.receiptValid, ...(r.receiptProblem === undefined ? {} : { receiptProblem: r.receiptProblem }) })
        } else {
          process.stdout.write('\n')
          ctx.logger.info({ miner: r.miner, jobId: r.jobId, receiptValid: r.receiptValid, ttftMs: Math.round(r.ttftMs) }, 'done')
        }
        if (!r.receiptValid) {
          process.stderr.write(`heurist: the miner's receipt is not valid: ${r.receiptProblem ?? ''}\n`)
          process.exitCode = 1
        }
        return
      } catch (e) {
        if (ac.signal.aborted) throw e
        lastError = e
        ctx.logger.warn({ miner: m.address, code: isHeuristError(e) ? e.code : undefined, err: (e as Error).message }, 'job failed on this miner; trying the next')
      }
    }
    throw lastError instanceof HeuristError ? lastError : new HeuristError('P2P_JOB_FAILED', String((lastError as Error)?.message ?? lastError))
  } finally {
    process.off('SIGINT', onSignal)
    await node.stop()
  }
}
