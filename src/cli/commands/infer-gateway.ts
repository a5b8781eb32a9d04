// `heurist infer --gateway URL`: the job goes to a gateway's OpenAI API, paid from the operator
// key's own Payments deposit (Pay-by-User, pay-client.ts). The local path stays in infer.ts.
import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { formatUnits } from 'ethers'
import type { CommandContext } from '../context.js'
import { usageError, HeuristError } from '../../core/errors.js'
import { findDeployment, parseHeuArg } from '../chain.js'
import { paidPost } from '../pay-client.js'
import { inputFromFlags, samplingFromFlags, type InferFlags } from './infer.js'
import { imageRequestFromFlags } from './infer-image.js'

export interface GatewayFlags extends InferFlags {
  gateway: string
  maxPrice?: string
}

export function gatewayUrl (raw: string): string {
  let u: URL
  try { u = new URL(raw) } catch { throw usageError('CLI_BAD_FLAG', `--gateway: expected an http(s) URL, got ${JSON.stringify(raw)}`) }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usageError('CLI_BAD_FLAG', `--gateway: expected an http(s) URL, got ${JSON.stringify(raw)}`)
  return u.origin
}

export async function inferGateway (ctx: CommandContext, prompt: string, opts: GatewayFlags): Promise<void> {
  const gateway = gatewayUrl(opts.gateway)
  const maxPrice = opts.maxPrice === undefined ? null : parseHeuArg('--max-price', opts.maxPrice)
  if (prompt.length > 200_000) throw usageError('INFER_PROMPT_TOO_LARGE', 'a gateway prompt is limited to 200,000 characters')
  const wallet = (await ctx.identity()).wallet
  const deployment = await findDeployment(ctx)
  if (deployment === null) ctx.logger.warn('no deployment in this home: the chain and Payments contract to sign for are taken from the gateway\'s 402')
  const base = { home: ctx.paths.root, wallet, gateway, maxPrice, expect: deployment === null ? null : { chainId: deployment.chainId, payments: deployment.contracts.Payments } }
  if (opts.image === true) {
    const image = imageRequestFromFlags(prompt, opts)
    const r = await paidPost(base, '/v1/images/generations', { model: opts.model ?? 'tiny-sd', prompt, negative_prompt: image.negativePrompt, size: `${image.width}x${image.height}`, steps: image.steps, guidance_scale: image.guidanceScale, seed: image.seed, scheduler: image.scheduler })
    const b64 = (r.body as { data?: Array<{ b64_json?: string }> }).data?.[0]?.b64_json
    if (typeof b64 !== 'string') throw new HeuristError('PAY_BAD_RESPONSE', 'the gateway\'s answer has no image')
    const png = Buffer.from(b64, 'base64')
    if (opts.out !== undefined) await writeFile(resolve(opts.out), png)
    ctx.print({ gateway, seed: image.seed, bytes: png.length, out: opts.out ?? null, quote: r.quote, charged: r.charged, session: r.session.session, authorized: BigInt(r.session.authorized), spent: BigInt(r.session.spent) },
      x => `${opts.out === undefined ? 'image received (no --out given, PNG not written)' : `wrote ${opts.out}`}: ${String(x.bytes)} bytes; paid ${formatUnits(r.charged, 18)} HEU (quoted ${formatUnits(r.quote, 18)})`)
    return
  }
  const sampling = samplingFromFlags(opts)
  const input = inputFromFlags(prompt, opts)
  const messages = typeof input === 'string' ? [{ role: 'user', content: input }] : input
  const r = await paidPost(base, '/v1/chat/completions', {
    model: opts.model ?? 'tiny-llama',
    messages,
    max_tokens: sampling.maxTokens,
    temperature: sampling.temperature,
    top_p: sampling.topP,
    seed: sampling.seed,
    ...(sampling.stop.length === 0 ? {} : { stop: sampling.stop })
  })
  const body = r.body as { choices?: Array<{ message?: { content?: string } }>, usage?: { completion_tokens?: number } }
  const text = body.choices?.[0]?.message?.content
  if (typeof text !== 'string') throw new HeuristError('PAY_BAD_RESPONSE', 'the gateway\'s answer has no message')
  ctx.print({ gateway, text, tokens: body.usage?.completion_tokens ?? null, seed: sampling.seed, quote: r.quote, charged: r.charged, session: r.session.session, authorized: BigInt(r.session.authorized), spent: BigInt(r.session.spent) },
    () => `${text}\n(paid ${formatUnits(r.charged, 18)} HEU, quoted ${formatUnits(r.quote, 18)}; this session: ${formatUnits(BigInt(r.session.spent), 18)} spent of ${formatUnits(BigInt(r.session.authorized), 18)} authorized)`)
}
