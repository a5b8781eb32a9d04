import { describe, it, expect } from 'vitest'
import { Wallet, getAddress, hexlify, randomBytes } from 'ethers'
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { standardRewardTree, rewardLeafHash, buildRewardTree } from '../../src/chain/index.js'

// Our reward tree must be OpenZeppelin's, byte for byte: Emission.claim checks proofs made by
// the StandardMerkleTree layout, and miners rebuild roots from gossiped leaves.
function table (n: number, seed: number): Array<{ account: string, amount: bigint }> {
  const out: Array<{ account: string, amount: bigint }> = []
  for (let i = 0; i < n; i++) {
    const address = getAddress(hexlify(randomBytes(20)))
    // amounts over the whole range: zero, small, 18-decimal, the uint256 maximum
    const amount = i % 7 === 0 ? 0n : i % 11 === 0 ? (1n << 256n) - 1n : BigInt(seed * 1_000_003 + i * 7919) * 10n ** BigInt(i % 19)
    // mixed address spellings, as tables and gossip carry them
    out.push({ account: i % 2 === 0 ? address : address.toLowerCase(), amount })
  }
  return out
}

describe('standardRewardTree', () => {
  for (const n of [1, 2, 3, 4, 5, 7, 8, 33, 64, 129]) {
    it(`has OpenZeppelin's root and proofs for ${n} leaves`, () => {
      const values = table(n, n)
      const oz = StandardMerkleTree.of(values.map(v => [v.account, v.amount.toString()]), ['address', 'uint256'])
      const ours = standardRewardTree(values)
      expect(ours.root).toBe(oz.root)
      expect(ours.proofs).toHaveLength(n)
      values.forEach((v, i) => {
        expect(ours.proofs[i]).toEqual(oz.getProof(i))
        expect(StandardMerkleTree.verify(oz.root, ['address', 'uint256'], [v.account, v.amount.toString()], ours.proofs[i]!)).toBe(true)
      })
    })
  }

  it('gives buildRewardTree the claims OpenZeppelin gives, repeats summed', () => {
    const values = table(40, 3)
    const withRepeat = [...values, { account: values[5]!.account, amount: 9n }]
    const tree = buildRewardTree(withRepeat)
    const summed = values.map((v, i) => i === 5 ? { ...v, amount: v.amount + 9n } : v)
    const oz = StandardMerkleTree.of(summed.map(v => [v.account, v.amount.toString()]), ['address', 'uint256'])
    expect(tree.root).toBe(oz.root)
    expect(tree.total).toBe(summed.reduce((s, v) => s + v.amount, 0n))
    expect(tree.claims.map(c => [c.account, c.amount, c.proof])).toEqual(summed.map((v, i) => [v.account, v.amount, oz.getProof(i)]))
  })

  it('changes the root when one wei changes', () => {
    const values = table(16, 5)
    const bumped = values.map((v, i) => i === 9 ? { ...v, amount: v.amount + 1n } : v)
    expect(standardRewardTree(bumped).root).not.toBe(standardRewardTree(values).root)
  })

  it('refuses what is not an (address, uint256) leaf', () => {
    expect(() => rewardLeafHash('0x1234', 1n)).toThrow(/not an address/)
    expect(() => rewardLeafHash(Wallet.createRandom().address, -1n)).toThrow(/not a uint256/)
    expect(() => rewardLeafHash(Wallet.createRandom().address, 1n << 256n)).toThrow(/not a uint256/)
    expect(() => standardRewardTree([])).toThrow(/at least one leaf/)
  })
})
