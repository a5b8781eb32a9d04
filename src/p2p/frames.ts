import * as lp from 'it-length-prefixed'
import type { Stream } from '@libp2p/interface'
import type { z } from 'zod'
import { HeuristError } from '../core/errors.js'
import { decodeMessage, encodeMessage } from './messages.js'

/**
 * Length-prefixed (unsigned varint) JSON frames over a libp2p stream, with a bound on every
 * frame's size. Reading is a pull iterator over the stream; writing respects back-pressure.
 */
export class FrameStream {
  private readonly frames: AsyncGenerator<{ subarray: () => Uint8Array }, void, unknown>
  private writes: Promise<void> = Promise.resolve()
  private writeError: unknown = undefined

  constructor (readonly stream: Stream, readonly maxFrameBytes: number) {
    this.frames = lp.decode(stream, { maxDataLength: maxFrameBytes }) as unknown as AsyncGenerator<{ subarray: () => Uint8Array }, void, unknown>
  }

  /**
   * The next frame's bytes, or null when the remote closed its writing end. A frame over the
   * bound or a broken length prefix throws P2P_FRAME_TOO_LARGE / P2P_MALFORMED; a reset
   * stream throws P2P_STREAM_CLOSED.
   */
  async nextBytes (): Promise<Uint8Array | null> {
    let r: IteratorResult<{ subarray: () => Uint8Array }, void>
    try {
      r = await this.frames.next()
    } catch (e) {
      const name = (e as Error).name
      if (name === 'InvalidDataLengthError') throw new HeuristError('P2P_FRAME_TOO_LARGE', `frame over ${this.maxFrameBytes} bytes`)
      if (name === 'InvalidDataLengthLengthError' || name === 'InvalidMessageLengthError') throw new HeuristError('P2P_MALFORMED', 'bad frame length prefix')
      throw new HeuristError('P2P_STREAM_CLOSED', `stream closed: ${(e as Error).message}`, { cause: e })
    }
    if (r.done === true) return null
    return r.value.subarray()
  }

  /** The next frame decoded with `schema`, or null at end of stream. */
  async next<T> (schema: z.ZodType<T>, maxBytes: number, what: string): Promise<T | null> {
    const bytes = await this.nextBytes()
    return bytes === null ? null : decodeMessage(bytes, schema, maxBytes, what)
  }

  /** Queues a frame; writes keep their order. Errors surface on the next `flush`. */
  write (value: unknown): void {
    const bytes = encodeMessage(value)
    this.writes = this.writes.then(async () => {
      if (this.writeError !== undefined) return
      try {
        if (!this.stream.send(lp.encode.single(bytes))) await this.stream.onDrain()
      } catch (e) {
        this.writeError = e
      }
    })
  }

  /** Waits for queued writes; throws P2P_STREAM_CLOSED if one failed. */
  async flush (): Promise<void> {
    await this.writes
    if (this.writeError !== undefined) throw new HeuristError('P2P_STREAM_CLOSED', `cannot write to the stream: ${(this.writeError as Error).message}`)
  }
}
