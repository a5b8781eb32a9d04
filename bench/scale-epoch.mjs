// Reward epoch close at 10,000 and 100,000 miners: the table (src/rewards/table.ts with the
// formulas of src/economics), the tree with every proof (ours vs OpenZeppelin's, same root),
// signing, the gossip parts, and on the receiving side validating the parts, putting them
// together and rebuilding the tree from the leaves (checkLeaves). Used by bench/scale.mjs.
import '../dist/core/shim.js'
import { Wallet, getAddress, hexlify, randomBytes } from 'ethers'
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { WAD, defaultSeason2Params } from '../dist/economics/index.js'
import { computeRewardTable, validateRewardMessage, RewardPartsAssembler, splitRewardMessage, encodeRewardMessage, checkLeaves, rootDigest, signatureOnly, MAX_LEAVES } from '../dist/rewards/index.js'
import { buildRewardTree } from '../dist/chain/index.js'

const r1 = x => Math.round(x * 10) / 10
const time = fn => { const t = performance.now(); const v = fn(); return [v, performance.now() - t] }

function inputs (n) {
  const addr = () => getAddress(hexlify(randomBytes(20)))
  const voters = Array.from({ length: 50 }, addr)
  const miners = Array.from({ length: n }, (_, i) => ({
    operator: addr(),
    payout: addr(),
    points: { llama: BigInt(1 + (i * 7919) % 100_000), waifu: i % 3 === 0 ? BigInt(1 + (i * 104729) % 50_000) : 0n },
    stake: BigInt(i % 10) * 1000n * WAD,
    votes: i % 5 === 0 ? 500n * WAD : 0n,
    voters: i % 5 === 0 ? [{ id: voters[i % voters.length], votes: 500n * WAD }] : [],
    slashed: i % 997 === 0
  }))
  return { epoch: 9n, schedule: 'season2', epochSeconds: 604_800n, revenue: { llama: 400_000n * WAD, waifu: 90_000n * WAD }, season2: defaultSeason2Params, tipBps: 1000, miners }
}

async function close (n, { oz }) {
  const input = inputs(n)
  const [table, tableMs] = time(() => computeRewardTable(input))
  const [tree, treeMs] = time(() => buildRewardTree(table.entries))
  // to the wei: the tree pays what the table computed, entry by entry, and no more than the cap
  const wei = tree.total === table.total && table.total <= table.cap && tree.claims.length === table.entries.length &&
    tree.claims.every((c, i) => c.account === table.entries[i].account && c.amount === table.entries[i].amount)
  let ozMs = null; let sameRoot = null
  if (oz) {
    const [t, ms] = time(() => {
      const z = StandardMerkleTree.of(table.entries.map(e => [e.account, e.amount.toString()]), ['address', 'uint256'])
      for (const [i] of z.entries()) z.getProof(i)
      return z
    })
    ozMs = ms; sameRoot = t.root === tree.root
  }
  const wallet = Wallet.createRandom()
  const deployment = { chainId: 31337, contracts: { Emission: getAddress(hexlify(randomBytes(20))) } }
  const t0 = performance.now()
  const signature = wallet.signingKey.sign(rootDigest(deployment, table.epoch, tree.root, tree.total)).serialized
  const message = { v: 1, type: 'reward-root', chainId: deployment.chainId, emission: deployment.contracts.Emission, epoch: table.epoch.toString(), root: tree.root, total: tree.total.toString(), signature, leaves: table.entries.map(e => [e.account, e.amount.toString()]) }
  const parts = splitRewardMessage(message, MAX_LEAVES).map(encodeRewardMessage)
  const signMs = performance.now() - t0
  const bytes = parts.reduce((s, p) => s + p.length, 0)
  // a receiver (a miner taking its proof, another validator co-signing)
  const t1 = performance.now()
  const assembler = new RewardPartsAssembler()
  let whole = null
  for (const p of parts) whole = assembler.add(validateRewardMessage(deployment, p, wallet.address)) ?? whole
  const validateMs = performance.now() - t1
  const rebuilt = whole === null ? null : checkLeaves(whole.message)
  const receiveMs = performance.now() - t1
  return {
    miners: n,
    leaves: table.entries.length,
    tableMs: r1(tableMs),
    treeWithProofsMs: r1(treeMs),
    openZeppelinTreeWithProofsMs: ozMs === null ? 'not run (≈ 10 × the 10,000 figure)' : r1(ozMs),
    sameRootAsOpenZeppelin: sameRoot,
    signAndEncodeMs: r1(signMs),
    closeMs: r1(tableMs + treeMs + signMs),
    gossipParts: parts.length,
    gossipBytes: bytes,
    // what a validator resends every few seconds until the root is posted (the leaves went once)
    republishBytes: encodeRewardMessage(signatureOnly(message)).length,
    receiveValidateAssembleRebuildMs: r1(receiveMs),
    receiveValidateAssembleMs: r1(validateMs),
    receiverRootMatches: rebuilt !== null && rebuilt.root === tree.root,
    equalToTheWei: wei
  }
}

export async function epochBench ({ sizes = [10_000, 100_000] } = {}) {
  const out = []
  for (const n of sizes) out.push(await close(n, { oz: n <= 10_000 }))
  return out
}
