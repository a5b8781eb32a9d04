import { describe, it, expect, afterEach } from 'vitest'
import { hexlify, randomBytes } from 'ethers'
import { signReceipt, unpaidReceiptDomain, TOPICS, type HeuristNode, type ReceiptMessage } from '../../src/p2p/index.js'
import { testNode, until, stopAll } from './util.js'

/**
 * A receipt gossiped while its requester knows no peer on the receipts topic went nowhere:
 * gossipsub publishes into the void and offers a message to later peers only for a few
 * heartbeats. The miner then lost the points of a job it was paid for (found by
 * bench:epoch-close). Now the node holds such receipts and publishes them when a peer
 * subscribes.
 */
describe('receipts published before any subscriber', () => {
  let nodes: HeuristNode[] = []
  afterEach(async () => { await stopAll(nodes); nodes = [] })

  const receiptFrom = async (gw: HeuristNode, miner: HeuristNode, i: number): Promise<ReceiptMessage> => {
    const receipt = { jobId: hexlify(randomBytes(32)), requester: gw.address, miner: miner.address, modelId: hexlify(randomBytes(32)), pool: 0, inputHash: hexlify(randomBytes(32)), outputHash: hexlify(randomBytes(32)), paramsHash: hexlify(randomBytes(32)), computeUnits: BigInt(i + 1), startedAt: 1n, endedAt: 2n }
    return { v: 1, type: 'receipt', signed: await signReceipt(miner.identity.wallet, receipt, unpaidReceiptDomain), chainId: 0, verifyingContract: unpaidReceiptDomain.verifyingContract }
  }

  it('are held, then reach a validator that joins long after gossipsub would have forgotten them', async () => {
    const gw = await testNode(); nodes.push(gw)
    const miner = await testNode(); nodes.push(miner)
    for (let i = 0; i < 3; i++) await gw.publishReceipt(await receiptFrom(gw, miner, i))
    expect(gw.heldReceiptCount).toBe(3)
    expect(gw.stats.get(TOPICS.receipts, 'held')).toBe(3)

    // let gossipsub's history window (a few heartbeats) pass: a late peer could not ask for them
    let beats = 0
    const beat = (): void => { beats++ }
    gw.pubsub.addEventListener('gossipsub:heartbeat', beat)
    expect(await until(() => beats >= 8, 20_000, 50)).toBe(true)
    gw.pubsub.removeEventListener('gossipsub:heartbeat', beat)

    const validator = await testNode({ bootstrap: [gw.multiaddrs()[0]!] }); nodes.push(validator)
    const heard: string[] = []
    validator.onReceipt(m => { heard.push(m.signed.receipt.jobId) })
    expect(await until(() => heard.length === 3, 20_000, 50)).toBe(true)
    expect(gw.heldReceiptCount).toBe(0)
    expect(validator.stats.get(TOPICS.receipts, 'accept')).toBe(3)
  })

  it('with a subscriber known, a receipt goes out at once and nothing is held', async () => {
    const gw = await testNode(); nodes.push(gw)
    const miner = await testNode(); nodes.push(miner)
    const validator = await testNode({ bootstrap: [gw.multiaddrs()[0]!] }); nodes.push(validator)
    expect(await until(() => gw.pubsub.getSubscribers(TOPICS.receipts).some(p => p.equals(validator.peerId)), 20_000, 50)).toBe(true)
    await gw.publishReceipt(await receiptFrom(gw, miner, 0))
    expect(gw.heldReceiptCount).toBe(0)
    expect(await until(() => validator.stats.get(TOPICS.receipts, 'accept') === 1, 20_000, 50)).toBe(true)
  })
})
