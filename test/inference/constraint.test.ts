import { describe, it, expect } from 'vitest'
import { normalizeSchema, isNormalSchema, SchemaError, CONSTRAINT_LIMITS } from '../../src/inference/index.js'
import { decodeMessage, encodeMessage, paramsHashOf, requestFrameSchema, MAX_BYTES } from '../../src/p2p/index.js'

describe('output schemas → the grammar subset', () => {
  it('keeps what a grammar enforces, drops annotations, anyOf becomes oneOf, the safe-integer bounds zod writes vanish', () => {
    const s = normalizeSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      title: 'T',
      type: 'object',
      description: 'd',
      properties: {
        a: { type: 'string', enum: ['x', 'y'], description: 'an a' },
        n: { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
        u: { anyOf: [{ type: 'string', maxLength: 3 }, { type: 'null' }] },
        r: { $ref: '#/$defs/R' }
      },
      required: ['a'],
      additionalProperties: false,
      $defs: { R: { type: 'array', items: { type: 'boolean' }, maxItems: 2 } }
    })
    expect(s).toEqual({
      type: 'object',
      properties: { a: { type: 'string', enum: ['x', 'y'] }, n: { type: 'integer' }, u: { oneOf: [{ type: 'string', maxLength: 3 }, { type: 'null' }] }, r: { $ref: '#/$defs/R' } },
      required: ['a'],
      additionalProperties: false,
      $defs: { R: { type: 'array', items: { type: 'boolean' }, maxItems: 2 } }
    })
    expect(isNormalSchema(s)).toBe(true)
    expect(normalizeSchema(s)).toEqual(s)
  })

  it('refuses what a grammar cannot enforce, naming where it is', () => {
    const cases: Array<[unknown, string]> = [
      [{ type: 'object', properties: { a: { type: 'string', pattern: '^a' } } }, 'properties.a.pattern'],
      [{ type: 'number', minimum: 0 }, 'minimum'],
      [{ allOf: [{ type: 'string' }] }, 'allOf'],
      [{ type: 'array', maxItems: CONSTRAINT_LIMITS.items + 1 }, 'maxItems'],
      [{ $ref: '#/$defs/missing' }, '$ref'],
      [{ type: 'string', format: 'email' }, 'format'],
      [{ type: ['object', 'null'] }, 'type'],
      ['not an object', '']
    ]
    for (const [schema, path] of cases) {
      let err: unknown
      try { normalizeSchema(schema) } catch (e) { err = e }
      expect(err, JSON.stringify(schema)).toBeInstanceOf(SchemaError)
      expect((err as SchemaError).path).toBe(path)
    }
  })

  it('bounds size and depth', () => {
    let deep: unknown = { type: 'string' }
    for (let i = 0; i < CONSTRAINT_LIMITS.depth + 2; i++) deep = { type: 'array', items: deep }
    expect(() => normalizeSchema(deep)).toThrow(/deeper/)
    const wide = { type: 'object', properties: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`p${i}`, { type: 'string' }])) }
    expect(() => normalizeSchema(wide)).toThrow(/bytes|nodes/)
  })

  it('a job frame takes only a schema in normal form, and the constraint changes the params hash', () => {
    const base = { v: 1, type: 'request', jobId: '0x' + '0'.repeat(64), timeoutMs: 1000, kind: 'llm', modelId: 'a'.repeat(64), input: 'x', sampling: { seed: 1, temperature: 1, topP: 1, topK: 0, maxTokens: 8, stop: [] } }
    const normal = { type: 'json_schema', schema: normalizeSchema({ type: 'object', properties: { a: { type: 'boolean' } } }) }
    expect(decodeMessage(encodeMessage({ ...base, constraint: normal }), requestFrameSchema, MAX_BYTES.request, 'job').kind).toBe('llm')
    expect(() => decodeMessage(encodeMessage({ ...base, constraint: { type: 'json_schema', schema: { type: 'object', title: 'not normal' } } }), requestFrameSchema, MAX_BYTES.request, 'job')).toThrow(/normal form/)
    expect(() => decodeMessage(encodeMessage({ ...base, constraint: { type: 'json_schema', schema: { type: 'string', pattern: 'a' } } }), requestFrameSchema, MAX_BYTES.request, 'job')).toThrow(/P2P_SCHEMA|normal form/)
    const job = { kind: 'llm' as const, modelId: base.modelId, input: base.input, sampling: base.sampling }
    expect(paramsHashOf({ ...job, constraint: normal as never })).not.toBe(paramsHashOf(job))
  })
})
