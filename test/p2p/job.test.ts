import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { Wallet } from 'ethers'
import * as lp from 'it-length-prefixed'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  JOB_PROTOCOL, MAX_BYTES, encodeMessage, receiptSigner, signReceipt, receiptFromWire, responseFrameSchema, decodeMessage,
  type HeuristNode, type JobRequest
} from '../../src/p2p/index.js'
import { isHeuristError } from '../../src/core/errors.js'
import { testNode, until } from './util.js'
import { ScriptedExecutor, SCRIPT_MODEL } from './scripted-executor.js'

const job: JobRequest = { kind: 'llm', modelId: SCRIPT_MODEL.id, input: 'hello', sampling: { seed: 1, temperature: 0, topP: 1, topK: 0, maxTokens: 5, stop: [] } }

async function rejectionCode (p: Promise<unknown>): Promise<string> {
  try { await p } catch (e) { return isHeuristError(e) ? String(e.details?.code ?? e.code) : String(e) }
  return 'no error'
}

/** Opens a raw job stream, sends `chunks` as they are, returns the decoded reply frames. */
async function rawExchange (client: HeuristNode, miner: HeuristNode, chunks: Uint8Array[]): Promise<Array<Record<string, unknown>>> {
  const stream = await client.libp2p.dialProtocol(miner.peerId, JOB_PROTOCOL)
  for (const c of chunks) stream.send(c)
  const out: Array<Record<string, unknown>> = []
  for await (const f of lp.decode(stream, { maxDataLength: MAX_BYTES.frame })) {
    out.push(decodeMessage(f.subarray(), responseFrameSchema, MAX_BYTES.frame, 'frame') as Record<string, unknown>)
    if (out.length > 10) break
  }
  await stream.close()
  return out
}

