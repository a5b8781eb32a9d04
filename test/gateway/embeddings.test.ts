import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import OpenAI from 'openai'
import { createOpenAI } from '@ai-sdk/openai'
import { embed, embedMany } from 'ai'
import { OpenAIEmbeddings } from '@langchain/openai'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { ensureTinyModels, createLlamaEngine, type LlamaEngine, type ModelInfo } from '../../src/inference/index.js'
import { Accounts, createGateway, createLocalBackend, type Gateway } from '../../src/gateway/index.js'
import { cheatingExecutor, cosine, scoreEmbeddings, EMBEDDING_COSINE_THRESHOLD } from '../../src/validation/index.js'
import { vectorFromBase64, type JobExecutor } from '../../src/p2p/index.js'
import { tempDir } from '../helpers.js'

/**
 * `/v1/embeddings` on the real engine (llama.cpp's embedding context on the built-in
 * tiny-embed), through the openai client, the AI SDK and LangChain; and the embedding check
 * against the wrong-embedding cheat.
 */
let store: Store
let cleanup: () => Promise<void>
let llm: LlamaEngine
let embedInfo: ModelInfo
let gw: Gateway
let client: OpenAI
let apiKey: string

beforeAll(async () => {
  const t = await tempDir('heurist-gw-embeddings-')
  cleanup = t.cleanup
  store = await Store.open(`${t.dir}/store`)
  const made = await ensureTinyModels(`${t.dir}/models`, { names: ['tiny-embed', 'tiny-llama'] })
  llm = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1 })
  const infos = []
  for (const m of made) infos.push(await llm.load(m.path, { id: m.id, name: m.name }))
  embedInfo = infos.find(i => i.name === 'tiny-embed')!
  const accounts = new Accounts(store)
  apiKey = (await accounts.create(10n ** 18n)).apiKey
  gw = createGateway({ backend: createLocalBackend({ models: infos, llm, pricePerUnit: 1n }), accounts, logger: silentLogger(), vouchers: null, transcripts: null }, { port: 0 })
  await gw.start()
  client = new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 60_000 })
})

afterAll(async () => {
  await gw?.stop()
  await llm?.stop()
  await store?.close()
  await cleanup?.()
})

describe('/v1/embeddings', () => {
  it('float and base64: one unit vector per input, in order, the engine\'s own; usage counts prompt tokens', async () => {
    const input = ['hello world', 'something else entirely', 'hello world']
    const r = await client.embeddings.create({ model: 'tiny-embed', input, encoding_format: 'float' })
    expect(r.object).toBe('list')
    expect(r.data.map(d => d.index)).toEqual([0, 1, 2])
    const direct = await llm.embed(embedInfo.id, input)
    r.data.forEach((d, i) => {
      expect(d.embedding).toHaveLength(64)
      expect(Math.hypot(...d.embedding)).toBeCloseTo(1, 5)
      expect(cosine(Float32Array.from(d.embedding), direct.vectors[i]!)).toBeGreaterThan(0.999999)
    })
    expect(cosine(Float32Array.from(r.data[0]!.embedding), Float32Array.from(r.data[2]!.embedding))).toBeGreaterThan(0.999999)
    expect(cosine(Float32Array.from(r.data[0]!.embedding), Float32Array.from(r.data[1]!.embedding))).toBeLessThan(0.9)
    expect(r.usage.prompt_tokens).toBe(direct.promptTokens)
    const b = await fetch(`${gw.url}/v1/embeddings`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny-embed', input: 'hello world', encoding_format: 'base64' }) })
    const bj = await b.json() as { data: Array<{ embedding: string }> }
    expect(Array.from(vectorFromBase64(bj.data[0]!.embedding))).toEqual(Array.from(Float32Array.from(r.data[0]!.embedding)))
  })

  it('the AI SDK (embed, embedMany) and LangChain (OpenAIEmbeddings) get the same vectors', async () => {
    const openai = createOpenAI({ apiKey, baseURL: `${gw.url}/v1` })
    const one = await embed({ model: openai.embedding('tiny-embed'), value: 'hello world', maxRetries: 0 })
    const many = await embedMany({ model: openai.embedding('tiny-embed'), values: ['hello world', 'x y z'], maxRetries: 0 })
    const lc = new OpenAIEmbeddings({ model: 'tiny-embed', apiKey, configuration: { baseURL: `${gw.url}/v1` }, maxRetries: 0 })
    const lq = await lc.embedQuery('hello world')
    const ld = await lc.embedDocuments(['hello world', 'x y z'])
    const ref = (await llm.embed(embedInfo.id, ['hello world', 'x y z'])).vectors
    for (const v of [one.embedding, many.embeddings[0]!, lq, ld[0]!]) expect(cosine(Float32Array.from(v), ref[0]!)).toBeGreaterThan(0.99999)
    for (const v of [many.embeddings[1]!, ld[1]!]) expect(cosine(Float32Array.from(v), ref[1]!)).toBeGreaterThan(0.99999)
  })

  it('unsupported parameters and bad input are 400 naming them', async () => {
    for (const [body, param] of [[{ model: 'tiny-embed', input: 'x', dimensions: 8 }, 'dimensions'], [{ model: 'tiny-embed', input: [] }, 'input'], [{ model: 'tiny-embed', input: 'x', encoding_format: 'int8' }, 'encoding_format']] as const) {
      const r = await fetch(`${gw.url}/v1/embeddings`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
      expect(r.status).toBe(400)
      expect(((await r.json()) as { error: { param: string } }).error.param).toBe(param)
    }
  })
})

describe('the embedding check', () => {
  it('the honest vectors pass at cosine 1; the wrong-embedding cheat (another model, same dimension) fails far below the threshold', async () => {
    const honest: JobExecutor = { models: () => llm.loaded(), execute: async (job) => { if (job.kind !== 'embedding') throw new Error('embedding only'); return { kind: 'embedding', result: await llm.embed(job.modelId, job.input) } } }
    const cheat = cheatingExecutor('wrong-embedding', { llm, images: new Map(), models: llm.loaded(), honest })
    const input = ['a first text', 'the second one', 'and a third']
    const frame = { v: 1 as const, type: 'request' as const, jobId: '0x' + '00'.repeat(32), timeoutMs: 60_000, kind: 'embedding' as const, modelId: embedInfo.id, input }
    const own = (await llm.embed(embedInfo.id, input)).vectors
    const h = await honest.execute(frame, { signal: new AbortController().signal })
    const c = await cheat.execute(frame, { signal: new AbortController().signal })
    if (h.kind !== 'embedding' || c.kind !== 'embedding') throw new Error('embedding expected')
    const hs = scoreEmbeddings(h.result.vectors, own)
    const cs = scoreEmbeddings(c.result.vectors, own)
    expect(hs).toMatchObject({ fail: false })
    expect(hs.minCosine).toBeGreaterThan(0.999999)
    expect(cs.fail).toBe(true)
    expect(cs.minCosine).toBeLessThan(EMBEDDING_COSINE_THRESHOLD - 0.5)
    expect(scoreEmbeddings(own.slice(0, 2), own).fail).toBe(true)
  })
})
