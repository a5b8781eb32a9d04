import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import OpenAI from 'openai'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { Accounts, VoucherBook, Transcripts, createGateway, type Gateway, type CompletedJob } from '../../src/gateway/index.js'
import { tempDir } from '../helpers.js'
import { scriptedBackend, miner, type ScriptedMiner } from './fixtures.js'

/**
 * The HTTP layer driven by the official `openai` client over a real server on 127.0.0.1, on a
 * scripted backend whose miners can be made to fail, hang or die on cue.
 */
let store: Store
let cleanup: () => Promise<void>
let gw: Gateway
let accounts: Accounts
let apiKey: string
let jobs: CompletedJob[]
let miners: ScriptedMiner[]

async function setUp (ms: ScriptedMiner[], opts: Parameters<typeof createGateway>[1] = {}): Promise<void> {
  miners = ms
  gw = createGateway({
    backend: scriptedBackend(ms),
    accounts,
    logger: silentLogger(),
    vouchers: new VoucherBook(store, '0x' + '1'.repeat(40), '0x' + '1'.repeat(40), null),
    transcripts: new Transcripts(store),
    onJob: (j) => { jobs.push(j) }
  }, { port: 0, firstTokenTimeoutMs: 500, requestTimeoutMs: 5000, ...opts })
  await gw.start()
}

/** Waits (bounded) for something the gateway does after the response (payment, records). */
async function until (cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 10))
}

const client = (key = apiKey): OpenAI => new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 10_000 })

beforeEach(async () => {
  const t = await tempDir('heurist-gw-http-')
  cleanup = t.cleanup
  store = await Store.open(t.dir)
  accounts = new Accounts(store)
  apiKey = (await accounts.create(10n ** 18n)).apiKey
  jobs = []
})
afterEach(async () => { await gw.stop(); await store.close(); await cleanup() })

describe('OpenAI-compatible endpoints', () => {
  it('lists the advertised models', async () => {
    await setUp([miner('m1')])
    const list = await client().models.list()
    expect(list.data.map(m => m.id).sort()).toEqual(['scripted-img', 'scripted-llm'])
    expect(list.data[0]!.object).toBe('model')
  })

  it('chat completion, not streamed: OpenAI shape, usage, the miner paid with a voucher and the transcript kept', async () => {
    await setUp([miner('m1')])
    const r = await client().chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 16, seed: 3 })
    expect(r.object).toBe('chat.completion')
    expect(r.id).toMatch(/^chatcmpl-/)
    expect(r.choices[0]!.message).toMatchObject({ role: 'assistant', content: 'Hello world' })
    expect(r.choices[0]!.finish_reason).toBe('stop')
    expect(r.usage).toEqual({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 })
    expect(miners[0]!.jobs[0]!.request.sampling).toMatchObject({ seed: 3, maxTokens: 16 })
    await until(() => jobs.length === 1)
    expect(jobs[0]!.cost).toBe(8n * 1000n)
    const book = new VoucherBook(store, '0x' + '1'.repeat(40), '0x' + '1'.repeat(40), null)
    expect((await book.all())[0]!.cumulativeAmount).toBe(8000n)
    expect((await new Transcripts(store).get(jobs[0]!.jobId))?.output).toMatchObject({ text: 'Hello world' })
    expect((await accounts.lookup(apiKey))!.credits).toBe(10n ** 18n - 8000n)
  })

  it('chat completion streamed: role first, one chunk per token, finish_reason, usage at the end, [DONE]', async () => {
    await setUp([miner('m1')])
    const stream = await client().chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }], stream: true })
    const chunks = []
    for await (const c of stream) chunks.push(c)
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant')
    expect(chunks.every(c => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id)).toBe(true)
    expect(chunks.map(c => c.choices[0]?.delta.content ?? '').join('')).toBe('Hello world')
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop')
    expect(chunks.at(-1)!.choices).toEqual([])
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 })
  })

  it('plain completion, streamed and not; max_tokens cuts with finish_reason length', async () => {
    await setUp([miner('m1')])
    const r = await client().completions.create({ model: 'scripted-llm', prompt: 'Once', max_tokens: 2 })
    expect(r.object).toBe('text_completion')
    expect(r.choices[0]).toMatchObject({ text: 'Hello', finish_reason: 'length' })
    const s = await client().completions.create({ model: 'scripted-llm', prompt: 'Once', stream: true })
    let text = ''
    for await (const c of s) text += c.choices[0]?.text ?? ''
    expect(text).toBe('Hello world')
  })

  it('image generation returns b64_json', async () => {
    await setUp([miner('m1')])
    const r = await client().images.generate({ model: 'scripted-img', prompt: 'a cat', size: '256x256', response_format: 'b64_json' })
    const png = Buffer.from(r.data![0]!.b64_json!, 'base64')
    expect(png.subarray(1, 4).toString()).toBe('PNG')
  })

  it('/health and /metrics (Prometheus text with requests, latency, tokens, per-miner outcomes)', async () => {
    await setUp([miner('m1')])
    await client().chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }] })
    const h = await (await fetch(`${gw.url}/health`)).json()
    expect(h).toMatchObject({ status: 'ok', models: 2 })
    const m = await (await fetch(`${gw.url}/metrics`)).text()
    expect(m).toContain('heurist_gateway_requests_total{endpoint="/v1/chat/completions",status="200"} 1')
    expect(m).toContain('heurist_gateway_request_duration_seconds_bucket')
    expect(m).toContain('heurist_gateway_tokens_total{direction="completion"} 4')
    expect(m).toContain('heurist_gateway_miner_attempts_total{miner="m1",outcome="ok"} 1')
  })
})

