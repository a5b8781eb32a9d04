import { z } from 'zod'
import { randomInt } from 'node:crypto'
import type { ChatMessage, SamplingParams } from '../inference/types.js'
import { toolCallsText, toolResultText, type StructuredRequest } from './structured.js'

/**
 * The OpenAI wire format: request schemas (every field bounded), and the error body every
 * failure is answered with: `{ error: { message, type, param, code } }`.
 */

export interface OpenAiErrorBody {
  error: { message: string, type: string, param: string | null, code: string | null }
}

/** An error the HTTP layer answers with `status` and an OpenAI-shaped body. */
export class ApiError extends Error {
  override readonly name = 'ApiError'
  /** `headers`: extra response headers (Retry-After on a 429). */
  constructor (readonly status: number, message: string, readonly type: string, readonly code: string | null = null, readonly param: string | null = null, readonly headers: Readonly<Record<string, string>> = {}) {
    super(message)
  }

  body (): OpenAiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = 'invalid_value'): ApiError =>
  new ApiError(400, message, 'invalid_request_error', code, param)

/** Limits of what one request may ask for. */
export interface RequestLimits {
  /** Largest max_tokens accepted. Default 4096. */
  maxTokens: number
  /** Largest image side in pixels. Default 1024. */
  maxImageSide: number
  /** Most denoising steps. Default 100. */
  maxImageSteps: number
}
export const defaultRequestLimits: RequestLimits = { maxTokens: 4096, maxImageSide: 1024, maxImageSteps: 100 }

const MAX_TEXT = 200_000

const contentPart = z.object({ type: z.literal('text'), text: z.string().max(MAX_TEXT) })
const functionName = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'a function name: 1 to 64 letters, digits, _ or -')
const toolCall = z.object({ id: z.string().max(128), type: z.literal('function'), function: z.object({ name: functionName, arguments: z.string().max(MAX_TEXT) }) })
const message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string().max(MAX_TEXT), z.array(contentPart).max(64)]).nullable().optional(),
  name: z.string().max(64).optional(),
  tool_calls: z.array(toolCall).max(64).optional(),
  tool_call_id: z.string().max(128).optional()
})
/** A JSON schema from a client: bounded here, normalized for the grammar in structured.ts. */
const jsonSchemaValue = z.record(z.string(), z.unknown())
export const toolSchema = z.object({ type: z.literal('function'), function: z.object({ name: functionName, description: z.string().max(4096).optional(), parameters: jsonSchemaValue.optional(), strict: z.boolean().nullable().optional() }) })
export const toolChoiceSchema = z.union([z.enum(['none', 'auto', 'required']), z.object({ type: z.literal('function'), function: z.object({ name: functionName }) })])
const responseFormat = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({ type: z.literal('json_schema'), json_schema: z.object({ name: z.string().max(64), description: z.string().max(4096).optional(), schema: jsonSchemaValue.optional(), strict: z.boolean().nullable().optional() }) })
])
const stop = z.union([z.string().min(1).max(64), z.array(z.string().min(1).max(64)).max(4)]).nullable().optional()

const sampling = {
  model: z.string().min(1).max(256),
  max_tokens: z.number().int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  top_k: z.number().int().min(0).max(1000).nullable().optional(),
  seed: z.number().int().min(0).max(2 ** 32 - 1).nullable().optional(),
  stop,
  n: z.literal(1).nullable().optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  user: z.string().max(256).optional()
}

export const chatRequestSchema = z.object({
  ...sampling,
  messages: z.array(message).min(1).max(256),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  response_format: responseFormat.nullable().optional(),
  tools: z.array(toolSchema).max(64).nullable().optional(),
  tool_choice: toolChoiceSchema.nullable().optional(),
  parallel_tool_calls: z.boolean().nullable().optional()
})
export type ChatRequest = z.infer<typeof chatRequestSchema>

export const completionRequestSchema = z.object({
  ...sampling,
  prompt: z.union([z.string().max(MAX_TEXT), z.array(z.string().max(MAX_TEXT)).length(1)]),
  echo: z.literal(false).nullable().optional()
})
export type CompletionRequest = z.infer<typeof completionRequestSchema>

export const imageRequestSchema = z.object({
  model: z.string().min(1).max(256),
  prompt: z.string().min(1).max(4000),
  n: z.literal(1).nullable().optional(),
  size: z.string().regex(/^\d{2,5}x\d{2,5}$/, 'size must be WIDTHxHEIGHT').nullable().optional(),
  response_format: z.literal('b64_json').nullable().optional(),
  user: z.string().max(256).optional(),
  // Heurist extensions (SD parameters); OpenAI clients pass them through `extra_body`-style fields.
  negative_prompt: z.string().max(4000).optional(),
  steps: z.number().int().min(1).optional(),
  guidance_scale: z.number().min(0).max(30).optional(),
  seed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
  scheduler: z.enum(['euler', 'ddim']).optional()
})

