// Epoch close cost: every validator computes the reward table (both pools, multipliers, tips),
// builds the OpenZeppelin Merkle tree and gossips its leaves; every miner rebuilds the tree from
// those leaves to take its proof. Run `npx tsc -p .` first. Prints JSON: medians of several
// runs per miner count, and the table : tree ratio measured in the same run.
import { computeRewardTable, checkLeaves, encodeRewardMessage } from '../dist/rewards/index.js'
import { buildRewardTree } from '../dist/chain/index.js'
import { defaultSeason2Params, WAD, WEEK_SECONDS } from '../dist/economics/index.js'

const RUNS = 5
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const addr = i => '0x' + (i + 1).toString(16).padStart(40, '0')

function input (n) {
  const miners = []
  for (let i = 0; i < n; i++) {
    const voters = i % 10 === 0 ? [{ id: addr(1_000_000 + i), votes: 1000n * WAD }, { id: addr(2_000_000 + i), votes: 500n * WAD }] : []
    miners.push({
      operator: addr(i), payout: addr(i), stake: BigInt((i * 7919) % 150_000) * WAD, votes: voters.length > 0 ? 1500n * WAD : 0n, voters, slashed: i % 97 === 0,
      points: { llama: BigInt(1 + (i * 104729) % 5_000_000), waifu: i % 3 === 0 ? BigInt(1 + (i * 15485863) % 900_000) : 0n }
    })
  }
  return { epoch: 1n, schedule: 'whitepaper', epochSeconds: WEEK_SECONDS, revenue: { llama: 300_000n * WAD, waifu: 100_000n * WAD }, season2: defaultSeason2Params, tipBps: 1000, miners }
}

const results = []
for (const n of [100, 1000, 4000]) {
  const inp = input(n)
  const table = []
  const tree = []
  const rebuild = []
  let leaves = 0
  let bytes = 0
  for (let r = 0; r < RUNS; r++) {
    let t0 = performance.now()
    const t = computeRewardTable(inp)
    table.push(performance.now() - t0)
    t0 = performance.now()
    const tr = buildRewardTree(t.entries)
    tree.push(performance.now() - t0)
    const m = { v: 1, type: 'reward-root', chainId: 31337, emission: addr(999), epoch: '1', root: tr.root, total: tr.total.toString(), signature: '0x' + '11'.repeat(65), leaves: tr.claims.map(c => [c.account, c.amount.toString()]) }
    t0 = performance.now()
    if (checkLeaves(m) === null) throw new Error('leaves do not rebuild the root')
    rebuild.push(performance.now() - t0)
    leaves = m.leaves.length
    bytes = encodeRewardMessage(m).byteLength
  }
  results.push({
    miners: n,
    leaves,
    gossipBytes: bytes,
    tableMs: Number(median(table).toFixed(2)),
    treeMs: Number(median(tree).toFixed(2)),
    minerRebuildMs: Number(median(rebuild).toFixed(2)),
    treeOverTable: Number((median(tree) / median(table)).toFixed(1))
  })
}
console.log(JSON.stringify({ bench: 'rewards', runs: RUNS, results }, null, 2))
