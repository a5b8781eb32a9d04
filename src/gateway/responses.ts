import { z } from 'zod'
import { randomBytes } from 'node:crypto'
import type { ChatMessage } from '../inference/types.js'
import { badRequest } from './openai.js'
import { toolCallsText, toolResultText, type StructuredRequest, type ToolCall } from './structured.js'

/**
 * OpenAI's Responses API (`POST /v1/responses`) over the same jobs as chat: the input (a string
 * or a list of message, function_call and function_call_output items) and `instructions`
 * become chat messages; `text.format` and `tools` become the same grammar as chat's
 * response_format and tools. Nothing is stored: `previous_response_id` and item references
 * are 400 (parameters.ts). Builders of the response object and of the streamed events. Pure.
 */

const MAX_TEXT = 200_000
const functionName = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'a function name: 1 to 64 letters, digits, _ or -')
const textPart = z.object({ type: z.enum(['input_text', 'output_text', 'text']), text: z.string().max(MAX_TEXT) }).passthrough()
const messageItem = z.object({
  type: z.literal('message').optional(),
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string().max(MAX_TEXT), z.array(textPart).max(64)]),
  id: z.string().max(128).optional(),
  status: z.string().max(32).optional()
})
const functionCallItem = z.object({ type: z.literal('function_call'), call_id: z.string().max(128), name: functionName, arguments: z.string().max(MAX_TEXT), id: z.string().max(128).optional(), status: z.string().max(32).optional() })
const functionOutputItem = z.object({ type: z.literal('function_call_output'), call_id: z.string().max(128), output: z.union([z.string().max(MAX_TEXT), z.array(textPart).max(64)]), id: z.string().max(128).optional(), status: z.string().max(32).optional() })
const inputItem = z.union([functionCallItem, functionOutputItem, messageItem])
const jsonSchemaValue = z.record(z.string(), z.unknown())

export const responsesRequestSchema = z.object({
  model: z.string().min(1).max(256),
  input: z.union([z.string().max(MAX_TEXT), z.array(inputItem).min(1).max(256)]),
  instructions: z.string().max(MAX_TEXT).nullable().optional(),
  max_output_tokens: z.number().int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  stream: z.boolean().nullable().optional(),
  text: z.object({
    format: z.discriminatedUnion('type', [
      z.object({ type: z.literal('text') }),
      z.object({ type: z.literal('json_object') }),
      z.object({ type: z.literal('json_schema'), name: z.string().max(64), schema: jsonSchemaValue, description: z.string().max(4096).optional(), strict: z.boolean().nullable().optional() })
    ]).optional(),
    verbosity: z.literal('medium').nullable().optional()
  }).nullable().optional(),
  tools: z.array(z.object({ type: z.literal('function'), name: functionName, description: z.string().max(4096).nullable().optional(), parameters: jsonSchemaValue.nullable().optional(), strict: z.boolean().nullable().optional() })).max(64).nullable().optional(),
  tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.object({ type: z.literal('function'), name: functionName })]).nullable().optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  user: z.string().max(256).optional()
})
export type ResponsesRequest = z.infer<typeof responsesRequestSchema>

function partsText (c: string | Array<{ text: string }>): string {
  return typeof c === 'string' ? c : c.map(p => p.text).join('')
}

/** The request's instructions and input as chat messages (function calls and outputs as chat writes them). */
export function responsesMessages (r: ResponsesRequest): ChatMessage[] {
  const out: ChatMessage[] = []
  if (r.instructions != null && r.instructions !== '') out.push({ role: 'system', content: r.instructions })
  if (typeof r.input === 'string') { out.push({ role: 'user', content: r.input }); return out }
  const names = new Map<string, string>()
  let calls: Array<{ name: string, arguments: string }> = []
  const flush = (): void => { if (calls.length > 0) { out.push({ role: 'assistant', content: toolCallsText(calls) }); calls = [] } }
  for (const item of r.input) {
    if (item.type === 'function_call') { names.set(item.call_id, item.name); calls.push({ name: item.name, arguments: item.arguments }); continue }
    flush()
    if (item.type === 'function_call_output') { out.push({ role: 'user', content: toolResultText(item.call_id, names.get(item.call_id), partsText(item.output)) }); continue }
    out.push({ role: item.role === 'developer' ? 'system' : item.role, content: partsText(item.content) })
  }
  flush()
  if (out.length === 0) throw badRequest('The input holds no message.', 'input')
  return out
}