export const embeddingRequestSchema = z.object({
  model: z.string().min(1).max(256),
  input: z.union([z.string().min(1).max(32 * 1024), z.array(z.string().min(1).max(32 * 1024)).min(1).max(64)]),
  encoding_format: z.enum(['float', 'base64']).nullable().optional(),
  user: z.string().max(256).optional()
})

/** Parses a body with a schema; the first issue becomes a 400 naming the parameter. */
export function parseBody<T> (schema: z.ZodType<T>, body: unknown): T {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the request body must be a JSON object', null, 'invalid_body')
  const r = schema.safeParse(body)
  if (r.success) return r.data
  const issue = r.error.issues[0]
  const param = issue?.path.map(String).join('.') ?? null
  const what = issue?.code === 'invalid_type' && (body as Record<string, unknown>)[String(issue.path[0])] === undefined
    ? `Missing required parameter: '${param ?? ''}'.`
    : `Invalid value for '${param ?? ''}': ${issue?.message ?? 'invalid'}`
  throw badRequest(what, param === '' ? null : param)
}

function contentText (c: z.infer<typeof message>['content']): string {
  if (c === null || c === undefined) return ''
  return typeof c === 'string' ? c : c.map(p => p.text).join('')
}

/**
 * Chat messages → the engine's: developer is system; an assistant turn that called tools is
 * written as the tool-call JSON the model is asked for; a tool result is a user turn naming
 * the call (the tiny chat templates know no tool role).
 */
export function chatMessages (req: ChatRequest): ChatMessage[] {
  const names = new Map<string, string>()
  return req.messages.map((m): ChatMessage => {
    if (m.role === 'assistant' && m.tool_calls !== undefined && m.tool_calls.length > 0) {
      for (const c of m.tool_calls) names.set(c.id, c.function.name)
      const text = contentText(m.content)
      return { role: 'assistant', content: (text === '' ? '' : text + '\n') + toolCallsText(m.tool_calls.map(c => c.function)) }
    }
    if (m.role === 'tool') return { role: 'user', content: toolResultText(m.tool_call_id ?? '', names.get(m.tool_call_id ?? ''), contentText(m.content)) }
    return { role: m.role === 'developer' ? 'system' : m.role, content: contentText(m.content) }
  })
}

/** The chat request's response format, tools and tool choice in structured.ts's terms. */
export function chatStructured (req: ChatRequest): StructuredRequest {
  const rf = req.response_format ?? undefined
  const tc = req.tool_choice ?? undefined
  return {
    ...(rf === undefined ? {} : { format: rf.type === 'json_schema' ? { type: 'json_schema', name: rf.json_schema.name, schema: rf.json_schema.schema ?? {} } : rf }),
    ...(req.tools == null ? {} : { tools: req.tools.map(t => ({ name: t.function.name, ...(t.function.description === undefined ? {} : { description: t.function.description }), ...(t.function.parameters === undefined ? {} : { parameters: t.function.parameters }) })) }),
    ...(tc === undefined ? {} : { toolChoice: typeof tc === 'string' ? tc : { name: tc.function.name } }),
    ...(req.parallel_tool_calls == null ? {} : { parallelToolCalls: req.parallel_tool_calls }),
    names: { format: 'response_format', tools: 'tools', toolChoice: 'tool_choice' }
  }
}

/** OpenAI sampling fields → the engine's, with OpenAI's defaults and our bounds. */
export function samplingFrom (req: ChatRequest | CompletionRequest, limits: RequestLimits, defaultMaxTokens: number): SamplingParams {
  const maxTokens = ('max_completion_tokens' in req ? req.max_completion_tokens : undefined) ?? req.max_tokens ?? defaultMaxTokens
  if (maxTokens > limits.maxTokens) throw badRequest(`max_tokens is too large: ${maxTokens}; this gateway allows at most ${limits.maxTokens}`, 'max_tokens')
  const stopList = req.stop == null ? [] : typeof req.stop === 'string' ? [req.stop] : req.stop
  return {
    seed: req.seed ?? randomInt(0, 2 ** 32 - 1),
    temperature: req.temperature ?? 1,
    topP: req.top_p ?? 1,
    topK: req.top_k ?? 0,
    maxTokens,
    stop: stopList
  }
}

export function parseSize (size: string | null | undefined, limits: RequestLimits): { width: number, height: number } {
  if (size == null) return { width: 512, height: 512 }
  const [w, h] = size.split('x').map(Number) as [number, number]
  for (const [v, name] of [[w, 'width'], [h, 'height']] as const) {
    if (v < 64 || v > limits.maxImageSide || v % 8 !== 0) throw badRequest(`Invalid size '${size}': ${name} must be a multiple of 8 from 64 to ${limits.maxImageSide}`, 'size')
  }
  return { width: w, height: h }
}
