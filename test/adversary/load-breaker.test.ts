import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import OpenAI from 'openai'
import { startTinyMesh, type TinyMesh, type TinyGateway } from '../gateway/load-fixture.js'

/**
 * Attack: a client tries to open every miner's circuit breaker (so every request for any model
 * is answered 503 for the cooldown) with requests that fail because of themselves: job frames
 * over the miners' 256 KiB bound, prompts longer than the model's context. Real gateway, real
 * libp2p, two real tiny-llama miners, the openai client. The attacker must gain nothing (no
 * breaker opens, nothing is charged to anyone for its requests) and the honest client must lose
 * nothing (served 200, charged exactly the cost of its own job).
 */
let mesh: TinyMesh
let g: TinyGateway

beforeAll(async () => {
  mesh = await startTinyMesh({ miners: 2, slots: 2 })
  // the most fragile breaker: one failure opens it for a minute
  g = await mesh.addGateway({ breaker: { failureThreshold: 1, cooldownMs: 60_000 } })
})
afterAll(async () => { await mesh?.stop() })

describe('hostile client vs the circuit breakers', () => {
  it('oversized frames and over-long prompts are answered 413/400 at the gateway, open no breaker, charge no one; the honest request is served and charged exactly its cost', async () => {
    const credits = 10n ** 18n
    const attacker = await g.accounts.create(credits)
    const honest = await g.accounts.create(credits)
    const evil = new OpenAI({ apiKey: attacker.apiKey, baseURL: `${g.gateway.url}/v1`, maxRetries: 0, timeout: 60_000 })
    const good = new OpenAI({ apiKey: honest.apiKey, baseURL: `${g.gateway.url}/v1`, maxRetries: 0, timeout: 60_000 })
    const minerIds = mesh.miners.map(m => m.node.peerId.toString())
    const rejectedBefore = mesh.miners.map(m => m.jobs.stats.rejected)

    // 1) a 300 KB chat: inside the 1 MiB HTTP body limit, over a job frame's 256 KiB
    for (let i = 0; i < 4; i++) {
      await expect(evil.chat.completions.create({ model: mesh.model.name, messages: [{ role: 'user', content: 'x'.repeat(150_000) }, { role: 'user', content: 'y'.repeat(150_000) }], max_tokens: 4 }))
        .rejects.toMatchObject({ status: 413, code: 'request_too_large' })
    }
    // none of it reached a miner
    expect(mesh.miners.map(m => m.jobs.stats.rejected)).toEqual(rejectedBefore)

    // 2) a prompt longer than the model's context (1024 tokens): the miners say so, the gateway answers 400
    const long = Array.from({ length: 3000 }, (_, i) => `word${i}`).join(' ')
    for (let i = 0; i < 4; i++) {
      await expect(evil.chat.completions.create({ model: mesh.model.name, messages: [{ role: 'user', content: long }], max_tokens: 4 }))
        .rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' })
    }

    // 3) parameters out of range never leave the gateway
    await expect(evil.chat.completions.create({ model: mesh.model.name, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, temperature: 9 }))
      .rejects.toMatchObject({ status: 400, param: 'temperature' })

    // no breaker opened
    for (const id of minerIds) expect(g.gateway.breakers.state(id)).toBe('closed')

    // the honest client is served at once, by either miner
    const r = await good.chat.completions.create({ model: mesh.model.name, messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 }).withResponse()
    expect(r.response.status).toBe(200)
    expect(minerIds).toContain(r.response.headers.get('x-heurist-miner'))

    // money, to the wei: the attacker paid nothing, the honest client exactly its job's cost
    for (let i = 0; i < 100 && g.jobs.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 20))
    expect(g.jobs).toHaveLength(1)
    const cost = g.jobs[0]!.cost
    expect(cost).toBeGreaterThan(0n)
    const a = await g.accounts.lookup(attacker.apiKey)
    const h = await g.accounts.lookup(honest.apiKey)
    expect(a!.credits).toBe(credits)
    expect(a!.spent).toBe(0n)
    expect(h!.credits).toBe(credits - cost)
    expect(h!.spent).toBe(cost)
  })
})
