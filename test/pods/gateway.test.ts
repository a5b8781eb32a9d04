import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import OpenAI from 'openai'
import { Wallet } from 'ethers'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { Accounts, VoucherBook, createGateway, buildDemand, type Backend, type Gateway } from '../../src/gateway/index.js'
import { GossipValidationError, encodeMessage } from '../../src/p2p/index.js'
import { createDemandValidator, defaultDemandBoardOptions } from '../../src/pods/index.js'
import { tempDir } from '../helpers.js'
import { scriptedBackend, miner } from '../gateway/fixtures.js'

const POD = 'c'.repeat(64)

/**
 * The gateway side of scaling from zero: a pod named by its name or id resolves through the
 * chain's pod list even when no miner advertises it; the request waits, counted as demand,
 * until a miner does, or fails with a clear 503 after the cold-start limit.
 */
describe('gateway: pods no miner hosts yet', () => {
  let store: Store
  let cleanup: () => Promise<void>
  let gw: Gateway
  let apiKey: string
  let hosted: boolean
  let vouchers: VoucherBook

  async function setUp (coldStartTimeoutMs: number): Promise<void> {
    const base = scriptedBackend([miner('m1')])
    // the same scripted miner, which "loads" the pod when the test says so
    const backend: Backend = {
      ...base,
      models: () => hosted ? [...base.models(), { id: POD, name: 'my-pod', kind: 'llm', miners: 1 }] : base.models(),
      candidates: (id) => id === POD ? (hosted ? base.miners.map(m => ({ ...m })) : []) : base.candidates(id)
    }
    vouchers = new VoucherBook(store, '0x' + '1'.repeat(40), '0x' + '1'.repeat(40), null)
    gw = createGateway({
      backend,
      accounts: new Accounts(store),
      logger: silentLogger(),
      vouchers,
      transcripts: null,
      pods: { resolve: ref => ref === 'my-pod' || ref === '0x' + POD ? { id: POD, name: 'my-pod', kind: 'llm' } : undefined }
    }, { port: 0, coldStartTimeoutMs, requestTimeoutMs: 5000 })
    await gw.start()
  }

  beforeEach(async () => {
    const t = await tempDir('heurist-pods-gw-')
    cleanup = t.cleanup
    store = await Store.open(t.dir)
    apiKey = (await new Accounts(store).create(10n ** 18n)).apiKey
    hosted = false
  })
  afterEach(async () => { await gw.stop(); await store.close(); await cleanup() })

  const client = (): OpenAI => new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 10_000 })

  it('waits for a host while counting the request as demand, then serves it and pays under the pod id', async () => {
    await setUp(5000)
    const pending: Array<Record<string, number>> = []
    const watch = setInterval(() => { pending.push(gw.pending()) }, 20)
    setTimeout(() => { hosted = true }, 400)
    try {
      const r = await client().chat.completions.create({ model: 'my-pod', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 })
      expect(r.choices[0]!.message.content).toBe('Hello world')
    } finally {
      clearInterval(watch)
    }
    expect(pending.some(p => p[POD] === 1)).toBe(true)
    expect(gw.pending()[POD]).toBeUndefined()
    // the voucher is raised just after the response goes out
    const paid = async (): Promise<boolean> => (await vouchers.all()).some(x => x.podId === '0x' + POD && x.cumulativeAmount > 0n)
    const end = Date.now() + 3000
    while (!await paid() && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 20))
    expect(await paid()).toBe(true)
  })

  it('no host within the cold-start limit: 503 model_loading, nothing charged, demand withdrawn', async () => {
    await setUp(300)
    const t0 = Date.now()
    const err = await client().chat.completions.create({ model: '0x' + POD, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }).then(() => null, (e: unknown) => e)
    expect(err).toBeInstanceOf(OpenAI.APIError)
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503)
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('model_loading')
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300)
    expect(gw.pending()[POD]).toBeUndefined()
    expect(await vouchers.all()).toHaveLength(0)
  })

  it('a name that is neither advertised nor a pod is 404', async () => {
    await setUp(300)
    const err = await client().chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(404)
  })
})

describe('demand gossip validation', () => {
  const gwId = identityFromPrivateKey(Wallet.createRandom().privateKey)
  const msg = (data: Uint8Array, from = gwId.peerId): never => ({ type: 'signed', from, data, topic: 'heurist/1/demand' }) as never
  const outcome = (fn: () => unknown): string => {
    try { fn(); return 'accept' } catch (e) { return e instanceof GossipValidationError ? `${e.action} ${e.code}` : 'bug' }
  }

  it('accepts a gateway\'s own demand; rejects garbage, oversize, bad schema, forged gateways and future timestamps; ignores stale ones', () => {
    let now = 1_000_000
    const v = createDemandValidator({ ...defaultDemandBoardOptions, now: () => now }, new Map())
    const d = (ts: number, gateway = gwId.address): Uint8Array => encodeMessage(buildDemand(gateway, { [POD]: 3 }, ts))
    expect(outcome(() => v(msg(d(now))))).toBe('accept')
    expect(outcome(() => v(msg(new TextEncoder().encode('{not json'))))).toBe('reject P2P_MALFORMED')
    expect(outcome(() => v(msg(new Uint8Array(9000))))).toBe('reject P2P_MESSAGE_TOO_LARGE')
    expect(outcome(() => v(msg(encodeMessage({ v: 1, type: 'demand', gateway: gwId.address, ts: now, models: [{ id: 'xyz', pending: 1 }] }))))).toBe('reject P2P_SCHEMA')
    const other = identityFromPrivateKey(Wallet.createRandom().privateKey)
    expect(outcome(() => v(msg(d(now, other.address))))).toBe('reject P2P_OPERATOR_MISMATCH')
    expect(outcome(() => v(msg(d(now + 120_000))))).toBe('reject P2P_FUTURE')
    expect(outcome(() => v(msg(d(now - 120_000))))).toBe('ignore P2P_STALE')
  })

  it('replays are ignored and floods rejected once a gateway has been heard', async () => {
    let now = 1_000_000
    const last = new Map<string, { ts: number, at: number }>()
    const v = createDemandValidator({ ...defaultDemandBoardOptions, now: () => now }, last)
    const d = (ts: number): Uint8Array => encodeMessage(buildDemand(gwId.address, { [POD]: 1 }, ts))
    // the board records what it accepted (DemandBoard.record does this after the validator)
    v(msg(d(now)))
    last.set(gwId.address.toLowerCase(), { ts: now, at: now })
    expect(outcome(() => v(msg(d(now))))).toBe('ignore P2P_DUPLICATE')
    now += 50
    expect(outcome(() => v(msg(d(now))))).toBe('reject P2P_RATE_LIMITED')
    now += 500
    expect(outcome(() => v(msg(d(now))))).toBe('accept')
  })
})
