import { Level } from 'level'
import type { z } from 'zod'
import { mkdir } from 'node:fs/promises'
import { HeuristError } from './errors.js'

/**
 * The node's key-value store: LevelDB under the home folder, one prefix (sublevel) per bucket,
 * values stored as JSON and validated by the bucket's schema on the way in and out, a schema
 * version checked at open, and related writes in one atomic batch.
 */
export const STORE_SCHEMA_VERSION = 1

type Sub = ReturnType<Level<string, unknown>['sublevel']>

export interface StoreOptions {
  /** Schema version this code reads and writes. Default STORE_SCHEMA_VERSION. */
  schemaVersion?: number
}

/** bigint is stored as a decimal string: JSON has no bigints. Schemas use `z.coerce.bigint()` or strings. */
function toJson (value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v))
}

export class Repository<T> {
  constructor (readonly name: string, readonly sub: Sub, readonly schema: z.ZodType<T>) {}

  /** Validates a value before it is written: bad data never reaches the disk. */
  encode (value: T): unknown {
    const parsed = this.schema.safeParse(value)
    if (!parsed.success) {
      throw new HeuristError('STORE_BAD_VALUE', `store bucket ${this.name}: value does not match its schema: ${parsed.error.issues[0]?.message ?? ''}`)
    }
    return toJson(parsed.data)
  }

  decode (key: string, raw: unknown): T {
    const parsed = this.schema.safeParse(raw)
    if (!parsed.success) throw new HeuristError('STORE_CORRUPT', `store bucket ${this.name}, key ${key}: stored value does not match its schema`)
    return parsed.data
  }

  async get (key: string): Promise<T | undefined> {
    const raw = await this.sub.get(key)
    return raw === undefined ? undefined : this.decode(key, raw)
  }

  async put (key: string, value: T): Promise<void> {
    await this.sub.put(key, this.encode(value))
  }

  async del (key: string): Promise<void> {
    await this.sub.del(key)
  }

  /** Entries in key order within optional bounds; `limit` bounds how many are read. */
  async entries (range: { gt?: string, gte?: string, lt?: string, lte?: string, limit?: number, reverse?: boolean } = {}): Promise<Array<[string, T]>> {
    const out: Array<[string, T]> = []
    for await (const [k, v] of this.sub.iterator({ ...range, limit: range.limit ?? 100_000 })) out.push([k, this.decode(k, v)])
    return out
  }
}

export type BatchOp = { type: 'put', repo: Repository<any>, key: string, value: unknown } | { type: 'del', repo: Repository<any>, key: string }

export class Store {
  private readonly buckets = new Map<string, Repository<any>>()
  private closed = false

  private constructor (readonly path: string, private readonly db: Level<string, unknown>) {}

  /**
   * Opens (or creates) the store. Another running node holding the same folder gives a clear
   * STORE_LOCKED error; a store written by another schema version gives STORE_SCHEMA_MISMATCH.
   */
  static async open (path: string, options: StoreOptions = {}): Promise<Store> {
    const version = options.schemaVersion ?? STORE_SCHEMA_VERSION
    await mkdir(path, { recursive: true })
    const db = new Level<string, unknown>(path, { valueEncoding: 'json' })
    try {
      await db.open()
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause
      if (cause?.code === 'LEVEL_LOCKED') {
        throw new HeuristError('STORE_LOCKED', `the store ${path} is in use by another running heurist process; stop it or use another --home`)
      }
      throw new HeuristError('STORE_OPEN_FAILED', `cannot open the store ${path}: ${(cause as Error | undefined)?.message ?? (e as Error).message}`)
    }
    const meta = db.sublevel<string, unknown>('meta', { valueEncoding: 'json' })
    const found = await meta.get('schemaVersion')
    if (found === undefined) {
      await meta.put('schemaVersion', version)
    } else if (found !== version) {
      await db.close()
      throw new HeuristError('STORE_SCHEMA_MISMATCH', `the store ${path} has schema version ${String(found)}, this heurist reads version ${version}`)
    }
    return new Store(path, db)
  }

  /** A typed repository over one bucket (one key prefix). Same name → same repository. */
  bucket<T> (name: string, schema: z.ZodType<T>): Repository<T> {
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(name) || name === 'meta') throw new HeuristError('STORE_BAD_BUCKET', `bad bucket name ${name}`)
    let repo = this.buckets.get(name)
    if (repo === undefined) {
      repo = new Repository<T>(name, this.db.sublevel<string, unknown>(name, { valueEncoding: 'json' }) as Sub, schema)
      this.buckets.set(name, repo)
    }
    return repo as Repository<T>
  }

  /**
   * Writes all ops or none. Every value is validated first, so one bad value leaves the
   * store as it was.
   */
  async batch (ops: BatchOp[]): Promise<void> {
    const encoded = ops.map(op => op.type === 'put'
      ? { type: 'put' as const, sublevel: op.repo.sub, key: op.key, value: op.repo.encode(op.value) }
      : { type: 'del' as const, sublevel: op.repo.sub, key: op.key })
    await this.db.batch(encoded as never)
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.db.close()
  }
}
