import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import OpenAI from 'openai'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { ensureTinyModels, createLlamaEngine, type LlamaEngine, type ModelInfo } from '../../src/inference/index.js'
import { Accounts, createGateway, createLocalBackend, type Gateway } from '../../src/gateway/index.js'
import { PARAMETERS, parameterTableMarkdown } from '../../src/gateway/parameters.js'
import { readFile } from 'node:fs/promises'
import { tempDir } from '../helpers.js'

/**
 * Structured outputs, tool calls, logprobs and the parameter table, through the gateway on the
 * real engine (llama.cpp on the tiny GGUF), driven by the official openai client.
 */
let store: Store
let cleanup: () => Promise<void>
let llm: LlamaEngine
let info: ModelInfo
let gw: Gateway
let client: OpenAI
let apiKey: string

beforeAll(async () => {
  const t = await tempDir('heurist-gw-structured-')
  cleanup = t.cleanup
  store = await Store.open(`${t.dir}/store`)
  const [tiny] = await ensureTinyModels(`${t.dir}/models`, { names: ['tiny-llama'] })
  llm = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 2 })
  info = await llm.load(tiny!.path, { id: tiny!.id, name: tiny!.name })
  const accounts = new Accounts(store)
  apiKey = (await accounts.create(10n ** 18n)).apiKey
  gw = createGateway({ backend: createLocalBackend({ models: [info], llm, pricePerUnit: 1n }), accounts, logger: silentLogger(), vouchers: null, transcripts: null }, { port: 0 })
  await gw.start()
  client = new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 60_000 })
})

afterAll(async () => {
  await gw?.stop()
  await llm?.stop()
  await store?.close()
  await cleanup?.()
})

