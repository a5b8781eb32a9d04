/**
 * The reward tree, built directly: the same tree as OpenZeppelin's
 * `StandardMerkleTree.of(values, ['address', 'uint256'])` (leaf = keccak256(keccak256(
 * abi.encode(account, amount))), leaves sorted ascending, the array layout of
 * `makeMerkleTree`, inner node = keccak256 of its two children in ascending order), so the
 * root and every proof are the ones `Emission.claim` checks, but hashing and comparing
 * buffers (hex parsed natively, once per hash), no per-proof re-validation. 3 hashes per leaf, linear after the sort
 * (OpenZeppelin's `getProof` rehashes and re-verifies each leaf: ≈ 1 ms a leaf, 100 s at
 * 100,000). test/chain/merkle.test.ts checks roots and proofs against OpenZeppelin's.
 */
import { keccak256 } from 'ethers'
import { HeuristError } from '../core/errors.js'

const MAX_UINT256 = (1n << 256n) - 1n

/** A node: its bytes (to hash and compare, natively) and its hex (ethers' output, what proofs carry). */
interface Node { b: Buffer, h: string }

function node (hex: string): Node { return { b: Buffer.from(hex.slice(2), 'hex'), h: hex } }

/** keccak256(keccak256(abi.encode(address, uint256))), as hex. */
export function rewardLeafHash (account: string, amount: bigint): string {
  if (!/^0x[0-9a-fA-F]{40}$/.test(account)) throw new HeuristError('CHAIN_BAD_ADDRESS', `reward account ${account} is not an address`)
  if (amount < 0n || amount > MAX_UINT256) throw new HeuristError('CHAIN_BAD_AMOUNT', `reward amount ${amount} is not a uint256`)
  const enc = Buffer.alloc(64)
  enc.write(account.slice(2), 12, 'hex')
  enc.write(amount.toString(16).padStart(64, '0'), 32, 'hex')
  const inner = keccak256(enc)
  return keccak256(Buffer.from(inner.slice(2), 'hex'))
}

function nodeHash (a: Node, b: Node): Node {
  return node(keccak256(Buffer.compare(a.b, b.b) <= 0 ? Buffer.concat([a.b, b.b]) : Buffer.concat([b.b, a.b])))
}

export interface StandardTree {
  root: string
  /** Proofs in the order of the input values. */
  proofs: string[][]
}

/** Root and proofs of (account, amount) values, as OpenZeppelin's StandardMerkleTree builds them. */
export function standardRewardTree (values: Array<{ account: string, amount: bigint }>): StandardTree {
  const n = values.length
  if (n === 0) throw new HeuristError('CHAIN_EMPTY_TREE', 'a Merkle tree needs at least one leaf')
  const hashed = values.map((v, i) => ({ i, n: node(rewardLeafHash(v.account, v.amount)) }))
  hashed.sort((a, b) => Buffer.compare(a.n.b, b.n.b))
  const len = 2 * n - 1
  const tree = new Array<Node>(len)
  const treeIndex = new Array<number>(n)
  for (let k = 0; k < n; k++) { tree[len - 1 - k] = hashed[k]!.n; treeIndex[hashed[k]!.i] = len - 1 - k }
  for (let i = len - 1 - n; i >= 0; i--) tree[i] = nodeHash(tree[2 * i + 1]!, tree[2 * i + 2]!)
  const proofs = treeIndex.map(start => {
    const proof: string[] = []
    for (let i = start; i > 0; i = Math.floor((i - 1) / 2)) proof.push(tree[i % 2 === 1 ? i + 1 : i - 1]!.h)
    return proof
  })
  return { root: tree[0]!.h, proofs }
}
