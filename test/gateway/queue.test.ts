import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import OpenAI from 'openai'
import { createHash } from 'node:crypto'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { HeuristError } from '../../src/core/errors.js'
import { Accounts, createGateway, type Backend, type Candidate, type Gateway, type GatewayOptions } from '../../src/gateway/index.js'
import type { LlmResult } from '../../src/inference/types.js'
import { tempDir } from '../helpers.js'

/**
 * The gateway's queue on a backend whose miners answer on cue: busy replies, request-caused
 * refusals, slow jobs. Driven over real HTTP by the openai client and plain fetch.
 */
const MODEL = createHash('sha256').update('q-llm').digest('hex')

interface Miner extends Candidate {
  /** What the next jobs meet: 'ok', 'busy' (a typed busy reply), 'too-long' (the prompt does not fit), 'fail'. */
  script: Array<'ok' | 'busy' | 'too-long' | 'fail'>
  delayMs: number
  running: number
  maxRunning: number
  served: Array<{ key: string, text: string }>
}

function miner (peerId: string, init: Partial<Miner> = {}): Miner {
  return { peerId, address: '0x' + createHash('sha256').update(peerId).digest('hex').slice(0, 40), modelLoaded: true, speed: 10, votes: 0n, uptime: 1, pricePerUnit: 0n, slots: 1, script: [], delayMs: 20, running: 0, maxRunning: 0, served: [], ...init }
}

function backend (miners: Miner[]): Backend {
  return {
    models: () => [{ id: MODEL, name: 'q-llm', kind: 'llm', miners: miners.length }],
    candidates: (id) => id === MODEL ? miners.map(m => ({ ...m })) : [],
    async runLlm (c, request, options) {
      const m = miners.find(x => x.peerId === c.peerId)!
      const what = m.script.shift() ?? 'ok'
      if (what === 'busy') throw new HeuristError('P2P_BUSY', 'miner is busy', { details: { retryAfterMs: 30 } })
      if (what === 'too-long') throw new HeuristError('P2P_JOB_FAILED', 'miner failed the job: INFERENCE_PROMPT_TOO_LONG: the prompt is 9000 tokens and the context holds 4096', { details: { code: 'INFERENCE_PROMPT_TOO_LONG' } })
      if (what === 'fail') throw new Error('connection reset')
      m.running++
      m.maxRunning = Math.max(m.maxRunning, m.running)
      try {
        await new Promise(resolve => setTimeout(resolve, m.delayMs))
      } finally { m.running-- }
      const text = typeof request.input === 'string' ? request.input : request.input.map(x => x.content).join(' ')
      m.served.push({ key: text.split(':')[0]!, text })
      options.onToken?.('ok')
      const result: LlmResult = { text: 'ok', tokens: [1], finishReason: 'stop', usage: { promptTokens: 1, outputTokens: 1, ttftMs: 1, tokensPerSecond: 1, totalMs: m.delayMs } }
      return { result, computeUnits: 2n }
    },
    async runImage () { throw new Error('no images here') }
  }
}

let store: Store
let cleanup: () => Promise<void>
let accounts: Accounts
let gw: Gateway
let miners: Miner[]

async function setUp (ms: Miner[], opts: Partial<GatewayOptions> = {}): Promise<void> {
  miners = ms
  gw = createGateway({ backend: backend(ms), accounts, logger: silentLogger(), vouchers: null, transcripts: null }, { port: 0, firstTokenTimeoutMs: 2000, requestTimeoutMs: 10_000, ...opts })
  await gw.start()
}
const client = (apiKey: string): OpenAI => new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 20_000 })
const ask = async (apiKey: string, text: string, extra: Record<string, unknown> = {}): Promise<unknown> =>
  await client(apiKey).chat.completions.create({ model: 'q-llm', messages: [{ role: 'user', content: text }], max_tokens: 4, ...extra })

beforeEach(async () => {
  const t = await tempDir('heurist-gw-queue-')
  cleanup = t.cleanup
  store = await Store.open(t.dir)
  accounts = new Accounts(store)
})
afterEach(async () => { await gw.stop(); await store.close(); await cleanup() })

