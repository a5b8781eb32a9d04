import { badRequest } from './openai.js'

/**
 * Every request parameter each endpoint knows, with what the gateway does with it: one table,
 * checked on every request and rendered into docs/gateway.md. Nothing is silently ignored:
 * - `supported`: honoured;
 * - `no-op`: accepted only at values that change nothing (`accepts`); any other value is 400;
 * - `unsupported`: any non-null value is 400 naming it;
 * - a parameter not in the table is 400 naming it (as OpenAI answers an unknown argument).
 * `null` counts as absent, as OpenAI's API treats it.
 */

export type ParamStatus = 'supported' | 'no-op' | 'unsupported'

export interface ParamSpec {
  status: ParamStatus
  /** For `no-op`: the values accepted (compared as JSON). */
  accepts?: unknown[]
  /** One line for the docs. */
  note: string
}

export type Endpoint = 'chat' | 'completions' | 'responses' | 'embeddings' | 'images'

const S = (note: string): ParamSpec => ({ status: 'supported', note })
const NOOP = (accepts: unknown[], note: string): ParamSpec => ({ status: 'no-op', accepts, note })
const NO = (note: string): ParamSpec => ({ status: 'unsupported', note })

const sampling: Record<string, ParamSpec> = {
  model: S('a model name (or id) a miner advertises'),
  temperature: S('0 to 2; 0 is greedy'),
  top_p: S('(0, 1]'),
  top_k: S('Heurist extension; 0 = off'),
  seed: S('0 to 2^32-1; the same seed gives the same text on the same build'),
  stop: S('up to 4 strings'),
  stream: S('server-sent events'),
  user: S('end-user identifier; recorded nowhere, changes nothing in the output'),
  frequency_penalty: NOOP([0], 'only 0 (miners sample without penalties)'),
  presence_penalty: NOOP([0], 'only 0 (miners sample without penalties)'),
  logit_bias: NOOP([{}], 'only {} (a bias would change what validators check)'),
  n: NOOP([1], 'only 1'),
  store: NOOP([false], 'only false: nothing is stored for later retrieval'),
  service_tier: NOOP(['auto', 'default'], "only 'auto' or 'default'"),
  metadata: NO('needs stored completions'),
  safety_identifier: S('end-user identifier; changes nothing in the output'),
  prompt_cache_key: S('a caching hint; changes nothing in the output')
}

