import { z } from 'zod'
import * as lp from 'it-length-prefixed'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection, Stream } from '@libp2p/interface'
import type { HeuristNode } from '../p2p/index.js'
import type { Logger } from '../core/logger.js'
import { HeuristError } from '../core/errors.js'
import { addressFromPeerId } from '../core/identity.js'
import type { Transcript, Transcripts } from './transcripts.js'

/**
 * `/heurist/transcript/1.0.0`: a validator asks the gateway for the input and output of a job
 * it sampled from the receipts topic (by the receipt's job id); the gateway answers only
 * peers whose key is a registered validator. One request frame, one response frame. The
 * transcript is the stored record: `input` = the LlmRequest / ImageRequest as sent, `output`
 * = { text, tokens, finishReason } or { pixelSha256, width, height, pngBase64 } (validation's
 * `fromGatewayTranscript` turns it into its own shape).
 */
export const TRANSCRIPT_PROTOCOL = '/heurist/transcript/1.0.0'
const MAX_REQUEST_BYTES = 512
/** A transcript carries the job (prompt ≤ 256 KiB at the job protocol) and the output (text, or an image with its PNG in base64, which validation bounds at 8 MiB). */
export const MAX_TRANSCRIPT_BYTES = 12 * 1024 * 1024

const requestSchema = z.object({ v: z.literal(1), type: z.literal('transcript-request'), jobId: z.string().min(1).max(100) }).strict()
const responseSchema = z.discriminatedUnion('type', [
  z.object({ v: z.literal(1), type: z.literal('transcript'), transcript: z.object({ jobId: z.string().max(100), modelId: z.string().max(100), kind: z.enum(['llm', 'image', 'embedding']), miner: z.string().max(100), input: z.unknown(), output: z.unknown(), endedAt: z.number().int().nonnegative() }).strict() }).strict(),
  z.object({ v: z.literal(1), type: z.literal('error'), code: z.string().max(64), message: z.string().max(512) }).strict()
])

const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })

function parse<T> (bytes: Uint8Array, schema: z.ZodType<T>, max: number, what: string): T {
  if (bytes.length > max) throw new HeuristError('GATEWAY_TRANSCRIPT_TOO_LARGE', `${what} over ${max} bytes`)
  let json: unknown
  try { json = JSON.parse(dec.decode(bytes)) } catch { throw new HeuristError('GATEWAY_TRANSCRIPT_MALFORMED', `${what} is not UTF-8 JSON`) }
  const r = schema.safeParse(json)
  if (!r.success) throw new HeuristError('GATEWAY_TRANSCRIPT_MALFORMED', `bad ${what}: ${r.error.issues[0]?.message ?? ''}`)
  return r.data
}

async function firstFrame (stream: Stream, max: number): Promise<Uint8Array | null> {
  const frames = lp.decode(stream, { maxDataLength: max }) as unknown as AsyncIterable<{ subarray: () => Uint8Array }>
  for await (const f of frames) return f.subarray()
  return null
}

async function send (stream: Stream, value: unknown): Promise<void> {
  if (!stream.send(lp.encode.single(enc.encode(JSON.stringify(value))))) await stream.onDrain()
}

export interface TranscriptServerOptions {
  /** Whether an address is a registered validator now (NodeRegistry on the chain). */
  isValidator: (address: string) => Promise<boolean>
}

/** Gateway side: serves stored transcripts to registered validators. Returns a stop function. */
export async function serveTranscripts (node: HeuristNode, transcripts: Transcripts, logger: Logger, o: TranscriptServerOptions): Promise<() => Promise<void>> {
  await node.libp2p.handle(TRANSCRIPT_PROTOCOL, (stream: Stream, connection: Connection) => {
    const timer = setTimeout(() => { stream.abort(new Error('transcript request too slow')) }, 10_000)
    ;(async () => {
      const who = addressFromPeerId(connection.remotePeer)
      try {
        const bytes = await firstFrame(stream, MAX_REQUEST_BYTES)
        if (bytes === null) return
        const req = parse(bytes, requestSchema, MAX_REQUEST_BYTES, 'transcript request')
        if (who === null || !await o.isValidator(who)) {
          await send(stream, { v: 1, type: 'error', code: 'GATEWAY_NOT_A_VALIDATOR', message: 'transcripts are served to registered validators only' })
          return
        }
        const t = await transcripts.get(req.jobId)
        await send(stream, t === undefined
          ? { v: 1, type: 'error', code: 'GATEWAY_NO_TRANSCRIPT', message: 'no transcript for this job (unknown or past retention)' }
          : { v: 1, type: 'transcript', transcript: t })
      } catch (e) {
        logger.debug({ err: (e as Error).message }, 'transcript request failed')
        await send(stream, { v: 1, type: 'error', code: (e as HeuristError).code ?? 'GATEWAY_TRANSCRIPT_FAILED', message: (e as Error).message.slice(0, 512) }).catch(() => {})
      } finally {
        clearTimeout(timer)
        await stream.close().catch(() => {})
      }
    })().catch(() => {})
  }, { maxInboundStreams: 16 })
  return async () => { await node.libp2p.unhandle(TRANSCRIPT_PROTOCOL).catch(() => {}) }
}

/** Validator side: fetches the transcript of `jobId` from the gateway that gossiped its receipt. */
export async function fetchTranscript (node: HeuristNode, gatewayPeerId: string, jobId: string, options: { signal?: AbortSignal } = {}): Promise<Transcript> {
  const signal = options.signal ?? AbortSignal.timeout(15_000)
  const stream = await node.libp2p.dialProtocol(peerIdFromString(gatewayPeerId), TRANSCRIPT_PROTOCOL, { signal })
  try {
    await send(stream, { v: 1, type: 'transcript-request', jobId })
    const bytes = await firstFrame(stream, MAX_TRANSCRIPT_BYTES)
    if (bytes === null) throw new HeuristError('GATEWAY_TRANSCRIPT_FAILED', 'the gateway closed the stream without an answer')
    const r = parse(bytes, responseSchema, MAX_TRANSCRIPT_BYTES, 'transcript response')
    if (r.type === 'error') throw new HeuristError(r.code.startsWith('GATEWAY_') ? r.code : 'GATEWAY_TRANSCRIPT_FAILED', r.message)
    return r.transcript as Transcript
  } finally {
    await stream.close().catch(() => {})
  }
}
