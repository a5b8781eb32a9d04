import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { Wallet, verifyTypedData } from 'ethers'
import { Store } from '../../src/core/store.js'
import { heuristDomain, VoucherTypes } from '../../src/core/typed-data.js'
import { Accounts, VoucherBook, Transcripts, hashApiKey } from '../../src/gateway/index.js'
import { tempDir } from '../helpers.js'

let store: Store
let cleanup: () => Promise<void>
let dir: string

beforeEach(async () => {
  const t = await tempDir('heurist-gw-ledger-')
  cleanup = t.cleanup
  dir = t.dir
  store = await Store.open(dir)
})
afterEach(async () => { await store.close(); await cleanup() })

describe('accounts and API keys', () => {
  it('stores only the hash of a key; the key finds its account, a wrong or malformed key does not', async () => {
    const accounts = new Accounts(store)
    const { apiKey, account } = await accounts.create(10n ** 18n, 'demo')
    expect(apiKey).toMatch(/^hk-/)
    const raw = await store.bucket('gw-accounts', (await import('zod')).z.unknown()).entries()
    expect(raw.map(([k]) => k)).toEqual([hashApiKey(apiKey)])
    expect(JSON.stringify(raw, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v)).not.toContain(apiKey.slice(3))
    expect((await accounts.lookup(apiKey))?.id).toBe(account.id)
    expect(await accounts.lookup(apiKey.slice(0, -1) + (apiKey.endsWith('A') ? 'B' : 'A'))).toBeUndefined()
    expect(await accounts.lookup('not-a-key')).toBeUndefined()
  })

  it('reservations stop concurrent jobs from spending the same credits; settle charges the real cost', async () => {
    const accounts = new Accounts(store)
    const { apiKey } = await accounts.create(100n)
    const h = hashApiKey(apiKey)
    const results = await Promise.all(Array.from({ length: 5 }, async () => await accounts.reserve(h, 40n)))
    const granted = results.filter(r => r !== null)
    expect(granted).toHaveLength(2)
    await granted[0]!(15n)
    await granted[1]!(0n)
    const a = (await accounts.lookup(apiKey))!
    expect(a.credits).toBe(85n)
    expect(a.spent).toBe(15n)
    expect(accounts.available(a)).toBe(85n)
    // settle is idempotent
    await granted[0]!(15n)
    expect((await accounts.lookup(apiKey))!.credits).toBe(85n)
  })

  it('an empty account gets nothing, and a cost above the reservation charges the reservation, never more', async () => {
    const accounts = new Accounts(store)
    const { apiKey } = await accounts.create(0n)
    expect(await accounts.reserve(hashApiKey(apiKey), 0n)).toBeNull()
    const { apiKey: k2 } = await accounts.create(10n)
    const settle = await accounts.reserve(hashApiKey(k2), 5n)
    expect(await settle!(50n)).toBe(5n)
    expect((await accounts.lookup(k2))!.credits).toBe(5n)
  })

  it('reserveUpTo holds what the key has left between min and max, and null below min', async () => {
    const accounts = new Accounts(store)
    const { apiKey } = await accounts.create(30n)
    const h = hashApiKey(apiKey)
    const a = await accounts.reserveUpTo(h, 100n, 10n)
    expect(a!.amount).toBe(30n)
    expect(await accounts.reserveUpTo(h, 100n, 1n)).toBeNull()
    expect(await a!.settle(12n)).toBe(12n)
    const b = await accounts.reserveUpTo(h, 5n, 1n)
    expect(b!.amount).toBe(5n)
    expect(await accounts.reserveUpTo(h, 100n, 14n)).toBeNull()
    expect((await accounts.reserveUpTo(h, 100n, 13n))!.amount).toBe(13n)
  })
})

describe('voucher book', () => {
  it('raises one cumulative total per (miner, pod), signs it as EIP-712 the Payments contract checks, and keeps it across restarts', async () => {
    const gw = Wallet.createRandom()
    const payments = Wallet.createRandom().address
    const domain = heuristDomain(31337n, payments)
    const miner = Wallet.createRandom().address
    const pod = '0x' + 'ab'.repeat(32)
    const book = new VoucherBook(store, gw.address, gw.address, { wallet: new Wallet(gw.privateKey), domain })
    await book.raise(miner, pod, 0, 100n)
    await Promise.all([book.raise(miner, pod, 0, 5n), book.raise(miner, pod, 0, 7n)])
    const v = (await book.latest(miner, pod))!
    expect(v.cumulativeAmount).toBe(112n)
    const { signature, ...voucher } = v
    expect(verifyTypedData(domain as never, VoucherTypes, voucher, signature)).toBe(gw.address)
    const other = await book.raise(miner, '0x' + 'cd'.repeat(32), 0, 1n)
    expect(other.cumulativeAmount).toBe(1n)
    await store.close()
    store = await Store.open(dir)
    const again = new VoucherBook(store, gw.address, gw.address, null)
    expect((await again.raise(miner, pod, 0, 1n)).cumulativeAmount).toBe(113n)
  })
})

describe('transcripts', () => {
  it('serves a transcript inside the retention window and prunes it after', async () => {
    const t = new Transcripts(store, { retentionMs: 1000 })
    await t.put({ jobId: 'j1', modelId: 'm', kind: 'llm', miner: 'p', input: { a: 1 }, output: { text: 'x' }, endedAt: 10_000 })
    await t.put({ jobId: 'j2', modelId: 'm', kind: 'llm', miner: 'p', input: {}, output: {}, endedAt: 10_900 })
    expect((await t.get('j1', 10_500))?.output).toEqual({ text: 'x' })
    expect(await t.get('j1', 11_500)).toBeUndefined()
    expect(await t.prune(11_500)).toBe(1)
    expect(await t.get('j2', 11_500)).toBeDefined()
  })
})
