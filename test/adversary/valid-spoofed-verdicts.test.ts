import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { hexlify, randomBytes } from 'ethers'
import { until } from '../p2p/util.js'
import { allVerdictTopics, encodeMessage, receiptHash, verdictTopic, type HeuristNode, type SignedReceipt } from '../../src/p2p/index.js'
import { DEFAULT_MIN_COLLATERAL } from '../../src/chain/index.js'
import { whitepaperEpochCap, REDEMPTION_WINDOW_SECONDS } from '../../src/economics/index.js'
import { buildVerdictMessage, REASON, type VerdictMessage } from '../../src/validation/index.js'
import { startNet, type Net } from './valid-fixture.js'

// Finding 3 of issue 16 (spoofed verdicts), end to end: an honest miner serves paid jobs
// through the gateway; the honest validator (5 × the minimum stake) checks every one and
// gossips "pass". Then a stranger with no stake gossips "fail" on each receipt with a junk
// signature and with its own valid one, and two colluding validators with the minimum stake
// each gossip signed "fail" verdicts: more heads than the honest validator, less stake. The
// epoch's root must still pay the honest miner the whole LLM pool, to the wei.
const EPOCH = 3600n

describe('adversary: spoofed and outweighed verdicts do not move rewards', () => {
  let net: Net
  beforeAll(async () => {
    // the devnet's minimum validator stake is DEFAULT_MIN_COLLATERAL: 5 of 7 parts is a quorum alone
    net = await startNet({ epochSeconds: EPOCH, miners: [{ account: 2 }], validators: [{ account: 4, stake: 5n * DEFAULT_MIN_COLLATERAL, sampleRate: 1, epochs: true }] })
  }, 240_000)
  afterAll(async () => { await net?.stop() })

  it('counts the honest receipts and pays the honest miner exactly its allocation; attackers gain nothing', async () => {
    const dep = net.devnet.deployment
    const minStake = BigInt(dep.params.minValidatorStake)
    const colluders = [net.account(5), net.account(6)]
    for (const w of colluders) await (await net.chainOf(w)).registerValidator(minStake)
    const stranger = net.account(8)
    const nodes: HeuristNode[] = [await net.extraNode(5), await net.extraNode(6), await net.extraNode(8)]
    const heard: SignedReceipt[] = []
    nodes[2]!.onReceipt(m => { heard.push(m.signed) })
    const honestV = net.validators[0]!
    expect(await until(() => nodes.every(n => allVerdictTopics().every(t => n.pubsub.getSubscribers(t).some(p => p.equals(honestV.node.peerId)))), 30_000)).toBe(true)

    // paid jobs at the gateway's defaults
    const jobs = 4
    for (let i = 0; i < jobs; i++) {
      const r = await net.post('/v1/completions', { model: 'tiny-llama', prompt: `honest job ${i}:`, max_tokens: 12, seed: i })
      expect(r.status).toBe(200)
      await r.json()
    }
    expect(await until(() => heard.length === jobs, 20_000)).toBe(true)
    await net.idle()
    const stats = honestV.svc.validator.stats
    expect(stats.passed).toBe(jobs)
    expect(stats.failed).toBe(0)

    // the attack, on every receipt
    const domain = net.domain
    const publish = async (n: HeuristNode, m: VerdictMessage): Promise<void> => { await n.publish(verdictTopic(m.signed.receipt.miner), encodeMessage(m)) }
    for (const signed of heard) {
      const rh = receiptHash(signed, domain)
      const junk = await buildVerdictMessage(stranger, domain, signed, rh, false, REASON.outsideSupport)
      await publish(nodes[2]!, { ...junk, signature: hexlify(randomBytes(65)) })
      await publish(nodes[2]!, await buildVerdictMessage(stranger, domain, signed, rh, false, REASON.outsideSupport))
      for (let i = 0; i < 2; i++) await publish(nodes[i]!, await buildVerdictMessage(colluders[i]!, domain, signed, rh, false, REASON.outsideSupport))
    }
    // the staked colluders' verdicts reach the ledger (signature and stake check out); the stranger's never do
    const ledger = honestV.epochs!.ledger
    const hashes = heard.map(s => receiptHash(s, domain).toLowerCase())
    expect(await until(async () => (await Promise.all(hashes.map(async h => (await ledger.verdictsOf(h)).length))).every(n => n === 3), 30_000, 100)).toBe(true)
    for (const h of hashes) {
      const vs = await ledger.verdictsOf(h)
      expect(vs.some(v => v.validator === stranger.address.toLowerCase())).toBe(false)
      expect(vs.filter(v => !v.pass).length).toBe(2) // two heads fail it, one passes it
    }

    const token = net.gatewayChain.contracts.token
    const balance = async (a: string): Promise<bigint> => await net.gatewayChain.read<bigint>(token, 'balanceOf', [a])
    const miner = net.miners[0]!
    const collateral0 = await net.gatewayChain.read<bigint>(net.gatewayChain.contracts.nodes, 'collateralOf', [miner.wallet.address])
    const before = { miner: await balance(miner.wallet.address), stranger: await balance(stranger.address), c0: await balance(colluders[0]!.address), c1: await balance(colluders[1]!.address) }
    await net.redeemAll()
    const [llmRevenue, imageRevenue] = await net.gatewayChain.read<[bigint, bigint]>(net.gatewayChain.contracts.payments, 'epochRevenue', [0n])
    expect(llmRevenue).toBeGreaterThan(0n)
    expect(imageRevenue).toBe(0n)
    const afterRedeem = await balance(miner.wallet.address)

    await net.devnet.timeTravel(EPOCH + REDEMPTION_WINDOW_SECONDS)
    const emission = net.gatewayChain.contracts.emission
    expect(await until(async () => !/^0x0+$/.test(await net.gatewayChain.read<string>(emission, 'roots', [0n])), 60_000, 200)).toBe(true)
    const rec = honestV.epochs!.closed().find(r => r.epoch === 0n)!
    // only LLM revenue: the whole cap is the LLM pool, and the honest miner is its only member
    const expected = whitepaperEpochCap(llmRevenue, EPOCH).emission
    const claim = rec.tree.claims.find(c => c.account.toLowerCase() === miner.wallet.address.toLowerCase())
    expect(claim?.amount).toBe(expected)
    expect(rec.tree.claims.length).toBe(1)
    await miner.chain.claim(0n, claim!.account, claim!.amount, claim!.proof)
    expect(await balance(miner.wallet.address) - afterRedeem).toBe(expected)
    // attackers: not a wei of HEU; the honest miner's collateral untouched
    expect(await balance(stranger.address)).toBe(before.stranger)
    expect(await balance(colluders[0]!.address)).toBe(before.c0)
    expect(await balance(colluders[1]!.address)).toBe(before.c1)
    expect(await net.gatewayChain.read<bigint>(net.gatewayChain.contracts.nodes, 'collateralOf', [miner.wallet.address])).toBe(collateral0)
  }, 240_000)
})
