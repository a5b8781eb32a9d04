/**
 * The reward tree, built directly: the same tree as OpenZeppelin's
 * `StandardMerkleTree.of(values, ['address', 'uint256'])` (leaf = keccak256(keccak256(
 * abi.encode(account, amount))), leaves sorted ascending, the array layout of
 * `makeMerkleTree`, inner node = keccak256 of its two children in ascending order), so the
 * root and every proof are the ones `Emission.claim` checks, but on bytes: no hex round trip
 * per hash, no per-proof re-validation. About 3 hashes per leaf, linear after the sort
 * (OpenZeppelin's `getProof` rehashes and re-verifies each leaf: ≈ 1 ms a leaf, 100 s at
 * 100,000). test/chain/merkle.test.ts checks roots and proofs against OpenZeppelin's.
 */
import { getBytes, hexlify, keccak256 } from 'ethers'
import { HeuristError } from '../core/errors.js'

const MAX_UINT256 = (1n << 256n) - 1n

function keccak (b: Uint8Array): Uint8Array { return getBytes(keccak256(b)) }

function compare (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return 0
}

/** keccak256(keccak256(abi.encode(address, uint256))). */
export function rewardLeafHash (account: string, amount: bigint): Uint8Array {
  if (amount < 0n || amount > MAX_UINT256) throw new HeuristError('CHAIN_BAD_AMOUNT', `reward amount ${amount} is not a uint256`)
  if (!/^0x[0-9a-fA-F]{40}$/.test(account)) throw new HeuristError('CHAIN_BAD_ADDRESS', `reward account ${account} is not an address`)
  const enc = new Uint8Array(64)
  enc.set(getBytes(account), 12)
  let v = amount
  for (let i = 63; i >= 32 && v > 0n; i--) { enc[i] = Number(v & 0xffn); v >>= 8n }
  return keccak(keccak(enc))
}

function nodeHash (a: Uint8Array, b: Uint8Array): Uint8Array {
  const buf = new Uint8Array(64)
  if (compare(a, b) <= 0) { buf.set(a, 0); buf.set(b, 32) } else { buf.set(b, 0); buf.set(a, 32) }
  return keccak(buf)
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
  const hashed = values.map((v, i) => ({ i, h: rewardLeafHash(v.account, v.amount) }))
  hashed.sort((a, b) => compare(a.h, b.h))
  const len = 2 * n - 1
  const tree = new Array<Uint8Array>(len)
  const treeIndex = new Array<number>(n)
  for (let k = 0; k < n; k++) { tree[len - 1 - k] = hashed[k]!.h; treeIndex[hashed[k]!.i] = len - 1 - k }
  for (let i = len - 1 - n; i >= 0; i--) tree[i] = nodeHash(tree[2 * i + 1]!, tree[2 * i + 2]!)
  const hex = tree.map(h => hexlify(h))
  const proofs = treeIndex.map(start => {
    const proof: string[] = []
    for (let i = start; i > 0; i = Math.floor((i - 1) / 2)) proof.push(hex[i % 2 === 1 ? i + 1 : i - 1]!)
    return proof
  })
  return { root: hex[0]!, proofs }
}