describe('job protocol /heurist/job/1.0.0 over real TCP', () => {
  let miner: HeuristNode
  let client: HeuristNode
  let exec: ScriptedExecutor

  beforeAll(async () => {
    miner = await testNode()
    client = await testNode({ bootstrap: [miner.multiaddrs()[0]!] })
    exec = new ScriptedExecutor()
    await miner.serveJobs(exec, { maxConcurrentJobs: 1, maxQueue: 1, streamHeadroom: 2 })
    await client.dial(miner.multiaddrs()[0]!)
  })
  afterAll(async () => { await client.stop(); await miner.stop() })

  it('streams tokens, then the result and a receipt signed by the serving miner', async () => {
    const tokens: string[] = []
    const r = await client.runJob(miner.peerId, job, { onToken: t => { tokens.push(t) } })
    expect(tokens).toEqual(['one', ' two', ' three', ' four', ' five'])
    expect(r.output.kind === 'llm' && r.output.result.text).toBe('one two three four five')
    expect(r.receiptValid).toBe(true)
    expect(receiptSigner(r.receipt)).toBe(miner.address)
    const rec = receiptFromWire(r.receipt.receipt)
    expect(rec.requester).toBe(client.address)
    expect(rec.modelId).toBe('0x' + SCRIPT_MODEL.id)
    expect(rec.jobId).toBe(r.jobId)
    expect(rec.computeUnits > 0n).toBe(true)
    expect(rec.endedAt >= rec.startedAt).toBe(true)
    expect(miner.jobs?.stats.served).toBeGreaterThanOrEqual(1)
  })

  it('rejects an unknown model and an unsupported kind with typed reasons', async () => {
    expect(await rejectionCode(client.runJob(miner.peerId, { ...job, modelId: 'c'.repeat(64) }))).toBe('P2P_UNKNOWN_MODEL')
    const image: JobRequest = { kind: 'image', modelId: SCRIPT_MODEL.id, image: { prompt: 'a cat', negativePrompt: '', width: 64, height: 64, steps: 2, guidanceScale: 7, seed: 1, scheduler: 'euler' } }
    expect(await rejectionCode(client.runJob(miner.peerId, image))).toBe('P2P_UNSUPPORTED_KIND')
  })

  it('a client that aborts cancels the job on the miner', async () => {
    const before = exec.seen.length
    const ac = new AbortController()
    const p = client.runJob(miner.peerId, { ...job, sampling: { ...job.sampling, maxTokens: 5 } }, { signal: ac.signal, onToken: () => { ac.abort() } })
    expect(await rejectionCode(p)).toBe('P2P_JOB_CANCELLED')
    expect(await until(() => exec.seen.length > before && exec.seen.at(-1)!.aborted, 5000)).toBe(true)
    expect(exec.seen.at(-1)!.tokens).toBeLessThan(5)
    expect(await until(() => miner.jobs!.stats.running === 0, 5000)).toBe(true)
  })

  it('a job past its deadline is cancelled', async () => {
    const slow = await testNode({ bootstrap: [miner.multiaddrs()[0]!] })
    try {
      const e = new ScriptedExecutor(['a', 'b', 'c', 'd', 'e'], 300)
      await slow.serveJobs(e)
      await client.dial(slow.multiaddrs()[0]!)
      expect(await rejectionCode(client.runJob(slow.peerId, job, { timeoutMs: 400 }))).toBe('P2P_JOB_CANCELLED')
      expect(await until(() => e.seen[0]?.aborted === true, 5000)).toBe(true)
    } finally { await slow.stop() }
  })

  it('answers P2P_BUSY when the queue is full', async () => {
    const jobs = [0, 1, 2].map(() => client.runJob(miner.peerId, job).then(() => 'ok', async e => await rejectionCode(Promise.reject(e))))
    const codes = await Promise.all(jobs)
    expect(codes.filter(c => c === 'ok').length).toBe(2)
    expect(codes).toContain('P2P_BUSY')
  })

  it('rejects malformed, wrong-version and oversized frames with typed errors, and keeps serving', async () => {
    const garbage = await rawExchange(client, miner, [lp.encode.single(new Uint8Array([0xff, 0x00, 0x7b])).subarray()])
    expect(garbage[0]).toMatchObject({ type: 'rejected', code: 'P2P_MALFORMED' })
    const v2 = await rawExchange(client, miner, [lp.encode.single(encodeMessage({ v: 2, type: 'request' })).subarray()])
    expect(v2[0]).toMatchObject({ type: 'rejected', code: 'P2P_BAD_VERSION' })
    const schema = await rawExchange(client, miner, [lp.encode.single(encodeMessage({ v: 1, type: 'request', kind: 'llm', jobId: 'x' })).subarray()])
    expect(schema[0]).toMatchObject({ type: 'rejected', code: 'P2P_SCHEMA' })
    // a length prefix announcing 10 MB: refused before any of it is buffered
    const big = await rawExchange(client, miner, [lp.encode.single(new Uint8Array(MAX_BYTES.request + 1)).subarray()])
    expect(big[0]).toMatchObject({ type: 'rejected', code: 'P2P_FRAME_TOO_LARGE' })
    const r = await client.runJob(miner.peerId, job)
    expect(r.receiptValid).toBe(true)
  })

  it('bounds open job streams per connection at capacity + headroom (here 2 + 2): the fifth is refused', async () => {
    const open = []
    for (let i = 0; i < 4; i++) open.push(await client.libp2p.dialProtocol(miner.peerId, JOB_PROTOCOL))
    let refused = false
    try {
      const fifth = await client.libp2p.dialProtocol(miner.peerId, JOB_PROTOCOL)
      // the refusal may arrive as a reset after negotiation
      for await (const _ of fifth) { /* drain */ }
      refused = fifth.status !== 'open'
    } catch { refused = true }
    expect(refused).toBe(true)
    for (const s of open) await s.close()
    // the slots free up: a normal job runs again
    expect(await until(async () => { try { return (await client.runJob(miner.peerId, job)).receiptValid } catch { return false } }, 10_000, 200)).toBe(true)
  })

  it('flags a receipt signed by someone other than the serving miner', async () => {
    const liar = await testNode({ bootstrap: [miner.multiaddrs()[0]!] })
    const other = Wallet.createRandom()
    try {
      // a miner that runs the job honestly but signs the receipt with another key
      await liar.libp2p.handle(JOB_PROTOCOL, async (stream, conn) => {
        const frames = lp.decode(stream, { maxDataLength: MAX_BYTES.request })
        const first = (await frames.next()).value!
        const req = JSON.parse(new TextDecoder().decode(first.subarray())) as { jobId: string }
        const send = (f: unknown): void => { stream.send(lp.encode.single(encodeMessage(f))) }
        send({ v: 1, type: 'accepted', jobId: req.jobId, queued: 0 })
        send({ v: 1, type: 'result', kind: 'llm', text: 'hi', tokens: [1], finishReason: 'stop', usage: { promptTokens: 1, outputTokens: 1, ttftMs: 1, tokensPerSecond: 1, totalMs: 1 } })
        const { inputHashOf, paramsHashOf, sha256Hex } = await import('../../src/p2p/index.js')
        const signed = await signReceipt(other, {
          jobId: req.jobId, requester: conn.remotePeer ? client.address : '', miner: liar.address, modelId: '0x' + SCRIPT_MODEL.id, pool: 0,
          inputHash: inputHashOf(job), outputHash: sha256Hex('hi'), paramsHash: paramsHashOf(job), computeUnits: 1n, startedAt: 1n, endedAt: 2n
        })
        send({ v: 1, type: 'receipt', signed })
        await stream.close()
      })
      await client.dial(liar.multiaddrs()[0]!)
      const r = await client.runJob(peerIdFromString(liar.peerId.toString()), job)
      expect(r.receiptValid).toBe(false)
      expect(r.receiptProblem).toMatch(/signed by/)
    } finally { await liar.stop() }
  })
})
