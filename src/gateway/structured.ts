import { randomBytes } from 'node:crypto'
import { ANY_OBJECT_SCHEMA, normalizeSchema, SchemaError, type ChatMessage, type JsonSchema, type OutputConstraint } from '../inference/index.js'
import { badRequest } from './openai.js'

/**
 * Structured outputs and tool calls on a model that knows neither: the request becomes a
 * grammar the miner samples under (and validators check under), and a system message that
 * tells the model what it may call. Pure.
 *
 * - `response_format: json_object` → any JSON object; `json_schema` → that schema (normalized,
 *   inference/constraint.ts; a keyword the grammar cannot enforce is 400 naming it).
 * - `tools` with `tool_choice` required / a named function → the answer is
 *   `{"tool_calls":[{"name":…,"arguments":{…}}, …]}`, each call's arguments under its function's
 *   parameters schema (one call for a named function or when `parallel_tool_calls` is false,
 *   else up to 8: a forced function is called once, as structured-output clients expect);
 *   auto → that or `{"content":"…"}`; none → free text (the tools are not offered).
 */

export interface ToolSpec { name: string, description?: string, parameters: JsonSchema }

export type ToolChoice = 'none' | 'auto' | 'required' | { name: string }

export interface StructuredRequest {
  format?: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema', name: string, schema: unknown }
  tools?: Array<{ name: string, description?: string, parameters?: unknown }>
  toolChoice?: ToolChoice
  parallelToolCalls?: boolean
  /** Parameter names as the endpoint spells them, for the 400s. */
  names: { format: string, tools: string, toolChoice: string }
}

export interface StructuredPlan {
  constraint?: OutputConstraint
  /** Tools offered: the output is a tool-call envelope (or `{content}` under auto). */
  tools: ToolSpec[] | null
  mode: ToolChoice
  /** A system message to put before the conversation, or null. */
  system: string | null
}

export const MAX_PARALLEL_CALLS = 8

function schemaOf (raw: unknown, param: string): JsonSchema {
  try {
    return normalizeSchema(raw)
  } catch (e) {
    if (e instanceof SchemaError) throw badRequest(`Invalid schema for '${param}': ${e.message}`, e.path === '' ? param : `${param}.${e.path}`, 'invalid_schema')
    throw e
  }
}

export function planStructured (r: StructuredRequest): StructuredPlan {
  const tools = (r.tools ?? []).map((t, i): ToolSpec => ({ name: t.name, ...(t.description === undefined ? {} : { description: t.description }), parameters: t.parameters === undefined ? { type: 'object', properties: {}, additionalProperties: false } : schemaOf(t.parameters, `${r.names.tools}.${i}.parameters`) }))
  if (new Set(tools.map(t => t.name)).size !== tools.length) throw badRequest('Tool names must be unique.', r.names.tools)
  let mode: ToolChoice = r.toolChoice ?? (tools.length > 0 ? 'auto' : 'none')
  if (typeof mode === 'object' && !tools.some(t => t.name === (mode as { name: string }).name)) throw badRequest(`tool_choice names '${mode.name}', which is not among the tools.`, r.names.toolChoice)
  if (mode !== 'none' && tools.length === 0) throw badRequest(`'${r.names.toolChoice}' needs 'tools'.`, r.names.toolChoice)
  const format = r.format?.type === 'text' ? undefined : r.format
  if (mode !== 'none' && format !== undefined) throw badRequest(`'${r.names.format}' with tools that may be called is not supported; use tool_choice 'none' or no response format.`, r.names.format, 'unsupported_value')
  if (mode === 'none') {
    if (format === undefined) return { tools: null, mode, system: null }
    const schema = format.type === 'json_object' ? ANY_OBJECT_SCHEMA : schemaOf(format.schema, `${r.names.format}.schema`)
    return { constraint: { type: 'json_schema', schema }, tools: null, mode, system: format.type === 'json_object' ? 'Answer with a JSON object.' : `Answer with JSON that follows this schema: ${JSON.stringify(schema)}` }
  }
  const offered = typeof mode === 'object' ? tools.filter(t => t.name === (mode as { name: string }).name) : tools
  const call = (t: ToolSpec): JsonSchema => ({ type: 'object', properties: { name: { const: t.name }, arguments: t.parameters }, required: ['name', 'arguments'], additionalProperties: false })
  const calls: JsonSchema = {
    type: 'object',
    properties: { tool_calls: { type: 'array', items: offered.length === 1 ? call(offered[0]!) : { oneOf: offered.map(call) }, minItems: 1, maxItems: r.parallelToolCalls === false || typeof mode === 'object' ? 1 : MAX_PARALLEL_CALLS } },
    required: ['tool_calls'],
    additionalProperties: false
  }
  const schema: JsonSchema = mode === 'auto' ? { oneOf: [calls, { type: 'object', properties: { content: { type: 'string' } }, required: ['content'], additionalProperties: false }] } : calls
  const list = tools.map(t => ({ name: t.name, ...(t.description === undefined ? {} : { description: t.description }), parameters: t.parameters }))
  const system = `You can call these functions: ${JSON.stringify(list)}. ` + (mode === 'auto'
    ? 'Answer with JSON: {"tool_calls":[{"name":"<function>","arguments":{...}}]} to call functions, or {"content":"<your answer>"} to answer directly.'
    : `Answer with JSON: {"tool_calls":[{"name":"<function>","arguments":{...}}]}${typeof mode === 'object' ? `, calling ${mode.name}` : ''}.`)
  return { constraint: { type: 'json_schema', schema: schemaOf(schema, r.names.tools) }, tools: offered, mode, system }
}

/** Puts the plan's system message first (merged into the conversation's own system message). */
export function withSystem (messages: ChatMessage[], system: string | null): ChatMessage[] {
  if (system === null) return messages
  const first = messages[0]
  if (first?.role === 'system') return [{ role: 'system', content: `${first.content}\n\n${system}` }, ...messages.slice(1)]
  return [{ role: 'system', content: system }, ...messages]
}

export interface ToolCall { id: string, name: string, arguments: string }

/** What the model answered under a tool plan: calls, or text (also when the JSON is cut by max_tokens). */
export function readToolAnswer (text: string): { calls: ToolCall[] } | { content: string } {
  let v: unknown
  try { v = JSON.parse(text) } catch { return { content: text } }
  if (typeof v === 'object' && v !== null && Array.isArray((v as { tool_calls?: unknown }).tool_calls)) {
    const calls = ((v as { tool_calls: Array<{ name?: unknown, arguments?: unknown }> }).tool_calls).map(c => ({ id: 'call_' + randomBytes(12).toString('hex'), name: String(c.name), arguments: JSON.stringify(c.arguments ?? {}) }))
    if (calls.length > 0) return { calls }
  }
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') return { content: (v as { content: string }).content }
  return { content: text }
}

/** An assistant turn that called tools, as the model was asked to write it (for conversation history). */
export function toolCallsText (calls: Array<{ name: string, arguments: string }>): string {
  return JSON.stringify({ tool_calls: calls.map(c => { let a: unknown; try { a = JSON.parse(c.arguments) } catch { a = c.arguments } return { name: c.name, arguments: a } }) })
}

/** A tool's result as the model reads it. */
export function toolResultText (callId: string, name: string | undefined, content: string): string {
  return `Result of the function call ${name ?? ''}${callId === '' ? '' : ` (${callId})`}: ${content}`
}
