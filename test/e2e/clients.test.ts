import { describe, it, expect } from 'vitest'
import { spawn } from 'node:child_process'
import OpenAI from 'openai'
import { createOpenAI } from '@ai-sdk/openai'
import { embedMany, generateObject, generateText, streamText, tool } from 'ai'
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai'
import { z } from 'zod'
import { BIN, tempDir } from '../helpers.js'

/**
 * Third-party clients against `heurist up` (devnet, a miner, a validator checking every
 * receipt, the gateway) over the mesh: the official `openai` client, Vercel's AI SDK (chat
 * models and the default Responses models) and LangChain (`withStructuredOutput`,
 * `bindTools`). Structured outputs and tool calls run under a grammar on the miner, and the
 * validator, teacher-forcing under the same grammar, passes every one of them; a miner that
 * ignores the grammar (`--cheat ignore-constraint`) is failed on its constrained jobs.
 */

interface Up { baseUrl: string, apiKey: string, logs: () => Array<Record<string, unknown>>, stop: () => Promise<number | null> }

async function up (extra: string[]): Promise<Up> {
  const { dir, cleanup } = await tempDir('heurist-clients-')
  const child = spawn(process.execPath, [BIN, '--home', dir, '--json', 'up', '--miners', '1', '--port', '0', '--rpc-port', '0', '--sample-rate', '1', ...extra], {
    env: { ...process.env, HEURIST_LOG_FORMAT: 'json', HEURIST_LOG_LEVEL: 'info', HEURIST_INFERENCE_THREADS: '1', HEURIST_DASHBOARD_ENABLED: 'false', HEURIST_PODS_HOST: 'false' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | null>(resolve => { child.on('close', code => { resolve(code) }) })
  const killer = setTimeout(() => { child.kill('SIGKILL') }, 170_000)
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null) child.kill('SIGINT')
    const code = await Promise.race([exited, new Promise<null>(resolve => setTimeout(() => { child.kill('SIGKILL'); resolve(null) }, 30_000))])
    clearTimeout(killer)
    await cleanup()
    return code
  }
  const end = Date.now() + 90_000
  while (!stdout.includes('\n') && Date.now() < end && child.exitCode === null) await new Promise(resolve => setTimeout(resolve, 100))
  if (!stdout.includes('\n')) { await stop(); throw new Error(`heurist up did not start: ${stderr.slice(-2000)}`) }
  const ready = JSON.parse(stdout.split('\n')[0]!) as { baseUrl: string, apiKey: string }
  const logs = (): Array<Record<string, unknown>> => stderr.split('\n').filter(l => l.startsWith('{')).flatMap(l => { try { return [JSON.parse(l) as Record<string, unknown>] } catch { return [] } })
  return { baseUrl: ready.baseUrl, apiKey: ready.apiKey, logs, stop }
}

/** Waits (bounded) until the validator has published `n` verdicts; returns them. */
async function verdicts (u: Up, n: number, ms = 60_000): Promise<Array<Record<string, unknown>>> {
  const end = Date.now() + ms
  let v = u.logs().filter(j => j.msg === 'verdict')
  while (v.length < n && Date.now() < end) { await new Promise(resolve => setTimeout(resolve, 200)); v = u.logs().filter(j => j.msg === 'verdict') }
  return v
}

const city = z.object({ city: z.enum(['Paris', 'Rome']), sunny: z.boolean() })
const weatherParams = { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome'] } }, required: ['city'], additionalProperties: false }

describe('third-party clients against heurist up', () => {
  it('openai, the AI SDK (chat and Responses models) and LangChain: text, streams, structured outputs, tool calls and logprobs; the validator passes every job', async () => {
    const u = await up([])
    try {
      let jobs = 0
      // the official client
      const oa = new OpenAI({ apiKey: u.apiKey, baseURL: u.baseUrl, maxRetries: 0, timeout: 60_000 })
      const js = await oa.chat.completions.create({ model: 'tiny-llama', messages: [{ role: 'user', content: 'weather?' }], max_tokens: 200, seed: 1, response_format: { type: 'json_schema', json_schema: { name: 'c', strict: true, schema: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome'] }, sunny: { type: 'boolean' } }, required: ['city', 'sunny'], additionalProperties: false } } } }); jobs++
      expect(city.parse(JSON.parse(js.choices[0]!.message.content!))).toBeTruthy()
      const lp = await oa.chat.completions.create({ model: 'tiny-llama', messages: [{ role: 'user', content: 'hi' }], max_tokens: 6, logprobs: true, top_logprobs: 2 }); jobs++
      expect(lp.choices[0]!.logprobs!.content).toHaveLength(6)
      const rs = await oa.responses.create({ model: 'tiny-llama', instructions: 'Be brief.', input: 'hello', max_output_tokens: 8 }); jobs++
      expect(rs.output_text.length).toBeGreaterThan(0)

      // Vercel's AI SDK: chat models, and the default model (the Responses API)
      const openai = createOpenAI({ apiKey: u.apiKey, baseURL: u.baseUrl })
      const t1 = await generateText({ model: openai.chat('tiny-llama'), prompt: 'hi', maxOutputTokens: 8, maxRetries: 0 }); jobs++
      expect(t1.usage.outputTokens).toBe(8)
      const t2 = await generateText({ model: openai('tiny-llama'), system: 'be brief', prompt: 'hi', maxOutputTokens: 8, maxRetries: 0 }); jobs++
      expect(t2.text.length).toBeGreaterThan(0)
      expect(t2.usage.outputTokens).toBe(8)
      const st = streamText({ model: openai('tiny-llama'), prompt: 'hi', maxOutputTokens: 8, maxRetries: 0 })
      let streamed = ''
      for await (const x of st.textStream) streamed += x
      jobs++
      expect(streamed).toBe(await st.text)
      expect((await st.usage).outputTokens).toBe(8)
      for (const model of [openai.chat('tiny-llama'), openai('tiny-llama')]) {
        const o = await generateObject({ model, schema: city, prompt: 'weather?', maxOutputTokens: 200, seed: 2, maxRetries: 0 }); jobs++
        expect(['Paris', 'Rome']).toContain(o.object.city)
        const tools = { weather: tool({ description: 'weather in a city', inputSchema: z.object({ city: z.enum(['Paris', 'Rome']) }) }) }
        // one call per answer (parallel_tool_calls false): with up to 8 parallel calls the tiny
        // model's random weights may add calls until max tokens cut the JSON, and then there are
        // no tool_calls. The seed alone did not pin it: under the whole suite's load this seeded
        // request once came back without tool_calls (cause not traced; numerics that depend on
        // which miner served it and what its context ran before are one candidate)
        const tc = await generateText({ model, tools, toolChoice: 'required', prompt: 'weather?', maxOutputTokens: 200, seed: 2, maxRetries: 0, providerOptions: { openai: { parallelToolCalls: false } } }); jobs++
        expect(tc.toolCalls.length).toBeGreaterThanOrEqual(1)
        expect(tc.toolCalls[0]!.toolName).toBe('weather')
        expect(['Paris', 'Rome']).toContain((tc.toolCalls[0]!.input as { city: string }).city)
      }

      // LangChain
      // seeded, as the AI SDK calls above: with the tiny model's random weights an unseeded
      // required tool call may add parallel calls until max tokens cut the JSON (then no tool_calls)
      const lc = new ChatOpenAI({ model: 'tiny-llama', apiKey: u.apiKey, configuration: { baseURL: u.baseUrl }, maxTokens: 200, maxRetries: 0, modelKwargs: { seed: 2 } })
      const so = await lc.withStructuredOutput(city).invoke('weather?'); jobs++
      expect(city.parse(so)).toEqual(so)
      const fc = await lc.withStructuredOutput(city, { method: 'functionCalling' }).invoke('weather?'); jobs++
      expect(city.parse(fc)).toEqual(fc)
      const bt = await lc.bindTools([{ type: 'function', function: { name: 'weather', description: 'weather in a city', parameters: weatherParams } }], { tool_choice: 'required', parallel_tool_calls: false, seed: 2 }).invoke('weather?'); jobs++
      expect(bt.tool_calls![0]).toMatchObject({ name: 'weather' })
      expect(['Paris', 'Rome']).toContain((bt.tool_calls![0]!.args as { city: string }).city)
      let lcs = ''
      for await (const c of await lc.stream('hi', { max_tokens: 6 } as never)) lcs += String(c.content)
      jobs++
      expect(lcs.length).toBeGreaterThan(0)

      // embeddings from the built-in tiny-embed, through all three clients
      const e1 = await oa.embeddings.create({ model: 'tiny-embed', input: ['hello', 'world'] }); jobs++
      expect(e1.data).toHaveLength(2)
      const e2 = await embedMany({ model: openai.embedding('tiny-embed'), values: ['hello', 'world'], maxRetries: 0 }); jobs++
      expect(e2.embeddings[0]).toEqual(e1.data[0]!.embedding)
      const e3 = await new OpenAIEmbeddings({ model: 'tiny-embed', apiKey: u.apiKey, configuration: { baseURL: u.baseUrl }, maxRetries: 0 }).embedQuery('hello'); jobs++
      expect(e3).toEqual(e1.data[0]!.embedding)

      // the validator (sample rate 1) checks every job, the constrained ones under their grammar
      const v = await verdicts(u, jobs)
      expect(v.length).toBeGreaterThanOrEqual(jobs)
      expect(v.filter(x => x.pass !== true)).toEqual([])
      expect(await u.stop()).toBe(0)
    } finally {
      await u.stop().catch(() => {})
    }
  }, 240_000)

  it('a miner that serves another model\'s embeddings: its embedding jobs fail validation (embedding mismatch)', async () => {
    const u = await up(['--cheat', 'wrong-embedding'])
    try {
      const oa = new OpenAI({ apiKey: u.apiKey, baseURL: u.baseUrl, maxRetries: 0, timeout: 60_000 })
      await oa.embeddings.create({ model: 'tiny-embed', input: 'hello there' })
      const v = await verdicts(u, 1)
      expect(v[0]).toMatchObject({ pass: false, reason: 7 })
    } finally {
      await u.stop().catch(() => {})
    }
  }, 200_000)

  it('a miner that ignores the grammar: its constrained jobs fail validation (outside the support)', async () => {
    const u = await up(['--cheat', 'ignore-constraint'])
    try {
      const oa = new OpenAI({ apiKey: u.apiKey, baseURL: u.baseUrl, maxRetries: 0, timeout: 60_000 })
      await oa.chat.completions.create({ model: 'tiny-llama', messages: [{ role: 'user', content: 'weather?' }], max_tokens: 40, seed: 1, response_format: { type: 'json_object' } })
      const v = await verdicts(u, 1)
      expect(v[0]).toMatchObject({ pass: false, reason: 1 })
    } finally {
      await u.stop().catch(() => {})
    }
  }, 200_000)
})