describe('the per-model queue', () => {
  it('never puts more on a miner than its slots × 2; every request waits its turn and is served', async () => {
    await setUp([miner('a', { slots: 1, delayMs: 30 }), miner('b', { slots: 2, delayMs: 30 })])
    const { apiKey } = await accounts.create(10n ** 18n)
    await Promise.all(Array.from({ length: 30 }, async (_, i) => await ask(apiKey, `k:${i}`)))
    expect(miners[0]!.maxRunning).toBeLessThanOrEqual(2)
    expect(miners[1]!.maxRunning).toBeLessThanOrEqual(4)
    expect(miners[0]!.served.length + miners[1]!.served.length).toBe(30)
    expect(gw.queue.depth()).toBe(0)
    // the gateway's view of its load per miner, back to zero once all is served
    const m = await gw.metrics.text()
    expect(m).toContain('heurist_gateway_miner_in_flight{miner="a"} 0')
    expect(m).toContain('heurist_gateway_miner_in_flight{miner="b"} 0')
  })

  it('is fair across API keys: a key that queued 20 first does not make a later key wait behind all of them', async () => {
    await setUp([miner('only', { slots: 1, delayMs: 60 })], { queue: { perSlot: 1 } })
    const a = (await accounts.create(10n ** 18n)).apiKey
    const b = (await accounts.create(10n ** 18n)).apiKey
    const flood = Array.from({ length: 20 }, async (_, i) => await ask(a, `A:${i}`))
    // b arrives once most of a's requests are waiting
    for (let i = 0; i < 400 && gw.queue.depth() < 12; i++) await new Promise(resolve => setTimeout(resolve, 5))
    const aheadOfB = gw.queue.depth()
    const servedBefore = miners[0]!.served.length
    expect(aheadOfB).toBeGreaterThanOrEqual(12)
    const late = Array.from({ length: 3 }, async (_, i) => await ask(b, `B:${i}`))
    await Promise.all([...flood, ...late])
    const order = miners[0]!.served.map(s => s.key)
    expect(order.filter(k => k === 'B')).toHaveLength(3)
    // first come first served would put b's three after the ≥ 12 of a's already waiting;
    // round robin serves them within the next six turns (plus the job running when b came)
    expect(order.lastIndexOf('B')).toBeLessThan(servedBefore + 1 + 6)
  })

  it('a queue whose work ahead would outlast a new request\'s deadline refuses it at once with 429, rather than letting it time out (504) in the queue', async () => {
    await setUp([miner('slow', { slots: 1, delayMs: 300 })], { queue: { perSlot: 1 }, requestTimeoutMs: 3000 })
    const { apiKey } = await accounts.create(10n ** 18n)
    await ask(apiKey, 'k:warm') // one timed job: the queue learns the pace
    const statuses = await Promise.all(Array.from({ length: 24 }, async (_, i) => {
      try { await ask(apiKey, `k:${i}`); return 200 } catch (e) { return (e as { status?: number }).status ?? -1 }
    }))
    expect(statuses.filter(s => s !== 200 && s !== 429)).toEqual([])
    expect(statuses.filter(s => s === 429).length).toBeGreaterThan(0)
    expect(statuses.filter(s => s === 200).length).toBeGreaterThan(0)
  })

  it('a busy reply is no failure: the request waits and is served, the breaker stays closed', async () => {
    await setUp([miner('full', { script: ['busy', 'busy', 'busy', 'busy'] })], { breaker: { failureThreshold: 1, cooldownMs: 60_000 } })
    const { apiKey } = await accounts.create(10n ** 18n)
    const r = await ask(apiKey, 'k:1') as { choices: Array<{ message: { content: string } }> }
    expect(r.choices[0]!.message.content).toBe('ok')
    expect(gw.breakers.state('full')).toBe('closed')
    const m = await gw.metrics.text()
    expect(m).toContain('heurist_gateway_miner_busy_total{miner="full"} 4')
    expect(m).toContain('heurist_gateway_miner_attempts_total{miner="full",outcome="busy"} 4')
  })

  it('a prompt too long for the context is the request\'s fault: 400 context_length_exceeded once a second miner agrees, no breaker counts', async () => {
    await setUp([miner('m1', { script: ['too-long', 'too-long', 'too-long'], speed: 2 }), miner('m2', { script: ['too-long', 'too-long', 'too-long'], speed: 1 })], { breaker: { failureThreshold: 1, cooldownMs: 60_000 } })
    const { apiKey } = await accounts.create(10n ** 18n)
    for (let i = 0; i < 3; i++) {
      await expect(ask(apiKey, 'k:long')).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' })
    }
    expect(gw.breakers.state('m1')).toBe('closed')
    expect(gw.breakers.state('m2')).toBe('closed')
  })

  it('one miner claiming "too long" alone does not fail the request: the next miner serves it', async () => {
    await setUp([miner('liar', { script: ['too-long'], speed: 2 }), miner('honest', { speed: 1 })])
    const { apiKey } = await accounts.create(10n ** 18n)
    const r = await ask(apiKey, 'k:1') as { choices: Array<{ message: { content: string } }> }
    expect(r.choices[0]!.message.content).toBe('ok')
    expect(miners[1]!.served).toHaveLength(1)
  })

  it('a request whose job frame would exceed the miners\' 256 KiB bound: 413 before any miner is asked', async () => {
    await setUp([miner('m1')], { breaker: { failureThreshold: 1, cooldownMs: 60_000 } })
    const { apiKey } = await accounts.create(10n ** 18n)
    // two 150 KB messages: each within the API's per-message bound, together over a job frame's
    await expect(ask(apiKey, 'k', { messages: [{ role: 'user', content: 'x'.repeat(150_000) }, { role: 'user', content: 'y'.repeat(150_000) }] })).rejects.toMatchObject({ status: 413, code: 'request_too_large' })
    expect(miners[0]!.served).toHaveLength(0)
    expect(gw.breakers.state('m1')).toBe('closed')
  })
})
