import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { Wallet } from 'ethers'
import {
  MAX_BYTES, PeerTable, advertSchema, decodeMessage, encodeMessage, requestFrameSchema, responseFrameSchema, receiptMessageSchema,
  signReceipt, verifyReceipt, receiptSigner, type Advert
} from '../../src/p2p/index.js'
import { isHeuristError } from '../../src/core/errors.js'
import { silentLogger } from '../../src/core/logger.js'
import { Store } from '../../src/core/store.js'
import { tempDir } from '../helpers.js'

const CODES = new Set(['P2P_MESSAGE_TOO_LARGE', 'P2P_MALFORMED', 'P2P_BAD_VERSION', 'P2P_SCHEMA'])

function decodeCode (bytes: Uint8Array, schema: Parameters<typeof decodeMessage>[1], max: number): string {
  try { decodeMessage(bytes, schema, max, 'x'); return 'OK' } catch (e) { return isHeuristError(e) ? e.code : `UNTYPED ${String(e)}` }
}

describe('wire codecs are total', () => {
  it('any bytes decode to a value or a typed P2P_* error (adverts, requests, frames, receipts)', () => {
    const schemas = [[advertSchema, MAX_BYTES.advert], [requestFrameSchema, MAX_BYTES.request], [responseFrameSchema, MAX_BYTES.frame], [receiptMessageSchema, MAX_BYTES.receipt]] as const
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), bytes => {
      for (const [schema, max] of schemas) {
        const c = decodeCode(bytes, schema, max)
        expect(c === 'OK' || CODES.has(c), c).toBe(true)
      }
    }), { numRuns: 300 })
    // JSON-shaped junk too: objects with the right version but anything inside
    fc.assert(fc.property(fc.jsonValue(), fc.boolean(), (v, withVersion) => {
      const obj = withVersion && v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...v, v: 1 } : v
      for (const [schema, max] of schemas) {
        const c = decodeCode(encodeMessage(obj), schema, max)
        expect(c === 'OK' || CODES.has(c), c).toBe(true)
      }
    }), { numRuns: 300 })
  })

  it('checks the size bound before parsing', () => {
    expect(decodeCode(new Uint8Array(MAX_BYTES.advert + 1).fill(0x20), advertSchema, MAX_BYTES.advert)).toBe('P2P_MESSAGE_TOO_LARGE')
  })
})

describe('receipts', () => {
  it('verify only under the domain and signer they were made with', async () => {
    const miner = Wallet.createRandom()
    const r = { jobId: '0x' + '1'.repeat(64), requester: Wallet.createRandom().address, miner: miner.address, modelId: '0x' + '2'.repeat(64), pool: 0, inputHash: '0x' + '3'.repeat(64), outputHash: '0x' + '4'.repeat(64), paramsHash: '0x' + '5'.repeat(64), computeUnits: 10n, startedAt: 1n, endedAt: 2n }
    const signed = await signReceipt(miner, r, { chainId: 31337, verifyingContract: '0x' + '9'.repeat(40) })
    expect(verifyReceipt(signed, { chainId: 31337, verifyingContract: '0x' + '9'.repeat(40) }, miner.address)).toBe(true)
    expect(verifyReceipt(signed, { chainId: 1, verifyingContract: '0x' + '9'.repeat(40) })).toBe(false)
    expect(verifyReceipt({ ...signed, receipt: { ...signed.receipt, computeUnits: '11' } }, { chainId: 31337, verifyingContract: '0x' + '9'.repeat(40) })).toBe(false)
    expect(receiptSigner({ ...signed, signature: '0x' + '00'.repeat(65) })).toBeNull()
  })
})

