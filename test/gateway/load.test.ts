import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import OpenAI from 'openai'
import { startTinyMesh, type TinyMesh } from './load-fixture.js'

/**
 * Load through the official openai client against gateways in front of two real tiny-llama
 * miners over libp2p: every request within capacity is answered 200; a gateway whose queue is
 * smaller than the load refuses the excess with 429 + Retry-After, never a 5xx.
 */
let mesh: TinyMesh

beforeAll(async () => {
  mesh = await startTinyMesh({ miners: 2, slots: 2 })
})
afterAll(async () => { await mesh?.stop() })

/** Runs `total` requests, `concurrency` at a time; returns each one's status (200 or the error's). */
async function load (client: OpenAI, total: number, concurrency: number, maxTokens: number): Promise<{ statuses: number[], retryAfter: string[] }> {
  const statuses: number[] = []
  const retryAfter: string[] = []
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      const i = next++
      try {
        const r = await client.chat.completions.create({ model: mesh.model.name, messages: [{ role: 'user', content: `request ${i}` }], max_tokens: maxTokens, seed: i })
        expect(r.choices[0]!.message.content).toEqual(expect.any(String))
        statuses.push(200)
      } catch (e) {
        const err = e as { status?: number, headers?: Headers }
        statuses.push(err.status ?? -1)
        const h = err.headers?.get('retry-after')
        if (h != null) retryAfter.push(h)
      }
    }
  }))
  return { statuses, retryAfter }
}

describe('gateway under load (2 tiny-llama miners, 2 slots each)', () => {
  it('400 requests at concurrency 64 through the openai client: every one answered 200, no attempt failed, no breaker opened', async () => {
    const g = await mesh.addGateway()
    const { apiKey } = await g.accounts.create(10n ** 18n)
    const client = new OpenAI({ apiKey, baseURL: `${g.gateway.url}/v1`, maxRetries: 0, timeout: 60_000 })
    const t0 = Date.now()
    const { statuses } = await load(client, 400, 64, 4)
    const counts = statuses.reduce<Record<number, number>>((m, s) => { m[s] = (m[s] ?? 0) + 1; return m }, {})
    expect(counts).toEqual({ 200: 400 })
    // both miners carried load; no attempt failed or timed out (a hedge beside an untried miner
    // may be cancelled as outrun, which is no failure), and no breaker opened
    const served = mesh.miners.map(m => m.jobs.stats.served)
    expect(served.every(n => n > 0)).toBe(true)
    for (const m of mesh.miners) expect(g.gateway.breakers.state(m.node.peerId.toString())).toBe('closed')
    expect(g.gateway.queue.depth()).toBe(0)
    const metrics = await g.gateway.metrics.text()
    expect(metrics).not.toMatch(/heurist_gateway_miner_attempts_total\{[^}]*outcome="(error|timeout)"\}/)
    expect(metrics).not.toMatch(/^heurist_gateway_request_errors_total\{/m)
    expect(metrics).toMatch(/heurist_gateway_queue_wait_seconds_count \d+/)
    expect(Date.now() - t0).toBeLessThan(120_000)
  }, 150_000)

  it('a queue bound smaller than the load: the excess gets 429 with Retry-After in OpenAI\'s rate-limit shape, never a 5xx, the rest 200', async () => {
    const g = await mesh.addGateway({ queue: { maxQueued: 4 } })
    const { apiKey } = await g.accounts.create(10n ** 18n)
    const client = new OpenAI({ apiKey, baseURL: `${g.gateway.url}/v1`, maxRetries: 0, timeout: 60_000 })
    const { statuses, retryAfter } = await load(client, 96, 48, 8)
    expect(statuses).toHaveLength(96)
    expect(statuses.filter(s => s !== 200 && s !== 429)).toEqual([])
    const refused = statuses.filter(s => s === 429).length
    expect(refused).toBeGreaterThan(0)
    expect(statuses.filter(s => s === 200).length).toBeGreaterThan(0)
    expect(retryAfter).toHaveLength(refused)
    for (const h of retryAfter) expect(Number(h)).toBeGreaterThanOrEqual(1)
    // the body is what the openai client reads as a RateLimitError
    const raw = await fetchUntil429(g.gateway.url, apiKey)
    expect(raw.status).toBe(429)
    expect(raw.body).toMatchObject({ error: { type: 'requests', code: 'rate_limit_exceeded', param: null, message: expect.stringMatching(/queue/) } })
    const m = await g.gateway.metrics.text()
    expect(m).toMatch(/heurist_gateway_request_errors_total\{endpoint="\/v1\/chat\/completions",status="429",reason="rate_limit_exceeded"\} \d+/)
    expect(m).toMatch(/heurist_gateway_queue_rejected_total\{model="[0-9a-f]{64}"\} \d+/)
  }, 120_000)
})

/** Floods with raw fetches until one comes back 429; returns its status and body. */
async function fetchUntil429 (url: string, apiKey: string): Promise<{ status: number, body: unknown }> {
  const send = async (): Promise<{ status: number, body: unknown }> => {
    const r = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: mesh.model.name, messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 }) })
    return { status: r.status, body: await r.json() }
  }
  for (let round = 0; round < 5; round++) {
    const all = await Promise.all(Array.from({ length: 48 }, send))
    const hit = all.find(r => r.status === 429)
    if (hit !== undefined) return hit
  }
  return { status: 0, body: null }
}