describe('auth and credits', () => {
  it('no key or a bad key → 401 with an OpenAI error body', async () => {
    await setUp([miner('m1')])
    await expect(client('hk-' + 'x'.repeat(43)).chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }] }))
      .rejects.toMatchObject({ status: 401, code: 'invalid_api_key', type: 'invalid_request_error' })
    const r = await fetch(`${gw.url}/v1/models`)
    expect(r.status).toBe(401)
    expect((await r.json()).error.code).toBe('missing_api_key')
  })

  it('no credits → 402, and the miner is never asked', async () => {
    await setUp([miner('m1')])
    const poor = (await accounts.create(0n)).apiKey
    await expect(client(poor).chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }] }))
      .rejects.toMatchObject({ status: 402, code: 'insufficient_quota' })
    expect(miners[0]!.jobs).toHaveLength(0)
  })
})

describe('failures and retries', () => {
  it('a miner that fails or dies before its first token → the request succeeds through the next one', async () => {
    await setUp([miner('bad', { mode: 'fail', speed: 100 }), miner('dead', { mode: 'hang', speed: 50 }), miner('good', { speed: 1 })])
    const r = await client().chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
    expect(r.data.choices[0]!.message.content).toBe('Hello world')
    expect(r.response.headers.get('x-heurist-miner')).toBe('good')
    expect(miners[1]!.jobs[0]!.aborted).toBe(true) // the hung job was cancelled, not left running
  })

  it('a miner that dies after tokens reached the client → an error in the stream, no silent restart', async () => {
    await setUp([miner('flaky', { mode: 'die-after-first-token', speed: 100 }), miner('good', { speed: 1 })])
    const stream = await client().chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }], stream: true })
    let text = ''
    await expect((async () => { for await (const c of stream) text += c.choices[0]?.delta.content ?? '' })()).rejects.toThrow(/mid-stream/)
    expect(text).toBe('Hel')
    expect(miners[1]!.jobs).toHaveLength(0)
  })

  it('the breaker skips a miner after repeated failures', async () => {
    // referred: ranked first whatever was observed of it, so only the breaker keeps it out
    await setUp([miner('bad', { mode: 'fail', speed: 100 }), miner('good', { speed: 1 })], { breaker: { failureThreshold: 2, cooldownMs: 60_000 }, referred: ['bad'] })
    for (let i = 0; i < 4; i++) await client().chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }] })
    expect(miners[0]!.jobs).toHaveLength(2)
    expect(gw.breakers.state('bad')).toBe('open')
  })

  it('an untried miner that stays silent is hedged: the other miner answers after hedgeAfterMs, the silent one is aborted, and once a proven miner outruns it, it ranks below', async () => {
    await setUp([miner('fresh', { mode: 'hang', speed: 1e7 }), miner('good', { speed: 1 })], { hedgeAfterMs: 100, untriedFirstOutputTimeoutMs: 4000, firstTokenTimeoutMs: 4000 })
    const t0 = Date.now()
    const r = await client().chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
    expect(r.response.headers.get('x-heurist-miner')).toBe('good')
    expect(Date.now() - t0).toBeLessThan(3000) // not the 4 s first-output timeout
    expect(miners[0]!.jobs).toHaveLength(1)
    expect(miners[0]!.jobs[0]!.aborted).toBe(true)
    // beaten by another untried miner is no evidence; beaten by a proven one is: it then ranks
    // below, so of the next five requests it sees at most one (a tie with the proven miner)
    for (let i = 0; i < 5; i++) {
      const t1 = Date.now()
      const again = await client().chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
      expect(again.response.headers.get('x-heurist-miner')).toBe('good')
      expect(Date.now() - t1).toBeLessThan(3000)
    }
    expect(miners[0]!.jobs.length).toBeLessThanOrEqual(2)
  })

  it('no miner answers within the deadline → 504; none at all → 503', async () => {
    await setUp([miner('dead', { mode: 'hang' })], { firstTokenTimeoutMs: 300, requestTimeoutMs: 600 })
    await expect(client().chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }] }))
      .rejects.toMatchObject({ status: 504, code: 'timeout' })
    await gw.stop()
    await setUp([])
    await expect(client().chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }] }))
      .rejects.toMatchObject({ status: 503, code: 'no_miner_available' })
  })
})