describe('receipt gossip', () => {
  it('takes a receipt only from its requester, and measured units only countersigned by it', async () => {
    const { identityFromPrivateKey } = await import('../../src/core/identity.js')
    const { countersign, receiptHash, encodeMessage, GossipValidationError, createReceiptValidator } = await import('../../src/p2p/index.js')
    const miner = Wallet.createRandom()
    const gateway = Wallet.createRandom()
    const domain = { chainId: 31337, verifyingContract: '0x' + '9'.repeat(40) }
    const r = { jobId: '0x' + '1'.repeat(64), requester: gateway.address, miner: miner.address, modelId: '0x' + '2'.repeat(64), pool: 0, inputHash: '0x' + '3'.repeat(64), outputHash: '0x' + '4'.repeat(64), paramsHash: '0x' + '5'.repeat(64), computeUnits: 10n, startedAt: 1n, endedAt: 2n }
    const signed = await signReceipt(miner, r, domain)
    const rh = receiptHash(signed, domain)
    const msg = (from: Wallet, m: unknown): never => ({ type: 'signed', from: identityFromPrivateKey(from.privateKey).peerId, topic: 'heurist/1/receipts', data: encodeMessage(m) }) as never
    const base = { v: 1, type: 'receipt', signed, chainId: 31337, verifyingContract: domain.verifyingContract }
    const outcome = (f: () => unknown): string => { try { f(); return 'accepted' } catch (e) { return e instanceof GossipValidationError ? e.code : `threw ${(e as Error).message}` } }
    expect(outcome(() => createReceiptValidator()(msg(miner, base)))).toBe('P2P_NOT_REQUESTER')
    expect(outcome(() => createReceiptValidator()(msg(gateway, { ...base, measured: { units: '10', signature: countersign(miner, rh, 10n) } })))).toBe('P2P_BAD_COUNTERSIGNATURE')
    expect(outcome(() => createReceiptValidator()(msg(gateway, { ...base, measured: { units: '11', signature: countersign(gateway, rh, 10n) } })))).toBe('P2P_BAD_COUNTERSIGNATURE')
    expect(outcome(() => createReceiptValidator()(msg(gateway, { ...base, measured: { units: '10', signature: countersign(gateway, rh, 10n) } })))).toBe('accepted')
  })
})

describe('peer table', () => {
  it('expires adverts and keeps uptime sessions in the store across restarts', async () => {
    const t = await tempDir()
    try {
      let now = 1_000_000
      const advert = (seq: number): Advert => ({ v: 1, type: 'capacity', operator: '0x' + 'a'.repeat(40), seq, ts: now, ttlMs: 15_000, hardware: { gpus: [], cpuCores: 2, ramBytes: 1 }, models: [{ id: 'c'.repeat(64), name: 'm', kind: 'llm', contextSize: 1 }], queueDepth: 0, maxJobs: 1, tokensPerSecond: 0, imagesPerSecond: 0, price: '0', version: 't', addrs: [], paid: false })
      let store = await Store.open(t.dir)
      let table = new PeerTable(store, silentLogger(), { now: () => now, sessionGapMs: 30_000 })
      for (let i = 0; i < 7; i++) { table.update('peer1', advert(i)); now += 5_000 } // 30 s up
      expect(table.miners('c'.repeat(64)).length).toBe(1)
      now += 20_000 // past the 15 s TTL
      expect(table.miners().length).toBe(0)
      now += 60_000 // a gap: a new session starts
      table.update('peer1', advert(100))
      await table.flush()
      await store.close()
      store = await Store.open(t.dir)
      table = new PeerTable(store, silentLogger(), { now: () => now, sessionGapMs: 30_000 })
      const h = await table.peerHistory('0x' + 'a'.repeat(40))
      expect(h?.sessions.length).toBe(2)
      expect(h!.sessions[0]![1] - h!.sessions[0]![0]).toBe(30_000)
      const up = await table.uptime('0x' + 'a'.repeat(40), 120_000)
      expect(up).toBeGreaterThan(0.2)
      expect(up).toBeLessThan(0.5)
      await store.close()
    } finally { await t.cleanup() }
  })
})
