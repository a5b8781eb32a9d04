import { describe, it, expect } from 'vitest'
import { Wallet } from 'ethers'
import { receiptHash, type JobOutput, type JobRequest } from '../../src/p2p/index.js'
import {
  QuorumBook, REASON, buildVerdictMessage, decodeTranscript, fromGatewayTranscript, transcriptMismatch, verdictMessageSchema, verdictSigner,
  MAX_TRANSCRIPT_BYTES
} from '../../src/validation/index.js'
import { receiptFor } from './fixtures.js'

// Pure parts: verdict signatures, quorum by stake, transcripts against receipts. No models.
const domain = { chainId: 31337, verifyingContract: '0x' + '22'.repeat(20) }
const modelId = 'ab'.repeat(32)
const job: JobRequest = { kind: 'llm', modelId, input: 'hello', sampling: { seed: 1, temperature: 0.8, topP: 0.95, topK: 40, maxTokens: 8, stop: [] } }
const out: JobOutput = { kind: 'llm', result: { text: 'abc', tokens: [100, 101, 102], finishReason: 'length', usage: { promptTokens: 1, outputTokens: 3, ttftMs: 1, tokensPerSecond: 1, totalMs: 1 } } }
const gatewayShape = (text = 'abc') => ({ kind: 'llm' as const, modelId, input: { modelId, input: 'hello', sampling: job.kind === 'llm' ? job.sampling : null }, output: { text, tokens: [100, 101, 102], finishReason: 'length' } })

describe('verdicts and quorum', () => {
  const miner = Wallet.createRandom()
  const vals = [Wallet.createRandom(), Wallet.createRandom(), Wallet.createRandom()]

  it('signs verdicts under the Slashing domain; another domain recovers another signer', async () => {
    const signed = await receiptFor(miner, job, out, domain)
    const m = await buildVerdictMessage(vals[0]!, domain, signed, receiptHash(signed, domain), false, REASON.outsideSupport)
    expect(verdictMessageSchema.safeParse(m).success).toBe(true)
    expect(verdictSigner(m.verdict, m.signature, domain)).toBe(vals[0]!.address)
    expect(verdictSigner(m.verdict, m.signature, { ...domain, chainId: 1 })).not.toBe(vals[0]!.address)
    expect(verdictSigner({ ...m.verdict, pass: true }, m.signature, domain)).not.toBe(vals[0]!.address)
  })

  it('counts distinct validators by stake: 2 of 3 equal stakes is a quorum, 1 of 3 is not, repeats count once', async () => {
    const signed = await receiptFor(miner, job, out, domain)
    const rh = receiptHash(signed, domain)
    const stake = new Map(vals.map(v => [v.address, 100n]))
    const stakeOf = async (a: string): Promise<bigint> => stake.get(a) ?? 0n
    const total = async (): Promise<bigint> => 300n
    const book = new QuorumBook()
    const m0 = await buildVerdictMessage(vals[0]!, domain, signed, rh, false, REASON.outsideSupport)
    book.add(m0)
    book.add(m0)
    expect(await book.hasQuorum(rh, stakeOf, total)).toBe(false)
    book.add(await buildVerdictMessage(vals[1]!, domain, signed, rh, true, REASON.pass)) // a pass never counts
    expect(await book.hasQuorum(rh, stakeOf, total)).toBe(false)
    book.add(await buildVerdictMessage(vals[1]!, domain, signed, rh, false, REASON.outsideSupport))
    expect(await book.hasQuorum(rh, stakeOf, total)).toBe(true)
    const e = book.evidence(rh)
    expect(e.verdicts.map(v => BigInt(v.validator))).toEqual([...e.verdicts.map(v => BigInt(v.validator))].sort((a, b) => a < b ? -1 : 1))
    // a heavier third validator changes the arithmetic
    stake.set(vals[2]!.address, 1000n)
    expect(await book.hasQuorum(rh, stakeOf, async () => 1200n)).toBe(false)
  })
})

describe('transcripts against receipts', () => {
  const miner = Wallet.createRandom()

  it('reads the gateway\'s transcript and matches it to the receipt', async () => {
    const signed = await receiptFor(miner, job, out, domain)
    const t = fromGatewayTranscript(signed.receipt.jobId, gatewayShape())
    expect(t).not.toBeNull()
    expect(transcriptMismatch(t!, signed)).toBeNull()
  })

  it('reads the gateway\'s image transcript (request fields and the PNG) and matches it to the receipt', async () => {
    const image = { prompt: 'a cat', negativePrompt: '', width: 8, height: 8, steps: 2, guidanceScale: 7.5, seed: 3, scheduler: 'euler' as const }
    const req: JobRequest = { kind: 'image', modelId, image }
    const res: JobOutput = { kind: 'image', result: { png: new Uint8Array([1, 2, 3]), pixelSha256: 'cd'.repeat(32), width: 8, height: 8, ms: 1, threads: 1, optimizationLevel: 'basic' } }
    const signed = await receiptFor(miner, req, res, domain)
    const t = fromGatewayTranscript(signed.receipt.jobId, { kind: 'image', modelId, input: { modelId, ...image }, output: { pixelSha256: 'cd'.repeat(32), width: 8, height: 8, pngBase64: 'AQID' } })
    expect(t).toMatchObject({ kind: 'image', output: { pngBase64: 'AQID' } })
    expect(transcriptMismatch(t!, signed)).toBeNull()
    const other = fromGatewayTranscript(signed.receipt.jobId, { kind: 'image', modelId, input: { modelId, ...image, seed: 4 }, output: { pixelSha256: 'cd'.repeat(32), width: 8, height: 8 } })
    expect(transcriptMismatch(other!, signed)).toBe('params hash differs')
  })

  it('names what differs when the transcript was tampered with', async () => {
    const signed = await receiptFor(miner, job, out, domain)
    expect(transcriptMismatch(fromGatewayTranscript(signed.receipt.jobId, gatewayShape('abd'))!, signed)).toBe('output hash differs')
    expect(transcriptMismatch(fromGatewayTranscript('0x' + '00'.repeat(32), gatewayShape())!, signed)).toBe('job id differs')
    const other = { ...gatewayShape(), input: { ...gatewayShape().input, input: 'hellO' } }
    expect(transcriptMismatch(fromGatewayTranscript(signed.receipt.jobId, other)!, signed)).toBe('input hash differs')
    const params = { ...gatewayShape(), input: { ...gatewayShape().input, sampling: { ...(gatewayShape().input.sampling as object), seed: 2 } } }
    expect(transcriptMismatch(fromGatewayTranscript(signed.receipt.jobId, params)!, signed)).toBe('params hash differs')
  })

  it('rejects malformed transcripts: bad shapes, bad JSON, over the size bound', () => {
    expect(fromGatewayTranscript('0x' + '00'.repeat(32), { kind: 'llm', modelId, input: 'x', output: {} })).toBeNull()
    expect(fromGatewayTranscript('0x' + '00'.repeat(32), { ...gatewayShape(), output: { text: 1 } })).toBeNull()
    expect(() => decodeTranscript(new TextEncoder().encode('{'))).toThrow(expect.objectContaining({ code: 'VALIDATION_BAD_TRANSCRIPT' }))
    expect(() => decodeTranscript(new Uint8Array(MAX_TRANSCRIPT_BYTES + 1))).toThrow(expect.objectContaining({ code: 'VALIDATION_TRANSCRIPT_TOO_LARGE' }))
  })
})