const user = [{ role: 'user' as const, content: 'What is the weather?' }]
const weather = { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome'] }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['city', 'unit'], additionalProperties: false }
const tools = [
  { type: 'function' as const, function: { name: 'get_weather', description: 'weather in a city', parameters: weather } },
  { type: 'function' as const, function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', enum: ['utc', 'cet'] } }, required: ['zone'], additionalProperties: false } } }
]

async function post (body: unknown, path = '/v1/chat/completions'): Promise<{ status: number, json: { error?: { param: string | null, code: string | null, message: string } } }> {
  const r = await fetch(gw.url + path, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: r.status, json: await r.json() as never }
}

describe('parameters the gateway does not honour', () => {
  it('an unknown parameter, an unsupported one and an unsupported value are 400 naming the parameter', async () => {
    const base = { model: 'tiny-llama', messages: user, max_tokens: 4 }
    for (const [extra, param, code] of [
      [{ frobnicate: 1 }, 'frobnicate', 'unsupported_parameter'],
      [{ audio: { voice: 'x' } }, 'audio', 'unsupported_parameter'],
      [{ frequency_penalty: 0.5 }, 'frequency_penalty', 'unsupported_value'],
      [{ logit_bias: { 5: 10 } }, 'logit_bias', 'unsupported_value'],
      [{ reasoning_effort: 'low' }, 'reasoning_effort', 'unsupported_parameter']
    ] as const) {
      const r = await post({ ...base, ...extra })
      expect(r.status, param).toBe(400)
      expect(r.json.error).toMatchObject({ param, code })
      expect(r.json.error!.message).toContain(param)
    }
    const img = await post({ model: 'tiny-llama', prompt: 'x', quality: 'hd' }, '/v1/images/generations')
    expect(img.json.error).toMatchObject({ param: 'quality' })
  })

  it('a no-op value (penalty 0, n 1, store false) and null are accepted', async () => {
    const r = await post({ model: 'tiny-llama', messages: user, max_tokens: 4, frequency_penalty: 0, presence_penalty: 0, n: 1, store: false, metadata: null, logit_bias: {} })
    expect(r.status).toBe(200)
  })

  it('docs/gateway.md holds the table the gateway checks', async () => {
    const doc = await readFile(new URL('../../docs/gateway.md', import.meta.url), 'utf8')
    expect(doc).toContain(parameterTableMarkdown())
    expect(Object.keys(PARAMETERS.chat)).toContain('response_format')
  })
})

describe('logprobs', () => {
  it('non-streamed: one entry per output token, top_logprobs alternatives, most likely first; text and tokens unchanged', async () => {
    const plain = await client.chat.completions.create({ model: 'tiny-llama', messages: user, max_tokens: 12, seed: 5 })
    const r = await client.chat.completions.create({ model: 'tiny-llama', messages: user, max_tokens: 12, seed: 5, logprobs: true, top_logprobs: 3 })
    expect(r.choices[0]!.message.content).toBe(plain.choices[0]!.message.content)
    const lp = r.choices[0]!.logprobs!.content!
    expect(lp).toHaveLength(r.usage!.completion_tokens)
    expect(lp.map(x => x.token).join('')).toBe(r.choices[0]!.message.content)
    for (const x of lp) {
      expect(x.logprob).toBeLessThanOrEqual(0)
      expect(x.top_logprobs).toHaveLength(3)
      expect(x.top_logprobs[0]!.logprob).toBeGreaterThanOrEqual(x.top_logprobs[2]!.logprob)
      expect(x.top_logprobs[0]!.logprob).toBeGreaterThanOrEqual(x.logprob - 1e-9)
      expect(x.bytes).toEqual([...Buffer.from(x.token)])
    }
  })

  it('streamed: the chunks carry the same logprobs; without logprobs there are none; top_logprobs alone is 400', async () => {
    const base = { model: 'tiny-llama', messages: user, max_tokens: 10, seed: 9 }
    const whole = await client.chat.completions.create({ ...base, logprobs: true, top_logprobs: 2 })
    const stream = await client.chat.completions.create({ ...base, logprobs: true, top_logprobs: 2, stream: true })
    const got: unknown[] = []
    let text = ''
    for await (const c of stream) { text += c.choices[0]?.delta.content ?? ''; got.push(...(c.choices[0]?.logprobs?.content ?? [])) }
    expect(text).toBe(whole.choices[0]!.message.content)
    expect(got).toEqual(whole.choices[0]!.logprobs!.content)
    const none = await client.chat.completions.create(base)
    expect(none.choices[0]!.logprobs).toBeNull()
    expect((await post({ ...base, top_logprobs: 2 })).json.error).toMatchObject({ param: 'top_logprobs' })
  })
})

describe('structured outputs', () => {
  it('json_schema: the answer parses and follows the schema, for several seeds', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({ model: 'tiny-llama', messages: user, max_tokens: 200, seed, response_format: { type: 'json_schema', json_schema: { name: 'w', strict: true, schema: weather } } })
      const v = JSON.parse(r.choices[0]!.message.content!) as { city: string, unit: string }
      expect(['Paris', 'Rome']).toContain(v.city)
      expect(['c', 'f']).toContain(v.unit)
      expect(Object.keys(v).sort()).toEqual(['city', 'unit'])
      expect(r.choices[0]!.finish_reason).toBe('stop')
    }
  })

  it('json_object: the answer parses as an object', async () => {
    const r = await client.chat.completions.create({ model: 'tiny-llama', messages: user, max_tokens: 200, seed: 4, response_format: { type: 'json_object' } })
    const v = JSON.parse(r.choices[0]!.message.content!) as unknown
    expect(typeof v).toBe('object')
    expect(Array.isArray(v)).toBe(false)
  })

  it('a schema keyword the grammar cannot enforce is 400 naming where it is', async () => {
    const r = await post({ model: 'tiny-llama', messages: user, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'string', pattern: '^a+$' } } } } } })
    expect(r.status).toBe(400)
    expect(r.json.error).toMatchObject({ param: 'response_format.schema.properties.a.pattern', code: 'invalid_schema' })
  })
})

