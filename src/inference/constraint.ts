import type { JsonSchema } from './types.js'

/**
 * Output schemas from outside (a client's `response_format`, a tool's `parameters`) → the
 * bounded subset llama.cpp grammars are built from (node-llama-cpp's GbnfJsonSchema). Pure.
 *
 * Kept: type (one or a list), properties, required, additionalProperties, items, prefixItems,
 * minItems/maxItems, minProperties/maxProperties, enum, const, oneOf (anyOf becomes oneOf: the
 * grammar of either is the union), $defs and `#/$defs/…` refs, string minLength/maxLength and
 * format (date-time, date, time). Dropped as annotations (they constrain nothing): $schema, $id,
 * $comment, title, description, default, examples, deprecated, readOnly, writeOnly; numeric
 * bounds only when they are the safe-integer range (what zod writes for any integer). Anything
 * else (pattern, minimum, allOf, not, …) cannot be enforced by the grammar and is refused,
 * naming where it is, so no keyword is silently ignored.
 *
 * A job carries the normalized schema; a miner and a validator accept only a schema that is
 * already normal (`normalizeSchema(s)` equals `s`), so both build the same grammar.
 */

export const CONSTRAINT_LIMITS = { bytes: 16 * 1024, depth: 16, nodes: 512, enum: 256, items: 64, length: 512, key: 128 } as const

export class SchemaError extends Error {
  override readonly name = 'SchemaError'
  constructor (readonly path: string, message: string) { super(`${path === '' ? 'schema' : path}: ${message}`) }
}

const ANNOTATIONS = new Set(['$schema', '$id', '$comment', 'title', 'description', 'default', 'examples', 'deprecated', 'readOnly', 'writeOnly'])
const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'])
const FORMATS = new Set(['date-time', 'date', 'time'])
const SAFE = Number.MAX_SAFE_INTEGER

/** The schema of any JSON value (what `{}` or `true` means). */
const anyValue = (): JsonSchema => ({ oneOf: [{ type: ['string', 'number', 'boolean', 'null'] }, { type: 'object', additionalProperties: true }, { type: 'array' }] })

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)
const isScalar = (x: unknown): x is string | number | boolean | null => x === null || typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x)) || (typeof x === 'string' && x.length <= CONSTRAINT_LIMITS.length)

