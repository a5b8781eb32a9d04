import { randomInt } from 'node:crypto'
import type { Command } from 'commander'
import { loadContext, type CommandContext } from '../context.js'
import { parseIntFlag, parseNumberFlag } from '../flags.js'
import { usageError } from '../../core/errors.js'
import { createLlamaEngine, defaultSamplingParams, ensureTinyModels, ModelCache, tinyModelBuilders, type ChatMessage, type SamplingParams } from '../../inference/index.js'
import { inferImage } from './infer-image.js'
import { inferNetwork } from './infer-network.js'
import { withChainFlags, type ChainFlags } from '../chain.js'
import { inferGateway } from './infer-gateway.js'

/** The options of `heurist infer`, as commander parses them (strings until checked). */
export interface InferFlags {
  model?: string
  seed?: string
  temperature?: string
  topP?: string
  topK?: string
  maxTokens?: string
  stop?: string[]
  chat?: boolean
  system?: string
  image?: boolean
  steps?: string
  width?: string
  height?: string
  out?: string
  negative?: string
  guidance?: string
  scheduler?: string
}

/** Flags → sampling params; a bad value is a usage error naming the flag. An absent seed is drawn at random (and printed). */
export function samplingFromFlags (opts: InferFlags): SamplingParams {
  const d = defaultSamplingParams
  return {
    seed: opts.seed === undefined ? randomInt(0, 2 ** 32 - 1) : parseIntFlag('--seed', opts.seed, 0, 2 ** 32 - 1),
    temperature: opts.temperature === undefined ? d.temperature : parseNumberFlag('--temperature', opts.temperature, 0, 10),
    topP: opts.topP === undefined ? d.topP : parseNumberFlag('--top-p', opts.topP, Number.MIN_VALUE, 1),
    topK: opts.topK === undefined ? d.topK : parseIntFlag('--top-k', opts.topK, 0, 100_000),
    maxTokens: opts.maxTokens === undefined ? d.maxTokens : parseIntFlag('--max-tokens', opts.maxTokens, 0, 1_000_000),
    stop: opts.stop ?? []
  }
}

/** The prompt as plain text, or as chat messages with --chat / --system. */
export function inputFromFlags (prompt: string, opts: InferFlags): string | ChatMessage[] {
  if (opts.chat !== true && opts.system === undefined) return prompt
  return [...(opts.system !== undefined ? [{ role: 'system' as const, content: opts.system }] : []), { role: 'user' as const, content: prompt }]
}

/**
 * Runs an LLM job on this machine: resolves the model (name, id or path; a built-in tiny
 * model is generated on first use), streams the text to stdout (or prints one JSON object
 * with --json). Ctrl-C stops the generation and prints what was produced.
 */
export async function inferLocal (ctx: CommandContext, prompt: string, opts: InferFlags): Promise<void> {
  const sampling = samplingFromFlags(opts)
  if (prompt.length > 1_000_000) throw usageError('INFER_PROMPT_TOO_LARGE', 'the prompt is over 1,000,000 characters')
  const ref = opts.model ?? 'tiny-llama'
  const cache = await ModelCache.open(ctx.paths.models)
  if (tinyModelBuilders.some(b => b.name === ref && b.kind === 'llm') && !(await cache.list()).some(m => m.name === ref)) {
    ctx.logger.info({ model: ref }, 'building the built-in tiny model')
    await ensureTinyModels(ctx.paths.models, { names: [ref] })
  }
  const m = await cache.resolve(ref)
  if (m.kind !== 'llm') throw usageError('INFER_NOT_LLM', `${ref} is an ${m.kind} model: add --image`)
  const input = inputFromFlags(prompt, opts)
  const engine = createLlamaEngine({ gpu: ctx.config.inference.gpu, threads: ctx.config.inference.threads, parallel: 1, maxQueue: 0, logger: ctx.logger })
  const ac = new AbortController()
  const onSignal = (): void => { ac.abort() }
  process.once('SIGINT', onSignal)
  try {
    const info = await engine.load(m.path, { id: m.id, name: m.name })
    const stream = !ctx.json
    const result = await engine.generate({ modelId: info.id, input, sampling }, {
      signal: ac.signal,
      onToken: stream ? text => { process.stdout.write(text) } : undefined
    })
    const round = (x: number): number => Math.round(x * 100) / 100
    const out = { model: m.name, text: result.text, tokens: result.usage.outputTokens, seed: sampling.seed, ttftMs: round(result.usage.ttftMs), tokensPerSecond: round(result.usage.tokensPerSecond) }
    if (ctx.json) {
      ctx.print({ ...out, id: m.id, promptTokens: result.usage.promptTokens, finishReason: result.finishReason })
    } else {
      process.stdout.write('\n')
      ctx.logger.info({ ...out, text: undefined, finishReason: result.finishReason }, 'done')
    }
  } finally {
    process.off('SIGINT', onSignal)
    await engine.stop()
  }
}

