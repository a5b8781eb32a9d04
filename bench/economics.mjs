// Epoch settlement cost: validators allocate each pool over every miner at the end of an
// epoch, so `allocate` must stay cheap at network scale (Season 1 had 3,000–6,000 GPUs online).
// Run `npx tsc -p .` first. Prints JSON: median ms of several runs per miner count.
import { allocate, multiplierWad, whitepaperEpochCap, WAD, WEEK_SECONDS } from '../dist/economics/index.js'

const RUNS = 7
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

function miners (n) {
  const out = []
  for (let i = 0; i < n; i++) {
    const stake = BigInt((i * 7919) % 150_000) * WAD
    out.push({ id: `0x${i.toString(16).padStart(40, '0')}`, points: BigInt(1 + (i * 104729) % 5_000_000) * 1_000_000n, multiplierWad: multiplierWad(stake, 0n) })
  }
  return out
}

const results = []
for (const n of [1_000, 10_000, 100_000]) {
  const ms = miners(n)
  const pool = whitepaperEpochCap(1_000_000n * WAD, WEEK_SECONDS).emission / 2n
  const times = []
  let dust = 0n
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now()
    dust = allocate(pool, ms).dust
    times.push(performance.now() - t0)
  }
  results.push({ miners: n, medianMs: Number(median(times).toFixed(2)), msPerThousandMiners: Number((median(times) / (n / 1000)).toFixed(3)), dustWei: dust.toString() })
}
console.log(JSON.stringify({ bench: 'economics.allocate', runs: RUNS, results }, null, 2))
