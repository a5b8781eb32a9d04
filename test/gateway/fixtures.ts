import type { Backend, Candidate, AdvertisedModel, JobOutcome } from '../../src/gateway/index.js'
import type { LlmRequest, LlmResult, ImageResult } from '../../src/inference/types.js'
import { createHash } from 'node:crypto'

/**
 * A scripted backend for faults a real engine cannot be made to show on cue (a miner that
 * hangs, dies before or after its first token). Each miner produces `tokens` one per
 * `delayMs`, honours its abort signal, and records what happened to each job.
 */
export type MinerMode = 'ok' | 'fail' | 'hang' | 'die-after-first-token'

export interface ScriptedMiner extends Candidate {
  mode: MinerMode
  tokens: string[]
  delayMs: number
  jobs: Array<{ request: LlmRequest, aborted: boolean, done: boolean }>
}

export const LLM_ID = createHash('sha256').update('scripted-llm').digest('hex')
export const IMG_ID = createHash('sha256').update('scripted-img').digest('hex')

export function miner (peerId: string, init: Partial<ScriptedMiner> = {}): ScriptedMiner {
  return { peerId, address: '0x' + createHash('sha256').update(peerId).digest('hex').slice(0, 40), modelLoaded: true, speed: 10, votes: 0n, uptime: 1, pricePerUnit: 1000n, mode: 'ok', tokens: ['Hel', 'lo', ' wor', 'ld'], delayMs: 5, jobs: [], ...init }
}

const sleep = async (ms: number, signal: AbortSignal): Promise<void> => await new Promise((resolve, reject) => {
  if (signal.aborted) { reject(signal.reason); return }
  const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
  const onAbort = (): void => { clearTimeout(t); reject(signal.reason) }
  signal.addEventListener('abort', onAbort, { once: true })
})

export function scriptedBackend (miners: ScriptedMiner[]): Backend & { miners: ScriptedMiner[] } {
  return {
    miners,
    models: (): AdvertisedModel[] => [
      { id: LLM_ID, name: 'scripted-llm', kind: 'llm', miners: miners.length },
      { id: IMG_ID, name: 'scripted-img', kind: 'image', miners: miners.length }
    ],
    candidates: (modelId) => modelId === LLM_ID || modelId === IMG_ID ? miners.map(m => ({ ...m })) : [],
    async runLlm (c, request, options): Promise<JobOutcome<LlmResult>> {
      const m = miners.find(x => x.peerId === c.peerId)!
      const job = { request, aborted: false, done: false }
      m.jobs.push(job)
      options.signal.addEventListener('abort', () => { job.aborted = true }, { once: true })
      if (m.mode === 'fail') throw new Error('miner refused the job')
      if (m.mode === 'hang') { await sleep(3_600_000, options.signal); throw new Error('unreachable') }
      const out: string[] = []
      const n = Math.min(m.tokens.length, request.sampling.maxTokens)
      for (let i = 0; i < n; i++) {
        await sleep(m.delayMs, options.signal)
        out.push(m.tokens[i]!)
        options.onToken?.(m.tokens[i]!)
        if (m.mode === 'die-after-first-token') throw new Error('connection reset by peer')
      }
      job.done = true
      const promptTokens = typeof request.input === 'string' ? request.input.length : request.input.length * 4
      return {
        result: { text: out.join(''), tokens: out.map((_, i) => i), finishReason: n < m.tokens.length ? 'length' : 'stop', usage: { promptTokens, outputTokens: n, ttftMs: m.delayMs, tokensPerSecond: 1000 / m.delayMs, totalMs: m.delayMs * n } },
        computeUnits: BigInt(promptTokens + n),
        receipt: { miner: m.address }
      }
    },
    async runImage (c, request, options): Promise<JobOutcome<ImageResult>> {
      const m = miners.find(x => x.peerId === c.peerId)!
      if (m.mode === 'fail') throw new Error('miner refused the job')
      await sleep(m.delayMs, options.signal)
      // a 1×1 PNG stands in for the picture; the real pipeline is tested in its own area
      const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC', 'base64')
      return { result: { png, pixelSha256: 'ab'.repeat(32), width: request.width, height: request.height, ms: m.delayMs, threads: 1, optimizationLevel: 'all' }, computeUnits: 10n }
    }
  }
}