export function registerInfer (program: Command): void {
  withChainFlags(program.command('infer'))
    .description('run one inference job on this machine: text (LLM) by default, an image with --image')
    .argument('<prompt>', 'the prompt')
    .option('--model <ref>', 'model name, sha256 id or path (default tiny-llama, or tiny-sd with --image)')
    .option('--seed <n>', 'sampler seed (default: random, printed)')
    .option('--temperature <t>', `sampling temperature, 0 = greedy (default ${defaultSamplingParams.temperature})`)
    .option('--top-p <p>', `nucleus sampling (default ${defaultSamplingParams.topP})`)
    .option('--top-k <k>', `top-k sampling, 0 = off (default ${defaultSamplingParams.topK})`)
    .option('--max-tokens <n>', `most tokens generated (default ${defaultSamplingParams.maxTokens})`)
    .option('--stop <text>', 'stop string (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--chat', 'send the prompt as a user message through the model\'s chat template')
    .option('--system <text>', 'system message (implies --chat)')
    .option('--image', 'generate an image instead of text')
    .option('--steps <n>', 'image: denoising steps')
    .option('--width <n>', 'image: width in pixels')
    .option('--height <n>', 'image: height in pixels')
    .option('--out <file>', 'image: PNG file to write')
    .option('--negative <text>', 'image: negative prompt')
    .option('--guidance <x>', 'image: classifier-free guidance scale')
    .option('--scheduler <name>', 'image: euler or ddim')
    .option('--network', 'run the job on a miner of the mesh and verify its signed receipt')
    .option('--bootstrap <multiaddr>', 'with --network: peer to join through (repeatable; default p2p.bootstrap)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--miner <id>', 'with --network: use this miner (address or PeerId)')
    .option('--wait-ms <ms>', 'with --network: how long to wait for a miner\'s advert (default 10000)')
    .option('--gateway <url>', 'send the job to this gateway and pay it from the operator key\'s Payments deposit (Pay-by-User: no API key)')
    .option('--max-price <HEU>', 'with --gateway: the most one request may be quoted; above it nothing is signed')
    .action(async (prompt: string, opts: InferFlags & ChainFlags & { network?: boolean, bootstrap?: string[], miner?: string, waitMs?: string, gateway?: string, maxPrice?: string }, cmd: Command) => {
      const ctx = await loadContext(cmd, { 'p2p.bootstrap': opts.bootstrap, 'chain.rpc': opts.rpc, 'chain.deployment': opts.deployment })
      if (opts.maxPrice !== undefined && opts.gateway === undefined) throw usageError('CLI_BAD_FLAG', '--max-price goes with --gateway')
      if (opts.gateway !== undefined) {
        if (opts.network === true) throw usageError('CLI_BAD_FLAG', '--gateway and --network are two ways to reach the mesh: pick one')
        await inferGateway(ctx, prompt, { ...opts, gateway: opts.gateway })
        return
      }
      if (opts.network === true) {
        await inferNetwork(ctx, prompt, opts)
        return
      }
      if (opts.image === true) {
        await inferImage(ctx, prompt, opts)
        return
      }
      await inferLocal(ctx, prompt, opts)
    })
}
