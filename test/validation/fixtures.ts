import { join } from 'node:path'
import { createLlamaEngine, ensureTinyModels, type CachedModel, type LlamaEngine, type ModelInfo, type SamplingParams } from '../../src/inference/index.js'
import type { JobExecutor, JobOutput, JobRequest } from '../../src/p2p/index.js'
import { cheatingExecutor, type CheatMode } from '../../src/validation/index.js'

export const sampling: SamplingParams = { seed: 1, temperature: 0.8, topP: 0.95, topK: 40, maxTokens: 32, stop: [] }

export interface TinyLlms { engine: LlamaEngine, a: CachedModel, b: CachedModel, models: ModelInfo[] }

/** Both tiny LLMs in one engine, one thread (the suite shares 2 cores). */
export async function loadTinyLlms (dir: string): Promise<TinyLlms> {
  const made = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama', 'tiny-llama-b'] })
  const a = made.find(m => m.name === 'tiny-llama')!
  const b = made.find(m => m.name === 'tiny-llama-b')!
  const engine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 64 })
  await engine.load(a.path, { id: a.id, name: a.name })
  await engine.load(b.path, { id: b.id, name: b.name })
  return { engine, a, b, models: engine.loaded() }
}

export function honestLlmExecutor (engine: LlamaEngine, models: ModelInfo[]): JobExecutor {
  return {
    models: () => models,
    async execute (job, o) {
      if (job.kind !== 'llm') throw new Error('llm only')
      return { kind: 'llm', result: await engine.generate({ modelId: job.modelId, input: job.input, sampling: job.sampling, ...(job.constraint === undefined ? {} : { constraint: job.constraint }) }, { signal: o.signal }) }
    }
  }
}

export function minerExecutor (t: TinyLlms, mode: CheatMode | 'honest'): JobExecutor {
  const honest = honestLlmExecutor(t.engine, t.models)
  return mode === 'honest' ? honest : cheatingExecutor(mode, { llm: t.engine, images: new Map(), models: t.models, honest })
}

/** Job i of a fixed, varied list: prompts, chat, seeds and sampling params differ. */
export function llmJob (modelId: string, i: number): Extract<JobRequest, { kind: 'llm' }> {
  const variants: Array<Partial<SamplingParams>> = [{}, { temperature: 1.0, topK: 0, topP: 0.9 }, { temperature: 0.6, topK: 20, topP: 1 }, { temperature: 1.2, topK: 60, topP: 0.98 }]
  const input = i % 5 === 4 ? [{ role: 'user' as const, content: `question ${i}` }] : `prompt number ${i}:`
  return { kind: 'llm', modelId, input, sampling: { ...sampling, ...variants[i % variants.length], seed: 1000 + i } }
}

export async function run (ex: JobExecutor, job: JobRequest): Promise<JobOutput> {
  return await ex.execute({ v: 1, type: 'request', jobId: '0x' + '00'.repeat(32), timeoutMs: 60_000, ...job } as never, { signal: new AbortController().signal })
}

import { randomBytes } from 'node:crypto'
import type { Wallet } from 'ethers'
import { POOL } from '../../src/core/typed-data.js'
import { inputHashOf, outputHashOf, paramsHashOf, signReceipt, type ReceiptDomainOptions, type SignedReceipt } from '../../src/p2p/index.js'

/** The receipt a miner signs for a job it ran (as the job server does). */
export async function receiptFor (wallet: Wallet, request: JobRequest, out: JobOutput, domain: ReceiptDomainOptions, jobId = '0x' + randomBytes(32).toString('hex')): Promise<SignedReceipt> {
  const now = BigInt(Math.floor(Date.now() / 1000))
  return await signReceipt(wallet, {
    jobId,
    requester: wallet.address,
    miner: wallet.address,
    modelId: '0x' + request.modelId,
    pool: POOL[request.kind],
    inputHash: inputHashOf(request),
    outputHash: outputHashOf(out),
    paramsHash: paramsHashOf(request),
    computeUnits: 1n,
    startedAt: now,
    endedAt: now
  }, domain)
}
