import { z } from 'zod'
import type { Store, Repository } from '../core/store.js'

/**
 * Transcripts (input and output of each job) kept for a retention window so validators can
 * re-check sampled receipts. Keys start with the zero-padded end time, so pruning is a range
 * scan from the oldest; a second bucket maps job id → time key.
 */
export interface TranscriptOptions {
  /** How long a transcript is kept. Default 7 days: one epoch, the time validators have to sample. */
  retentionMs: number
}
export const defaultTranscriptOptions: TranscriptOptions = { retentionMs: 7 * 24 * 3600_000 }

const transcriptSchema = z.object({
  jobId: z.string().max(100),
  modelId: z.string().max(100),
  kind: z.enum(['llm', 'image', 'embedding']),
  miner: z.string().max(100),
  input: z.unknown(),
  output: z.unknown(),
  endedAt: z.number().int().nonnegative()
})
export type Transcript = z.infer<typeof transcriptSchema>

export class Transcripts {
  private readonly repo: Repository<Transcript>
  private readonly index: Repository<string>
  readonly options: TranscriptOptions

  constructor (private readonly store: Store, options: Partial<TranscriptOptions> = {}) {
    this.options = { ...defaultTranscriptOptions, ...options }
    this.repo = store.bucket('gw-transcripts', transcriptSchema)
    this.index = store.bucket('gw-transcript-ids', z.string().max(200))
  }

  private timeKey (t: Transcript): string {
    return `${String(t.endedAt).padStart(15, '0')}:${t.jobId}`
  }

  async put (t: Transcript): Promise<void> {
    const k = this.timeKey(t)
    await this.store.batch([{ type: 'put', repo: this.repo, key: k, value: t }, { type: 'put', repo: this.index, key: t.jobId, value: k }])
  }

  async get (jobId: string, now = Date.now()): Promise<Transcript | undefined> {
    const k = await this.index.get(jobId)
    if (k === undefined) return undefined
    const t = await this.repo.get(k)
    if (t === undefined || now - t.endedAt > this.options.retentionMs) return undefined
    return t
  }

  /** Deletes transcripts older than the retention window; returns how many. */
  async prune (now = Date.now()): Promise<number> {
    const cutoff = String(now - this.options.retentionMs).padStart(15, '0')
    const old = await this.repo.entries({ lt: cutoff, limit: 10_000 })
    if (old.length > 0) await this.store.batch(old.flatMap(([k, t]) => [{ type: 'del' as const, repo: this.repo, key: k }, { type: 'del' as const, repo: this.index, key: t.jobId }]))
    return old.length
  }
}