describe('bad input', () => {
  const post = async (path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number, body: any }> => {
    const r = await fetch(`${gw.url}${path}`, { method: 'POST', body, headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', ...headers } })
    return { status: r.status, body: await r.json() }
  }

  it('malformed JSON → 400 invalid_json', async () => {
    await setUp([miner('m1')])
    const r = await post('/v1/chat/completions', '{"model": "scripted-llm", "messages": [')
    expect(r.status).toBe(400)
    expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json' })
  })

  it('an oversized body → 413', async () => {
    await setUp([miner('m1')], { bodyLimit: 10_000 })
    const r = await post('/v1/chat/completions', JSON.stringify({ model: 'scripted-llm', messages: [{ role: 'user', content: 'x'.repeat(20_000) }] }))
    expect(r.status).toBe(413)
    expect(r.body.error.code).toBe('request_too_large')
  })

  it('unknown model → 404 model_not_found; an image model on chat → 400', async () => {
    await setUp([miner('m1')])
    await expect(client().chat.completions.create({ model: 'gpt-17', messages: [{ role: 'user', content: 'hi' }] }))
      .rejects.toMatchObject({ status: 404, code: 'model_not_found', param: 'model' })
    await expect(client().chat.completions.create({ model: 'scripted-img', messages: [{ role: 'user', content: 'hi' }] }))
      .rejects.toMatchObject({ status: 400, param: 'model' })
  })

  it('parameters out of range → 400 naming the parameter', async () => {
    await setUp([miner('m1')])
    const chat = (extra: Record<string, unknown>) => client().chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }], ...extra } as never)
    await expect(chat({ temperature: 7 })).rejects.toMatchObject({ status: 400, param: 'temperature' })
    await expect(chat({ max_tokens: 1_000_000 })).rejects.toMatchObject({ status: 400, param: 'max_tokens' })
    await expect(chat({ top_p: 0 })).rejects.toMatchObject({ status: 400, param: 'top_p' })
    await expect(chat({ n: 3 })).rejects.toMatchObject({ status: 400, param: 'n' })
    await expect(client().chat.completions.create({ model: 'scripted-llm', messages: [] })).rejects.toMatchObject({ status: 400, param: 'messages' })
    await expect(client().images.generate({ model: 'scripted-img', prompt: 'x', size: '4096x4096' as never })).rejects.toMatchObject({ status: 400, param: 'size' })
    expect(miners[0]!.jobs).toHaveLength(0)
  })

  it('a client that disconnects mid-stream → the miner job is cancelled, the credits are not charged, other requests are not affected', async () => {
    await setUp([miner('m1', { tokens: Array.from({ length: 200 }, (_, i) => `t${i} `), delayMs: 20 })])
    const ac = new AbortController()
    const stream = await client().chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: 200 }, { signal: ac.signal })
    let n = 0
    try {
      for await (const _c of stream) { if (++n === 3) ac.abort() }
    } catch { /* the client's own abort */ }
    expect(n).toBeLessThan(10)
    await until(() => miners[0]!.jobs[0]!.aborted)
    expect(miners[0]!.jobs[0]!.aborted).toBe(true)
    expect(miners[0]!.jobs[0]!.done).toBe(false)
    expect(jobs).toHaveLength(0)
    expect((await accounts.lookup(apiKey))!.credits).toBe(10n ** 18n)
    miners[0]!.tokens = ['ok']
    const r = await client().chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }] })
    expect(r.choices[0]!.message.content).toBe('ok')
  })
})