export function normalizeSchema (schema: unknown): JsonSchema {
  let bytes: number
  try { bytes = Buffer.byteLength(JSON.stringify(schema) ?? '') } catch { throw new SchemaError('', 'not JSON') }
  if (bytes > CONSTRAINT_LIMITS.bytes) throw new SchemaError('', `${bytes} bytes; at most ${CONSTRAINT_LIMITS.bytes}`)
  if (!isObj(schema)) throw new SchemaError('', 'must be a JSON object')
  const defs = isObj(schema.$defs) ? schema.$defs : {}
  let nodes = 0
  const count = (n: number, path: string, max: number, what: string): number => {
    if (!Number.isSafeInteger(n) || n < 0 || n > max) throw new SchemaError(path, `${what} must be an integer from 0 to ${max}`)
    return n
  }
  const walk = (s: unknown, path: string, depth: number): JsonSchema => {
    if (++nodes > CONSTRAINT_LIMITS.nodes) throw new SchemaError(path, `more than ${CONSTRAINT_LIMITS.nodes} schema nodes`)
    if (depth > CONSTRAINT_LIMITS.depth) throw new SchemaError(path, `nested deeper than ${CONSTRAINT_LIMITS.depth}`)
    if (s === true || (isObj(s) && Object.keys(s).every(k => ANNOTATIONS.has(k)))) return anyValue()
    if (!isObj(s)) throw new SchemaError(path, 'each schema must be an object')
    const out: JsonSchema = {}
    const at = (k: string): string => path === '' ? k : `${path}.${k}`
    for (const [k, v] of Object.entries(s)) {
      if (ANNOTATIONS.has(k)) continue
      switch (k) {
        case 'type': {
          const list = Array.isArray(v) ? v : [v]
          if (list.length === 0 || list.some(t => typeof t !== 'string' || !TYPES.has(t))) throw new SchemaError(at(k), `must be one of ${[...TYPES].join(', ')} (or a list of them)`)
          if (Array.isArray(v) && list.some(t => t === 'object' || t === 'array')) throw new SchemaError(at(k), 'a list of types may hold only string, number, integer, boolean and null')
          out.type = v
          break
        }
        case 'properties': {
          if (!isObj(v)) throw new SchemaError(at(k), 'must be an object')
          const props: Record<string, unknown> = {}
          for (const [name, sub] of Object.entries(v)) {
            if (name.length > CONSTRAINT_LIMITS.key) throw new SchemaError(at(k), `a property name is longer than ${CONSTRAINT_LIMITS.key}`)
            props[name] = walk(sub, `${at(k)}.${name}`, depth + 1)
          }
          out.properties = props
          break
        }
        case 'required':
          if (!Array.isArray(v) || v.some(x => typeof x !== 'string')) throw new SchemaError(at(k), 'must be a list of property names')
          out.required = v
          break
        case 'additionalProperties':
          out.additionalProperties = typeof v === 'boolean' ? v : walk(v, at(k), depth + 1)
          break
        case 'items':
          out.items = walk(v, at(k), depth + 1)
          break
        case 'prefixItems':
          if (!Array.isArray(v) || v.length > CONSTRAINT_LIMITS.items) throw new SchemaError(at(k), `must be a list of at most ${CONSTRAINT_LIMITS.items} schemas`)
          out.prefixItems = v.map((x, i) => walk(x, `${at(k)}.${i}`, depth + 1))
          break
        case 'minItems': case 'maxItems': case 'minProperties': case 'maxProperties':
          out[k] = count(v as number, at(k), CONSTRAINT_LIMITS.items, k)
          break
        case 'minLength': case 'maxLength':
          out[k] = count(v as number, at(k), CONSTRAINT_LIMITS.length, k)
          break
        case 'format':
          if (typeof v !== 'string' || !FORMATS.has(v)) throw new SchemaError(at(k), `only ${[...FORMATS].join(', ')} can be enforced`)
          out.format = v
          break
        case 'enum':
          if (!Array.isArray(v) || v.length === 0 || v.length > CONSTRAINT_LIMITS.enum || !v.every(isScalar)) throw new SchemaError(at(k), `must be a list of 1 to ${CONSTRAINT_LIMITS.enum} strings, numbers, booleans or null`)
          out.enum = v
          break
        case 'const':
          if (!isScalar(v)) throw new SchemaError(at(k), 'must be a string, number, boolean or null')
          out.const = v
          break
        case 'oneOf': case 'anyOf':
          if (!Array.isArray(v) || v.length === 0 || v.length > CONSTRAINT_LIMITS.items) throw new SchemaError(at(k), `must be a list of 1 to ${CONSTRAINT_LIMITS.items} schemas`)
          out.oneOf = v.map((x, i) => walk(x, `${at(k)}.${i}`, depth + 1))
          break
        case '$defs':
          if (path !== '') throw new SchemaError(at(k), '$defs only at the root')
          if (!isObj(v)) throw new SchemaError(at(k), 'must be an object')
          out.$defs = Object.fromEntries(Object.entries(v).map(([name, sub]) => [name, walk(sub, `${at(k)}.${name}`, depth + 1)]))
          break
        case '$ref':
          if (typeof v !== 'string' || !v.startsWith('#/$defs/') || !Object.hasOwn(defs, v.slice(8))) throw new SchemaError(at(k), 'only refs to #/$defs/<name> of this schema')
          out.$ref = v
          break
        case 'minimum': case 'maximum':
          // zod writes the safe-integer range for every integer: no constraint at all
          if (v !== (k === 'minimum' ? -SAFE : SAFE)) throw new SchemaError(at(k), 'numeric bounds cannot be enforced by the grammar')
          break
        default:
          throw new SchemaError(at(k), `the keyword '${k}' cannot be enforced by the grammar`)
      }
    }
    if (out.type === undefined && out.properties !== undefined) out.type = 'object'
    return out
  }
  return walk(schema, '', 0)
}

/** Whether a schema from the wire is already in normal form (what miners and validators accept). */
export function isNormalSchema (schema: unknown): boolean {
  try { return JSON.stringify(normalizeSchema(schema)) === JSON.stringify(schema) } catch { return false }
}

/** Any JSON object: the schema of `response_format: {type: 'json_object'}`. */
export const ANY_OBJECT_SCHEMA: JsonSchema = { type: 'object', additionalProperties: true }
