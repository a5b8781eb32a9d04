import { describe, it, expect } from 'vitest'
import { z } from 'zod'
import { Store, Repository } from '../../src/core/store.js'
import { isHeuristError } from '../../src/core/errors.js'
import { tempDir } from '../helpers.js'

const Receipt = z.object({ jobId: z.string(), units: z.number().int().nonnegative() })

describe('store', () => {
  it('typed buckets round-trip and keep their prefixes apart', async () => {
    const { dir, cleanup } = await tempDir()
    const store = await Store.open(dir)
    try {
      const a = store.bucket('receipts', Receipt)
      const b = store.bucket('other', z.string())
      await a.put('k', { jobId: 'j1', units: 3 })
      await b.put('k', 'hello')
      expect(await a.get('k')).toEqual({ jobId: 'j1', units: 3 })
      expect(await b.get('k')).toBe('hello')
      expect(await a.get('missing')).toBeUndefined()
      expect((await a.entries()).map(([k]) => k)).toEqual(['k'])
    } finally { await store.close(); await cleanup() }
  })

  it('a batch with one bad value writes nothing', async () => {
    const { dir, cleanup } = await tempDir()
    const store = await Store.open(dir)
    try {
      const receipts = store.bucket('receipts', Receipt)
      const index = store.bucket('index', z.string())
      const err = await store.batch([
        { type: 'put', repo: receipts, key: 'a', value: { jobId: 'a', units: 1 } },
        { type: 'put', repo: index, key: 'a', value: 'receipt:a' },
        { type: 'put', repo: receipts, key: 'b', value: { jobId: 'b', units: -5 } }
      ]).catch((e: unknown) => e)
      expect(isHeuristError(err, 'STORE_BAD_VALUE')).toBe(true)
      expect(await receipts.get('a')).toBeUndefined()
      expect(await index.get('a')).toBeUndefined()

      await store.batch([
        { type: 'put', repo: receipts, key: 'a', value: { jobId: 'a', units: 1 } },
        { type: 'put', repo: index, key: 'a', value: 'receipt:a' }
      ])
      expect(await receipts.get('a')).toEqual({ jobId: 'a', units: 1 })
      expect(await index.get('a')).toBe('receipt:a')
    } finally { await store.close(); await cleanup() }
  })

  it('a second open of a held store is a clear STORE_LOCKED error', async () => {
    const { dir, cleanup } = await tempDir()
    const store = await Store.open(dir)
    try {
      const err = await Store.open(dir).catch((e: unknown) => e)
      expect(isHeuristError(err, 'STORE_LOCKED')).toBe(true)
      expect((err as Error).message).toContain('another running heurist')
    } finally { await store.close(); await cleanup() }
  })

  it('refuses a store written by another schema version', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      await (await Store.open(dir, { schemaVersion: 1 })).close()
      const err = await Store.open(dir, { schemaVersion: 2 }).catch((e: unknown) => e)
      expect(isHeuristError(err, 'STORE_SCHEMA_MISMATCH')).toBe(true)
    } finally { await cleanup() }
  })

  it('a stored value that no longer matches its schema is reported, not returned', async () => {
    const { dir, cleanup } = await tempDir()
    const store = await Store.open(dir)
    try {
      await store.bucket('loose', z.unknown()).put('x', { jobId: 5 })
      const loose = store.bucket('loose', z.unknown())
      expect(await loose.get('x')).toEqual({ jobId: 5 })
      const typed = new Repository('loose', loose.sub, Receipt)
      const err = await typed.get('x').catch((e: unknown) => e)
      expect(isHeuristError(err, 'STORE_CORRUPT')).toBe(true)
    } finally { await store.close(); await cleanup() }
  })
})
