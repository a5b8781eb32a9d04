import { describe, it, expect } from 'vitest'
import { Wallet } from 'ethers'
import { GossipValidationError } from '../../src/p2p/index.js'
import { signRewardRoot, buildRewardTree, type Deployment } from '../../src/chain/index.js'
import { validateRewardMessage, encodeRewardMessage, checkLeaves, splitRewardMessage, signatureOnly, RewardPartsAssembler, MAX_LEAVES, type RewardRootMessage } from '../../src/rewards/index.js'

const deployment = {
  chainId: 31337,
  contracts: { Emission: '0x00000000000000000000000000000000000000e1', Slashing: '0x00000000000000000000000000000000000000e2', Payments: '0x00000000000000000000000000000000000000e3' }
} as unknown as Deployment

const validator = Wallet.createRandom()
const A = '0x00000000000000000000000000000000000000aa'
const B = '0x00000000000000000000000000000000000000bb'

async function message (over: Partial<RewardRootMessage> = {}, signer = validator): Promise<RewardRootMessage> {
  const tree = buildRewardTree([{ account: A, amount: 70n }, { account: B, amount: 30n }])
  const m: RewardRootMessage = {
    v: 1, type: 'reward-root', chainId: 31337, emission: deployment.contracts.Emission,
    epoch: '4', root: tree.root, total: '100', signature: '0x', leaves: tree.claims.map(c => [c.account, c.amount.toString()]), ...over
  }
  if (over.signature === undefined) m.signature = await signRewardRoot(signer, deployment, { epoch: BigInt(m.epoch), root: m.root, total: BigInt(m.total) })
  return m
}

function code (fn: () => unknown): string {
  try { fn(); return 'accepted' } catch (e) { return e instanceof GossipValidationError ? `${e.action}:${e.code}` : `threw:${(e as Error).message}` }
}

describe('heurist/1/rewards messages', () => {
  it('accepts a root signed by its publisher whose leaves sum to the total, and the leaves rebuild the root', async () => {
    const m = await message()
    const s = validateRewardMessage(deployment, encodeRewardMessage(m), validator.address)
    expect(s.signer).toBe(validator.address)
    expect(checkLeaves(m)?.root).toBe(m.root)
  })

  it('rejects a signature by another key than the publisher, and an unreadable one', async () => {
    const m = await message({}, Wallet.createRandom())
    expect(code(() => validateRewardMessage(deployment, encodeRewardMessage(m), validator.address))).toBe('reject:REWARDS_BAD_SIGNATURE')
    const bad = await message({ signature: '0x' + '00'.repeat(65) })
    expect(code(() => validateRewardMessage(deployment, encodeRewardMessage(bad), validator.address))).toBe('reject:REWARDS_BAD_SIGNATURE')
  })

  it('rejects leaves that do not sum to the signed total', async () => {
    const m = await message({ total: '101' })
    expect(code(() => validateRewardMessage(deployment, encodeRewardMessage(m), validator.address))).toBe('reject:REWARDS_BAD_TOTAL')
  })

  it('ignores a root for another deployment (not the publisher\'s fault)', async () => {
    const m = await message({ chainId: 1 })
    expect(code(() => validateRewardMessage(deployment, encodeRewardMessage(m), validator.address))).toBe('ignore:REWARDS_OTHER_CHAIN')
  })

  it('rejects malformed bytes, unknown fields, too many leaves and oversized messages', async () => {
    expect(code(() => validateRewardMessage(deployment, new TextEncoder().encode('{nope'), validator.address))).toBe('reject:REWARDS_MALFORMED')
    const extra = { ...await message(), extra: 1 }
    expect(code(() => validateRewardMessage(deployment, new TextEncoder().encode(JSON.stringify(extra)), validator.address))).toBe('reject:REWARDS_MALFORMED')
    const many = await message({ leaves: Array.from({ length: MAX_LEAVES + 1 }, () => [A, '0'] as [string, string]) })
    expect(code(() => validateRewardMessage(deployment, encodeRewardMessage(many), validator.address))).toBe('reject:REWARDS_MALFORMED')
    expect(code(() => validateRewardMessage(deployment, new Uint8Array(1024 * 1024 + 1), validator.address))).toBe('reject:REWARDS_TOO_LARGE')
  })

  it('a message whose leaves build another root fails the rebuild check', async () => {
    const m = await message()
    const other = { ...m, leaves: [[A, '30'], [B, '70']] as Array<[string, string]> }
    expect(checkLeaves(other)).toBeNull()
  })

  it('a root with more leaves than one message holds travels in parts, each checked, and is whole again once all arrived', async () => {
    const m = await message()
    const parts = splitRewardMessage(m, 1)
    expect(parts.map(p => [p.part, p.parts, p.leaves.length])).toEqual([[0, 2, 1], [1, 2, 1]])
    const assembler = new RewardPartsAssembler()
    const signed = parts.map(p => validateRewardMessage(deployment, encodeRewardMessage(p), validator.address))
    expect(assembler.add(signed[1]!)).toBeNull()
    const whole = assembler.add(signed[0]!)!
    expect(whole.message.leaves).toEqual(m.leaves)
    expect(whole.message.part).toBeUndefined()
    expect(checkLeaves(whole.message)?.root).toBe(m.root)
    // a part out of range is malformed; parts whose leaves do not sum to the total are never whole
    expect(code(() => validateRewardMessage(deployment, encodeRewardMessage({ ...parts[0]!, part: 2 }), validator.address))).toBe('reject:REWARDS_MALFORMED')
    const forged = { ...signed[1]!, message: { ...signed[1]!.message, leaves: [[B, '31']] as Array<[string, string]> } }
    expect(assembler.add(signed[0]!)).toBeNull()
    expect(assembler.add(forged)).toBeNull()
    expect(splitRewardMessage(m).length).toBe(1)
  })

  it('a republished signature travels without leaves: signature still checked, never leaves that could pass for a table', async () => {
    const m = await message()
    const sig = signatureOnly(m)
    expect(sig.leaves).toEqual([])
    expect(encodeRewardMessage(sig).byteLength).toBeLessThan(600)
    expect(validateRewardMessage(deployment, encodeRewardMessage(sig), validator.address).message.sigOnly).toBe(true)
    // another key's signature without leaves is still rejected
    expect(code(() => validateRewardMessage(deployment, encodeRewardMessage(signatureOnly(m)), Wallet.createRandom().address))).toBe('reject:REWARDS_BAD_SIGNATURE')
    // a signature-only message that carries leaves, or parts, is malformed
    expect(code(() => validateRewardMessage(deployment, encodeRewardMessage({ ...sig, leaves: m.leaves }), validator.address))).toBe('reject:REWARDS_MALFORMED')
    expect(code(() => validateRewardMessage(deployment, encodeRewardMessage({ ...sig, part: 0, parts: 2 }), validator.address))).toBe('reject:REWARDS_MALFORMED')
    // and builds no tree (a claimer cannot take a proof from it)
    expect(checkLeaves(sig)).toBeNull()
  })
})