export function responsesStructured (r: ResponsesRequest): StructuredRequest {
  const f = r.text?.format
  const tc = r.tool_choice ?? undefined
  return {
    ...(f === undefined ? {} : { format: f.type === 'json_schema' ? { type: 'json_schema', name: f.name, schema: f.schema } : f }),
    ...(r.tools == null ? {} : { tools: r.tools.map(t => ({ name: t.name, ...(t.description == null ? {} : { description: t.description }), ...(t.parameters == null ? {} : { parameters: t.parameters }) })) }),
    ...(tc === undefined ? {} : { toolChoice: typeof tc === 'string' ? tc : { name: tc.name } }),
    ...(r.parallel_tool_calls == null ? {} : { parallelToolCalls: r.parallel_tool_calls }),
    names: { format: 'text.format', tools: 'tools', toolChoice: 'tool_choice' }
  }
}

export interface ResponseUsage { input_tokens: number, output_tokens: number, total_tokens: number, input_tokens_details: { cached_tokens: number }, output_tokens_details: { reasoning_tokens: number } }

export function responseUsage (prompt: number, output: number): ResponseUsage {
  return { input_tokens: prompt, output_tokens: output, total_tokens: prompt + output, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } }
}

const id = (prefix: string): string => prefix + randomBytes(12).toString('hex')

/** Ids of one response and its output items, fixed up front (streamed events name them before the end). */
export interface ResponseIds { response: string, message: string, calls: string[] }
export const newResponseIds = (): ResponseIds => ({ response: id('resp_'), message: id('msg_'), calls: [] })

export type OutputItem =
  | { type: 'message', id: string, status: 'completed' | 'in_progress' | 'incomplete', role: 'assistant', content: Array<{ type: 'output_text', text: string, annotations: [], logprobs: [] }> }
  | { type: 'function_call', id: string, call_id: string, name: string, arguments: string, status: 'completed' | 'in_progress' }

export function outputItems (ids: ResponseIds, answer: { content: string | null, calls: ToolCall[] | null }, incomplete: boolean): OutputItem[] {
  if (answer.calls !== null) {
    return answer.calls.map((c, i) => ({ type: 'function_call', id: (ids.calls[i] ??= id('fc_')), call_id: c.id, name: c.name, arguments: c.arguments, status: 'completed' }))
  }
  return [{ type: 'message', id: ids.message, status: incomplete ? 'incomplete' : 'completed', role: 'assistant', content: [{ type: 'output_text', text: answer.content ?? '', annotations: [], logprobs: [] }] }]
}

/** The response object, in progress (no output yet) or finished. */
export function responseObject (r: ResponsesRequest, ids: ResponseIds, createdAt: number, end: { output: OutputItem[], usage: ResponseUsage, incomplete: boolean } | null): Record<string, unknown> {
  const text = end?.output.flatMap(o => o.type === 'message' ? o.content.map(c => c.text) : []).join('') ?? ''
  return {
    id: ids.response,
    object: 'response',
    created_at: createdAt,
    status: end === null ? 'in_progress' : end.incomplete ? 'incomplete' : 'completed',
    error: null,
    incomplete_details: end?.incomplete === true ? { reason: 'max_output_tokens' } : null,
    instructions: r.instructions ?? null,
    max_output_tokens: r.max_output_tokens ?? null,
    model: r.model,
    output: end?.output ?? [],
    output_text: text,
    parallel_tool_calls: r.parallel_tool_calls ?? true,
    previous_response_id: null,
    store: false,
    temperature: r.temperature ?? 1,
    top_p: r.top_p ?? 1,
    text: { format: r.text?.format ?? { type: 'text' } },
    tool_choice: r.tool_choice ?? (r.tools == null || r.tools.length === 0 ? 'none' : 'auto'),
    tools: r.tools ?? [],
    truncation: 'disabled',
    usage: end?.usage ?? null,
    user: r.user ?? null,
    metadata: {}
  }
}
