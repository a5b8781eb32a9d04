import type { Candidate } from './types.js'

/**
 * The whitepaper's routing order (§2.2.2): miners that already host the model; then miners
 * the frontend refers; then the most efficient GPU; then the most token votes; then the best
 * uptime. Ties are broken at random (the RNG is injected so tests can pin it).
 */
export type RouteFields = Pick<Candidate, 'peerId' | 'modelLoaded' | 'speed' | 'votes' | 'uptime'>

export interface RouteOptions {
  /** PeerIds this frontend refers. */
  referred: ReadonlySet<string>
  /** Uniform in [0, 1); default Math.random. */
  rng?: () => number
}

function cmpDesc (a: number | bigint, b: number | bigint): number {
  return a > b ? -1 : a < b ? 1 : 0
}

/** Candidates best first. Pure: the input array is not changed. */
export function rankCandidates<T extends RouteFields> (candidates: readonly T[], options: RouteOptions): T[] {
  const rng = options.rng ?? Math.random
  const out = [...candidates]
  // Shuffle first, then a stable sort: equal keys keep the random order.
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(rng() * (i + 1)))
    const t = out[i]!
    out[i] = out[j]!
    out[j] = t
  }
  const speed = (c: T): number => Number.isFinite(c.speed) && c.speed > 0 ? c.speed : 0
  const uptime = (c: T): number => Number.isFinite(c.uptime) ? c.uptime : 0
  return out.sort((a, b) =>
    cmpDesc(Number(a.modelLoaded), Number(b.modelLoaded)) ||
    cmpDesc(Number(options.referred.has(a.peerId)), Number(options.referred.has(b.peerId))) ||
    cmpDesc(speed(a), speed(b)) ||
    cmpDesc(a.votes, b.votes) ||
    cmpDesc(uptime(a), uptime(b)))
}