describe('tool calls', () => {
  it('required: tool_calls with a known name and arguments under its schema, finish_reason tool_calls', async () => {
    const r = await client.chat.completions.create({ model: 'tiny-llama', messages: user, max_tokens: 300, seed: 3, tools, tool_choice: 'required' })
    const m = r.choices[0]!.message
    expect(r.choices[0]!.finish_reason).toBe('tool_calls')
    expect(m.content).toBeNull()
    expect(m.tool_calls!.length).toBeGreaterThanOrEqual(1)
    for (const c of m.tool_calls!) {
      if (c.type !== 'function') throw new Error('function call expected')
      expect(c.id).toMatch(/^call_/)
      const a = JSON.parse(c.function.arguments) as Record<string, string>
      if (c.function.name === 'get_weather') expect(['Paris', 'Rome']).toContain(a.city)
      else { expect(c.function.name).toBe('get_time'); expect(['utc', 'cet']).toContain(a.zone) }
    }
  })

  it('a named function, one call when parallel_tool_calls is false', async () => {
    for (const seed of [1, 2]) {
      const r = await client.chat.completions.create({ model: 'tiny-llama', messages: user, max_tokens: 300, seed, tools, tool_choice: { type: 'function', function: { name: 'get_time' } }, parallel_tool_calls: false })
      const calls = r.choices[0]!.message.tool_calls!
      expect(calls).toHaveLength(1)
      if (calls[0]!.type !== 'function') throw new Error('function call expected')
      expect(calls[0]!.function.name).toBe('get_time')
    }
  })

  it('a named function is called exactly once even when parallel calls are allowed (structured-output clients read one call)', async () => {
    for (let seed = 1; seed <= 12; seed++) {
      const r = await client.chat.completions.create({ model: 'tiny-llama', messages: user, max_tokens: 400, seed, tools: [tools[0]!], tool_choice: { type: 'function', function: { name: 'get_weather' } } })
      const calls = r.choices[0]!.message.tool_calls!
      expect(calls, `seed ${seed}`).toHaveLength(1)
      if (calls[0]!.type !== 'function') throw new Error('function call expected')
      expect(calls[0]!.function.name).toBe('get_weather')
    }
  })

  it('auto: either calls or content, never raw JSON; none: plain text, no calls', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({ model: 'tiny-llama', messages: user, max_tokens: 300, seed, tools, tool_choice: 'auto' })
      const m = r.choices[0]!.message
      if (m.tool_calls !== undefined && m.tool_calls.length > 0) expect(r.choices[0]!.finish_reason).toBe('tool_calls')
      else expect(typeof m.content).toBe('string')
    }
    const none = await client.chat.completions.create({ model: 'tiny-llama', messages: user, max_tokens: 8, seed: 1, tools, tool_choice: 'none' })
    expect(none.choices[0]!.message.tool_calls).toBeUndefined()
    expect(none.choices[0]!.finish_reason).toBe('length')
  })

  it('streamed: tool-call deltas assemble to the same calls as the non-streamed answer; a tool result continues the conversation', async () => {
    const base = { model: 'tiny-llama', messages: user, max_tokens: 300, seed: 3, tools, tool_choice: 'required' as const }
    const whole = await client.chat.completions.create(base)
    const stream = await client.chat.completions.create({ ...base, stream: true })
    const calls: Array<{ name: string, arguments: string }> = []
    let finish = ''
    for await (const c of stream) {
      for (const d of c.choices[0]?.delta.tool_calls ?? []) {
        calls[d.index] ??= { name: '', arguments: '' }
        calls[d.index]!.name += d.function?.name ?? ''
        calls[d.index]!.arguments += d.function?.arguments ?? ''
      }
      finish = c.choices[0]?.finish_reason ?? finish
    }
    expect(finish).toBe('tool_calls')
    expect(calls).toEqual(whole.choices[0]!.message.tool_calls!.map(c => c.type === 'function' ? { name: c.function.name, arguments: c.function.arguments } : null))
    const first = whole.choices[0]!.message.tool_calls![0]!
    const next = await client.chat.completions.create({ model: 'tiny-llama', max_tokens: 8, seed: 1, tools, messages: [...user, whole.choices[0]!.message, { role: 'tool', tool_call_id: first.id, content: '21 degrees' }], tool_choice: 'none' })
    expect(next.choices[0]!.message.content!.length).toBeGreaterThan(0)
  })
})

