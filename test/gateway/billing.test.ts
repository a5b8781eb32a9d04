import { describe, it, expect } from 'vitest'
import { billJob, maxUnits, reservationFor, type BillInput } from '../../src/gateway/billing.js'
import { ObservedSpeeds } from '../../src/gateway/observed.js'
import { clampWeight, imageComputeUnits, llmComputeUnits, modelWeightGib, promptUnits } from '../../src/economics/index.js'
import type { Candidate } from '../../src/gateway/index.js'

const GIB = 2 ** 30

describe('compute units (economics/compute-units)', () => {
  it.each([
    // [memoryBytes, weight]: GiB rounded up, at least 1, at most 1024
    [0, 1n], [1, 1n], [GIB, 1n], [GIB + 1, 2n], [24 * GIB, 24n], [4096 * GIB, 1024n]
  ])('modelWeightGib(%d) = %d', (bytes, w) => { expect(modelWeightGib(bytes)).toBe(w) })

  it('prompt units: ⌈UTF-8 bytes / 4⌉ per text, + 4 per chat message', () => {
    expect(promptUnits('')).toBe(0n)
    expect(promptUnits('abcd')).toBe(1n)
    expect(promptUnits('abcde')).toBe(2n)
    expect(promptUnits('é')).toBe(1n) // 2 bytes
    expect(promptUnits([{ content: 'hi' }, { content: 'abcdefgh' }])).toBe(1n + 4n + 2n + 4n)
  })

  it('llm: weight × (prompt + output); image: weight × steps × 64×64 tiles', () => {
    expect(llmComputeUnits(3n, 5n, 7)).toBe(36n)
    expect(imageComputeUnits(2n, { width: 512, height: 512, steps: 20 })).toBe(2n * 20n * 8n * 8n)
    expect(imageComputeUnits(1n, { width: 65, height: 64, steps: 1 })).toBe(2n)
    expect(clampWeight(undefined)).toBe(1n)
    expect(clampWeight(0)).toBe(1n)
    expect(clampWeight(10 ** 9)).toBe(1024n)
  })
})

describe('billing from what the gateway measured', () => {
  const job = { kind: 'llm' as const, input: 'abcdefgh', maxTokens: 10 } // 2 prompt units
  const base: BillInput = { job, weight: 2n, pricePerUnit: 100n, reserved: reservationFor(job, 2n, 100n), deliveredTokens: 4, startedAt: 1_000_000, endedAt: 1_002_500, claim: null }

  it('reserves every allowed token and charges the delivered ones, in the same unit', () => {
    expect(maxUnits(job, 2n)).toBe(2n * (2n + 10n))
    expect(base.reserved).toBe(2400n)
    const b = billJob(base)
    expect(b).toMatchObject({ measuredUnits: 12n, units: 12n, cost: 1200n, outputTokens: 4, ms: 2500, overclaim: null })
  })

  it('delivered tokens past max_tokens are not billed; the cost never exceeds the reservation', () => {
    expect(billJob({ ...base, deliveredTokens: 1000 }).units).toBe(24n)
    expect(billJob({ ...base, deliveredTokens: 1000, reserved: 500n }).cost).toBe(500n)
  })

  it('a receipt may ask for less than measured (paid its claim), never more (paid nothing)', () => {
    expect(billJob({ ...base, claim: { units: 10n } })).toMatchObject({ units: 10n, cost: 1000n, overclaim: null })
    expect(billJob({ ...base, claim: { units: 12n } })).toMatchObject({ units: 12n, cost: 1200n, overclaim: null })
    const over = billJob({ ...base, claim: { units: 13n } })
    expect(over).toMatchObject({ units: 0n, cost: 0n, measuredUnits: 12n })
    expect(over.overclaim).toMatch(/claims 13 compute units; the gateway measured 12/)
  })

  it('a receipt claiming more time than the gateway saw pass is not paid (2.5 s seen: 4 s allowed with rounding, 5 s refused)', () => {
    expect(billJob({ ...base, claim: { units: 12n, startedAt: 100n, endedAt: 104n } }).overclaim).toBeNull()
    expect(billJob({ ...base, claim: { units: 12n, startedAt: 100n, endedAt: 105n } })).toMatchObject({ cost: 0n })
  })

  it('images: units from the requested size and steps', () => {
    const img = { kind: 'image' as const, image: { width: 128, height: 64, steps: 10 } }
    expect(billJob({ ...base, job: img, weight: 1n, reserved: 10_000n, claim: { units: 20n } })).toMatchObject({ measuredUnits: 20n, units: 20n, cost: 2000n })
  })
})

describe('observed speed ranks miners', () => {
  const c = (peerId: string, speed: number): Candidate => ({ peerId, address: '0x' + '0'.repeat(40), modelLoaded: true, speed, votes: 0n, uptime: 1, pricePerUnit: 1n })

  it('an untried miner\'s claim is capped at the best observed speed; a miner that only failed ranks last', () => {
    const o = new ObservedSpeeds()
    o.success('honest', 'llm', 30, 1000, 50) // 30 tokens/s
    o.failure('liar', 'llm')
    const ranked = o.rankSpeeds([c('honest', 10), c('fresh', 1e7), c('liar', 1e7)], 'llm')
    expect(ranked.map(x => x.speed)).toEqual([30, 30, 0])
    expect(o.untried('fresh', 'llm')).toBe(true)
    expect(o.untried('liar', 'llm')).toBe(false)
    // with nothing observed yet, claims are all there is
    expect(new ObservedSpeeds().rankSpeeds([c('a', 5)], 'llm')[0]!.speed).toBe(5)
  })

  it('failures since the last success halve the observed speed; a success resets them', () => {
    const o = new ObservedSpeeds()
    o.success('m', 'llm', 40, 1000, 10)
    o.failure('m', 'llm')
    expect(o.rankSpeeds([c('m', 0)], 'llm')[0]!.speed).toBe(20)
    o.success('m', 'llm', 40, 1000, 10)
    expect(o.rankSpeeds([c('m', 0)], 'llm')[0]!.speed).toBe(40)
  })
})
