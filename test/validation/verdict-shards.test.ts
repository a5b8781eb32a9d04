import { describe, it, expect, afterEach } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet, hexlify, randomBytes } from 'ethers'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { silentLogger } from '../../src/core/logger.js'
import { Store } from '../../src/core/store.js'
import {
  VERDICT_SHARDS, allVerdictTopics, encodeMessage, gossipValidatorFn, isVerdictTopic, receiptHash, signReceipt, verdictShard, verdictTopic,
  type HeuristNode, type SignedReceipt
} from '../../src/p2p/index.js'
import { PointsLedger } from '../../src/rewards/index.js'
import { buildVerdictMessage, validateVerdictGossip, type VerdictMessage } from '../../src/validation/index.js'
import { hearOwnVerdicts } from '../../src/cli/own-verdicts.js'
import { testNode, until, stopAll } from '../p2p/util.js'

/**
 * Issue 23: verdicts are sharded by the judged miner. A miner hears its own shard only (a 256th
 * of the verdicts), validators every shard; a verdict published on another shard than its
 * miner's is rejected and costs the peer that sent it.
 */
const domain = { chainId: 31337, verifyingContract: '0x' + '5a'.repeat(20) }

async function receiptOf (miner: Wallet, requester: string): Promise<SignedReceipt> {
  const r = { jobId: hexlify(randomBytes(32)), requester, miner: miner.address, modelId: hexlify(randomBytes(32)), pool: 0, inputHash: hexlify(randomBytes(32)), outputHash: hexlify(randomBytes(32)), paramsHash: hexlify(randomBytes(32)), computeUnits: 5n, startedAt: 1n, endedAt: 2n }
  return await signReceipt(miner, r, domain)
}

/** Two miner keys on different shards (a random pair shares one with chance 1/256). */
function twoShards (): [Wallet, Wallet] {
  const a = Wallet.createRandom() as unknown as Wallet
  for (let i = 0; i < 100; i++) {
    const b = Wallet.createRandom() as unknown as Wallet
    if (verdictShard(b.address) !== verdictShard(a.address)) return [a, b]
  }
  throw new Error('no two shards in 100 keys')
}