export const PARAMETERS: Record<Endpoint, Record<string, ParamSpec>> = {
  chat: {
    ...sampling,
    messages: S('system, developer, user, assistant (with tool_calls) and tool messages; text content'),
    max_tokens: S('bounded by the gateway (default limit 4096)'),
    max_completion_tokens: S('same as max_tokens'),
    stream_options: S('include_usage'),
    logprobs: S("the sampled token's log-probability under the miner's sampler"),
    top_logprobs: S('0 to 20 alternatives per token'),
    response_format: S('text, json_object, json_schema (strict: a grammar the miner samples under and validators check under)'),
    tools: S('function tools: calls are grammar-constrained JSON; not with a JSON response_format'),
    tool_choice: S('none, auto, required or a named function (called once)'),
    parallel_tool_calls: S('false: one call per answer; else up to 8'),
    functions: NO('deprecated; use tools'),
    function_call: NO('deprecated; use tool_choice'),
    modalities: NOOP([['text']], "only ['text']"),
    audio: NO('no audio models'),
    prediction: NO('predicted outputs are not supported'),
    reasoning_effort: NO('no reasoning models'),
    verbosity: NO('no reasoning models'),
    web_search_options: NO('no web search')
  },
  completions: {
    ...sampling,
    prompt: S('a string (or a one-element list)'),
    max_tokens: S('bounded by the gateway (default limit 4096)'),
    stream_options: S('include_usage'),
    echo: NOOP([false], 'only false'),
    logprobs: NO('use chat completions for logprobs'),
    best_of: NOOP([1], 'only 1'),
    suffix: NO('no insertion models')
  },
  responses: {
    model: sampling.model!,
    input: S('a string or a list of messages (text content), function_call and function_call_output items'),
    instructions: S('a system message before the input'),
    max_output_tokens: S('bounded by the gateway (default limit 4096)'),
    temperature: sampling.temperature!,
    top_p: sampling.top_p!,
    stream: S('server-sent events: response.created, response.output_text.delta, response.completed, ...'),
    text: S('format: text, json_object, json_schema (strict)'),
    tools: S('function tools'),
    tool_choice: S('none, auto, required or a named function (called once)'),
    parallel_tool_calls: S('false allows one call per answer'),
    user: sampling.user!,
    safety_identifier: sampling.safety_identifier!,
    prompt_cache_key: sampling.prompt_cache_key!,
    store: NOOP([false], 'only false: responses are not stored'),
    service_tier: sampling.service_tier!,
    metadata: NO('needs stored responses'),
    previous_response_id: NO('responses are not stored; send the whole conversation'),
    conversation: NO('responses are not stored'),
    include: NOOP([[]], 'only []'),
    reasoning: NO('no reasoning models'),
    truncation: NOOP(['disabled'], "only 'disabled' (a prompt over the context is 400)"),
    background: NOOP([false], 'only false'),
    max_tool_calls: NO('not supported'),
    top_logprobs: NO('use chat completions for logprobs'),
    prompt: NO('stored prompts are not supported'),
    stream_options: NO('not supported')
  },
  embeddings: {
    model: sampling.model!,
    input: S('a string or a list of strings (at most 64)'),
    encoding_format: S('float or base64'),
    dimensions: NO("the model's own dimension only"),
    user: sampling.user!
  },
  images: {
    model: sampling.model!,
    prompt: S('the prompt'),
    n: NOOP([1], 'only 1'),
    size: S('WIDTHxHEIGHT, multiples of 8'),
    response_format: NOOP(['b64_json'], 'only b64_json'),
    user: sampling.user!,
    negative_prompt: S('Heurist extension'),
    steps: S('Heurist extension'),
    guidance_scale: S('Heurist extension'),
    seed: S('Heurist extension'),
    scheduler: S('Heurist extension: euler or ddim'),
    quality: NO('not supported'),
    style: NO('not supported'),
    background: NO('not supported'),
    output_format: NOOP(['png'], 'only png'),
    moderation: NO('not supported')
  }
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/**
 * 400 for the first parameter of `body` this endpoint does not honour, naming it. Runs before
 * the schema, so the client hears about the parameter, not a side effect of its absence.
 */
export function checkParameters (endpoint: Endpoint, body: unknown): void {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return
  const table = PARAMETERS[endpoint]
  for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
    const spec = Object.hasOwn(table, name) ? table[name] : undefined
    if (spec === undefined) throw badRequest(`Unrecognized request argument supplied: ${name}. This gateway does not support it (see docs/gateway.md for every parameter and its status).`, name, 'unsupported_parameter')
    if (value === null || spec.status === 'supported') continue
    if (spec.status === 'unsupported') throw badRequest(`Unsupported parameter: '${name}' is not supported by this gateway: ${spec.note}.`, name, 'unsupported_parameter')
    if (!(spec.accepts ?? []).some(a => same(a, value))) throw badRequest(`Unsupported value: '${name}' may only be ${(spec.accepts ?? []).map(a => JSON.stringify(a)).join(' or ')} on this gateway (${spec.note}).`, name, 'unsupported_value')
  }
}

/** The table as Markdown, one section per endpoint (docs/gateway.md embeds it; a test keeps them equal). */
export function parameterTableMarkdown (): string {
  const paths: Record<Endpoint, string> = { chat: 'POST /v1/chat/completions', completions: 'POST /v1/completions', responses: 'POST /v1/responses', embeddings: 'POST /v1/embeddings', images: 'POST /v1/images/generations' }
  const out: string[] = []
  for (const ep of Object.keys(PARAMETERS) as Endpoint[]) {
    out.push(`### \`${paths[ep]}\``, '', '| parameter | status | notes |', '|---|---|---|')
    for (const [name, spec] of Object.entries(PARAMETERS[ep])) out.push(`| \`${name}\` | ${spec.status} | ${spec.note.replaceAll('|', '\\|')} |`)
    out.push('')
  }
  return out.join('\n')
}
