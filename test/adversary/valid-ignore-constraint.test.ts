import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { cheatingExecutor, REASON } from '../../src/validation/index.js'
import { collateralOf, expectHonestKept, expectOnlyCandidate, expectSlashedOnce, type Net, startNet } from './valid-fixture.js'

// Issue 18: a miner that ignores a job's grammar (JSON schema, tool calls) to save its cost or
// because its engine has none, and signs the job as constrained. The receipt's paramsHash
// covers the constraint, so the miner cannot disown it; the validator teacher-forces under the
// same grammar and the first token the grammar forbids fails the job alone: the quorum slashes
// the miner F of its collateral, to the wei. An honest miner on the same constrained jobs is
// never failed and keeps all of its collateral.
const F = 5000n

describe('adversary: a miner that ignores the output grammar', () => {
  let net: Net
  let serving = new Set<number>([0, 1])
  beforeAll(async () => {
    net = await startNet({
      miners: [
        { account: 2, serving: () => serving.has(0), executor: ({ engine, honest }) => cheatingExecutor('ignore-constraint', { llm: engine, images: new Map(), models: engine.loaded(), honest }) },
        { account: 6, serving: () => serving.has(1) }
      ],
      validators: [{ account: 4, sampleRate: 1 }]
    })
  }, 240_000)
  afterAll(async () => { await net?.stop() })

  const only = async (m: number): Promise<void> => {
    serving = new Set([m])
    await expectOnlyCandidate(net, m)
  }
  const collateral = async (a: string): Promise<bigint> => await collateralOf(net, a)
  const schema = { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome'] }, ok: { type: 'boolean' } }, required: ['city', 'ok'], additionalProperties: false }
  const ask = async (i: number): Promise<Response> => await net.post('/v1/chat/completions', { model: 'tiny-llama', messages: [{ role: 'user', content: `weather ${i}?` }], max_tokens: 60, seed: i, response_format: { type: 'json_schema', json_schema: { name: 'w', strict: true, schema } } })

  it('the honest miner: every constrained job passes, its collateral untouched', async () => {
    const honest = net.miners[1]!
    const c0 = await collateral(honest.wallet.address)
    await only(1)
    for (let i = 0; i < 3; i++) {
      const r = await ask(i)
      expect(r.status).toBe(200)
      const body = await r.json() as { choices: Array<{ message: { content: string } }> }
      expect(['Paris', 'Rome']).toContain((JSON.parse(body.choices[0]!.message.content) as { city: string }).city)
    }
    await expectHonestKept(net, { jobs: 3, honest, before: c0 })
  }, 120_000)

  it('the miner that ignores the grammar: failed outside the support and slashed F to the wei; the honest one keeps all', async () => {
    const cheater = net.miners[0]!
    const c0 = await collateral(cheater.wallet.address)
    const honest0 = await collateral(net.miners[1]!.wallet.address)
    await only(0)
    for (let i = 10; i < 13; i++) {
      const r = await ask(i)
      expect(r.status).toBe(200)
      expect(r.headers.get('x-heurist-miner')).toBe(cheater.node.peerId.toString())
      await r.json()
    }
    await expectSlashedOnce(net, { cheater, before: c0, fBps: F, honest: net.miners[1]!, honestBefore: honest0 })
    expect(REASON.outsideSupport).toBe(1)
  }, 120_000)
})
