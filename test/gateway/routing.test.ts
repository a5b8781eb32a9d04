import { describe, it, expect } from 'vitest'
import { rankCandidates, CircuitBreakers } from '../../src/gateway/index.js'

const c = (peerId: string, o: Partial<{ modelLoaded: boolean, speed: number, votes: bigint, uptime: number }> = {}) =>
  ({ peerId, modelLoaded: false, speed: 0, votes: 0n, uptime: 0, ...o })

describe('routing order (whitepaper §2.2.2)', () => {
  const none = new Set<string>()

  it('puts miners with the model loaded first, even when slower, referred-against, with fewer votes and worse uptime', () => {
    const r = rankCandidates([c('cold', { speed: 100, votes: 10n, uptime: 1 }), c('warm', { modelLoaded: true })], { referred: new Set(['cold']) })
    expect(r.map(x => x.peerId)).toEqual(['warm', 'cold'])
  })

  it('then miners the frontend refers', () => {
    const r = rankCandidates([c('a', { speed: 100 }), c('ref', { speed: 1 })], { referred: new Set(['ref']) })
    expect(r.map(x => x.peerId)).toEqual(['ref', 'a'])
  })

  it('then the most efficient GPU, then most votes, then best uptime', () => {
    const r = rankCandidates([
      c('slow', { speed: 5, votes: 100n, uptime: 1 }),
      c('fast-few-votes', { speed: 50, votes: 1n, uptime: 0.1 }),
      c('fast-many-votes-low-uptime', { speed: 50, votes: 9n, uptime: 0.2 }),
      c('fast-many-votes-high-uptime', { speed: 50, votes: 9n, uptime: 0.9 })
    ], { referred: none })
    expect(r.map(x => x.peerId)).toEqual(['fast-many-votes-high-uptime', 'fast-many-votes-low-uptime', 'fast-few-votes', 'slow'])
  })

  it('breaks ties at random with the injected RNG, and reaches every tied miner', () => {
    const tied = [c('a'), c('b'), c('c')]
    let seed = 1
    const rng = (): number => { seed = (seed * 16807) % 2147483647; return (seed - 1) / 2147483646 }
    const firsts = new Set<string>()
    for (let i = 0; i < 60; i++) firsts.add(rankCandidates(tied, { referred: none, rng })[0]!.peerId)
    expect(firsts).toEqual(new Set(['a', 'b', 'c']))
    // the same RNG sequence gives the same order
    const fixed = (): number => 0.5
    expect(rankCandidates(tied, { referred: none, rng: fixed }).map(x => x.peerId)).toEqual(rankCandidates(tied, { referred: none, rng: fixed }).map(x => x.peerId))
  })

  it('is pure: the input is not reordered; NaN speed ranks as zero', () => {
    const input = [c('x', { speed: Number.NaN }), c('y', { speed: 1 })]
    const r = rankCandidates(input, { referred: none })
    expect(input.map(x => x.peerId)).toEqual(['x', 'y'])
    expect(r.map(x => x.peerId)).toEqual(['y', 'x'])
  })
})

describe('circuit breaker', () => {
  it('opens after the threshold of consecutive failures, half-opens after the cooldown for one trial, closes on success', () => {
    let now = 0
    const b = new CircuitBreakers({ failureThreshold: 2, cooldownMs: 1000, now: () => now })
    b.failure('m')
    expect(b.allow('m')).toBe(true)
    b.failure('m')
    expect(b.state('m')).toBe('open')
    expect(b.allow('m')).toBe(false)
    now = 1000
    expect(b.state('m')).toBe('half-open')
    expect(b.allow('m')).toBe(true)
    expect(b.allow('m')).toBe(false) // one trial at a time
    b.success('m')
    expect(b.state('m')).toBe('closed')
    expect(b.allow('m')).toBe(true)
  })

  it('a failed trial re-opens it at once', () => {
    let now = 0
    const b = new CircuitBreakers({ failureThreshold: 1, cooldownMs: 100, now: () => now })
    b.failure('m')
    now = 150
    expect(b.allow('m')).toBe(true)
    b.failure('m')
    expect(b.state('m')).toBe('open')
  })

  it('a success resets the failure count', () => {
    const b = new CircuitBreakers({ failureThreshold: 2 })
    b.failure('m'); b.success('m'); b.failure('m')
    expect(b.state('m')).toBe('closed')
  })
})