describe('/v1/responses', () => {
  it('string input with instructions: output_text, a message item, usage; the same text as chat for the same messages and seed', async () => {
    const r = await client.responses.create({ model: 'tiny-llama', instructions: 'Be brief.', input: 'Hello there', max_output_tokens: 12, temperature: 0.7 })
    expect(r.object).toBe('response')
    expect(r.status).toBe('incomplete')
    expect(r.incomplete_details).toEqual({ reason: 'max_output_tokens' })
    expect(r.output).toHaveLength(1)
    expect(r.output[0]!.type).toBe('message')
    expect(r.output_text.length).toBeGreaterThan(0)
    expect(r.usage!.output_tokens).toBe(12)
    expect(r.usage!.total_tokens).toBe(r.usage!.input_tokens + 12)
  })

  it('streamed: created, in_progress, item and part added, deltas that make the text, done events, then incomplete/completed with the whole response', async () => {
    const base = { model: 'tiny-llama', input: [{ role: 'user' as const, content: 'Hi' }], max_output_tokens: 10 }
    const stream = await client.responses.create({ ...base, stream: true })
    const types: string[] = []
    let text = ''
    let final: { output_text: string, usage: unknown } | null = null
    for await (const e of stream) {
      types.push(e.type)
      if (e.type === 'response.output_text.delta') text += e.delta
      if (e.type === 'response.incomplete' || e.type === 'response.completed') final = e.response as never
    }
    expect(types.slice(0, 4)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added'])
    expect(types.slice(-4)).toEqual(['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete'])
    expect(types.filter(t => t === 'response.output_text.delta').length).toBeGreaterThan(0)
    expect(final!.output_text).toBe(text)
    expect(final!.usage).toMatchObject({ output_tokens: 10 })
  })

  it('json_schema in text.format and required tools, streamed and not; previous_response_id is 400', async () => {
    const j = await client.responses.create({ model: 'tiny-llama', input: 'weather?', max_output_tokens: 200, text: { format: { type: 'json_schema', name: 'w', schema: weather, strict: true } } })
    expect(['Paris', 'Rome']).toContain((JSON.parse(j.output_text) as { city: string }).city)
    const rtools = tools.map(t => ({ type: 'function' as const, name: t.function.name, parameters: t.function.parameters, strict: true }))
    // one call per answer: /v1/responses takes no seed, and with up to 8 parallel calls the tiny
    // model's random weights sometimes add calls until max tokens cut the JSON, leaving no
    // function_call (failed once in a fresh-clone CI run); parallel calls are tested on chat, seeded
    const t = await client.responses.create({ model: 'tiny-llama', input: 'weather?', max_output_tokens: 300, tools: rtools, tool_choice: 'required', parallel_tool_calls: false })
    const calls = t.output.filter(o => o.type === 'function_call')
    expect(calls.length).toBeGreaterThanOrEqual(1)
    expect(t.output_text).toBe('')
    const s = await client.responses.create({ model: 'tiny-llama', input: 'weather?', max_output_tokens: 300, tools: rtools, tool_choice: 'required', parallel_tool_calls: false, stream: true })
    let args = ''
    for await (const e of s) if (e.type === 'response.function_call_arguments.delta') args += e.delta
    expect(args.length).toBeGreaterThan(2)
    expect((await post({ model: 'tiny-llama', input: 'x', previous_response_id: 'resp_1' }, '/v1/responses')).json.error).toMatchObject({ param: 'previous_response_id' })
  })
})

describe('logprobs under a grammar', () => {
  it('cover the delivered JSON only, not the grammar\'s end cut from it', async () => {
    const r = await client.chat.completions.create({ model: 'tiny-llama', messages: user, max_tokens: 200, seed: 2, logprobs: true, response_format: { type: 'json_schema', json_schema: { name: 'w', schema: weather } } })
    expect(r.choices[0]!.finish_reason).toBe('stop')
    expect(r.choices[0]!.logprobs!.content!.map(x => x.token).join('')).toBe(r.choices[0]!.message.content)
  })
})