describe('verdict shards', () => {
  it('names one shard per miner, the same for any case of its address, and every shard once', () => {
    const all = allVerdictTopics()
    expect(all.length).toBe(VERDICT_SHARDS)
    expect(new Set(all).size).toBe(VERDICT_SHARDS)
    expect(all.every(isVerdictTopic)).toBe(true)
    expect(['heurist/1/verdicts', 'heurist/1/verdicts/256', 'heurist/1/verdicts/01', 'heurist/1/verdicts/-1', 'heurist/1/capacity'].some(isVerdictTopic)).toBe(false)
    // sha256('0x' + 40 zeros) begins 0f ff (python's hashlib): 0x0fff % 256 = 255
    expect(verdictTopic('0x' + '0'.repeat(40))).toBe('heurist/1/verdicts/255')
    const w = Wallet.createRandom()
    expect(verdictTopic(w.address)).toBe(verdictTopic(w.address.toLowerCase()))
    expect(all).toContain(verdictTopic(w.address))
    expect(() => verdictTopic('0x1234')).toThrow(/not an EVM address/)
    // spread: 4,096 random miners leave no shard with more than 3 times its share
    const counts = new Array<number>(VERDICT_SHARDS).fill(0)
    for (let i = 0; i < 4096; i++) counts[verdictShard(hexlify(randomBytes(20)))]!++
    expect(Math.max(...counts)).toBeLessThanOrEqual(48)
  })

  describe('on a mesh', () => {
    let nodes: HeuristNode[] = []
    let stops: Array<() => void | Promise<void>> = []
    afterEach(async () => {
      for (const s of stops) await s()
      await stopAll(nodes)
      nodes = []; stops = []
    })

    it('a miner hears and files verdicts on itself, none on others; validators hear every shard; a verdict on the wrong shard is rejected and its sender penalized', async () => {
      const validatorW = Wallet.createRandom() as unknown as Wallet
      const [minerA, minerB] = twoShards()
      const v = await testNode({ identity: identityFromPrivateKey(validatorW.privateKey) })
      nodes.push(v)
      const boot = [v.multiaddrs()[0]!]
      const v2 = await testNode({ bootstrap: boot })
      const a = await testNode({ identity: identityFromPrivateKey(minerA.privateKey), bootstrap: boot })
      const b = await testNode({ identity: identityFromPrivateKey(minerB.privateKey), bootstrap: boot })
      nodes.push(v2, a, b)

      // validators: every shard, the validation service's gossip rule
      const heardBy = new Map<HeuristNode, VerdictMessage[]>([[v, []], [v2, []]])
      for (const n of [v, v2]) {
        for (const t of allVerdictTopics()) {
          n.pubsub.topicValidators.set(t, gossipValidatorFn(t, validateVerdictGossip, (m: VerdictMessage) => { heardBy.get(n)!.push(m) }, silentLogger(), n.stats))
          n.pubsub.subscribe(t)
        }
      }
      // miners: their own shard, through the real listener and a real ledger
      const ledgers: PointsLedger[] = []
      for (const [n, w] of [[a, minerA], [b, minerB]] as const) {
        const dir = await mkdtemp(join(tmpdir(), 'heurist-shards-'))
        const store = await Store.open(dir)
        const ledger = new PointsLedger(store, silentLogger())
        ledgers.push(ledger)
        const off = hearOwnVerdicts({ node: n, ledger, operator: w.address, domain, stakeOf: async s => s.toLowerCase() === validatorW.address.toLowerCase() ? 1n : 0n, logger: silentLogger() })
        stops.push(async () => { off(); await ledger.flush(); await store.close(); await rm(dir, { recursive: true, force: true }) })
      }
      const [ledgerA, ledgerB] = ledgers as [PointsLedger, PointsLedger]
      const seenByMiner = new Map<HeuristNode, string[]>([[a, []], [b, []]])
      for (const n of [a, b]) n.pubsub.addEventListener('message', evt => { if (isVerdictTopic(evt.detail.topic)) seenByMiner.get(n)!.push(evt.detail.topic) })

      const topicA = verdictTopic(minerA.address)
      const topicB = verdictTopic(minerB.address)
      expect(a.pubsub.getTopics().filter(isVerdictTopic)).toEqual([topicA])
      expect(b.pubsub.getTopics().filter(isVerdictTopic)).toEqual([topicB])
      // the publisher knows who takes each shard; v2 (a validator) takes every shard
      expect(await until(() => v.pubsub.getSubscribers(topicA).some(p => p.equals(a.peerId)) && v.pubsub.getSubscribers(topicB).some(p => p.equals(b.peerId)) &&
        allVerdictTopics().every(t => v.pubsub.getSubscribers(t).some(p => p.equals(v2.peerId))), 20_000, 50)).toBe(true)
      expect(v.pubsub.getSubscribers(topicA).some(p => p.equals(b.peerId))).toBe(false)

      const onA = await receiptOf(minerA, v2.address)
      const onB = await receiptOf(minerB, v2.address)
      const verdictA = await buildVerdictMessage(validatorW, domain, onA, receiptHash(onA, domain), false, 1)
      const verdictB = await buildVerdictMessage(validatorW, domain, onB, receiptHash(onB, domain), true, 0)
      await v.publish(verdictTopic(onA.receipt.miner), encodeMessage(verdictA))
      await v.publish(verdictTopic(onB.receipt.miner), encodeMessage(verdictB))

      expect(await until(async () => (await ledgerA.verdictsOf(verdictA.verdict.receiptHash)).length === 1 && (await ledgerB.verdictsOf(verdictB.verdict.receiptHash)).length === 1 && heardBy.get(v2)!.length === 2, 20_000, 50)).toBe(true)
      expect(await ledgerA.verdictsOf(verdictA.verdict.receiptHash)).toEqual([{ validator: validatorW.address.toLowerCase(), pass: false }])
      expect(heardBy.get(v2)!.map(m => m.verdict.receiptHash).sort()).toEqual([verdictA.verdict.receiptHash, verdictB.verdict.receiptHash].sort())
      // each miner took exactly its own verdict off the wire, nothing of the other shard
      expect(seenByMiner.get(a)).toEqual([topicA])
      expect(seenByMiner.get(b)).toEqual([topicB])
      expect(a.stats.get(topicB, 'accept') + b.stats.get(topicA, 'accept')).toBe(0)

      // the validator key publishes a verdict on A's receipt on B's shard: B and v2 reject it
      const wrong = await buildVerdictMessage(validatorW, domain, onA, receiptHash(onA, domain), false, 2)
      const before = b.pubsub.getScore(v.peerId.toString())
      await v.publish(topicB, encodeMessage(wrong))
      expect(await until(() => b.stats.get(topicB, 'reject', 'VALIDATION_WRONG_SHARD') === 1 && v2.stats.get(topicB, 'reject', 'VALIDATION_WRONG_SHARD') === 1, 20_000, 50)).toBe(true)
      // gossipsub scores the rejection after our validator counted it: wait for the score, not the count
      expect(await until(() => b.pubsub.getScore(v.peerId.toString()) < before, 10_000, 50)).toBe(true)
      expect(heardBy.get(v2)!.length).toBe(2)
      expect(seenByMiner.get(b)).toEqual([topicB])
    }, 60_000)
  })
})
