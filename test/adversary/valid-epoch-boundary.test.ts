import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { until } from '../p2p/util.js'
import { whitepaperEpochCap, REDEMPTION_WINDOW_SECONDS } from '../../src/economics/index.js'
import { startNet, type Net } from './valid-fixture.js'

// Finding 5 of issue 16 (no quorum at epoch boundaries), end to end: three validators of equal
// stake that read the chain at different moments (every 200 ms, 900 ms and 2.5 s) while paid
// traffic keeps flowing as the chain's epoch ends. Before, each filed a receipt under the epoch
// it had seen at its last poll, so the receipts around the boundary landed in different epochs
// at different validators, their roots differed and no quorum formed. Now a receipt's epoch is
// its signed end time on the chain's schedule, and each validator waits a grace period before
// building a root: all three build the same tree and one root is posted, paying the miner the
// whole LLM pool to the wei.
const EPOCH = 3600n

describe('adversary: traffic across an epoch boundary still gives one root', () => {
  let net: Net
  beforeAll(async () => {
    net = await startNet({
      epochSeconds: EPOCH,
      miners: [{ account: 2 }],
      validators: [200, 900, 2500].map((pollMs, i) => ({ account: 4 + i, sampleRate: 0.0001, epochs: true, pollMs, graceMs: 8000 }))
    })
  }, 240_000)
  afterAll(async () => { await net?.stop() })

  it('three validators with traffic across the boundary post one root', async () => {
    let jobs = 0
    let stop = false
    const traffic = (async () => {
      for (let i = 0; !stop && i < 200; i++) {
        const r = await net.post('/v1/completions', { model: 'tiny-llama', prompt: `boundary ${i}:`, max_tokens: 4, seed: i })
        expect(r.status).toBe(200)
        await r.json()
        jobs++
      }
    })()
    expect(await until(() => jobs >= 6, 30_000)).toBe(true)
    await net.redeemAll()
    const [llmRevenue] = await net.gatewayChain.read<[bigint, bigint]>(net.gatewayChain.contracts.payments, 'epochRevenue', [0n])
    // the epoch ends while jobs are running; they go on for a while after
    await net.devnet.timeTravel(EPOCH + REDEMPTION_WINDOW_SECONDS)
    const at = jobs
    expect(await until(() => jobs >= at + 6, 30_000)).toBe(true)
    stop = true
    await traffic
    const services = net.validators.map(v => v.epochs!)
    // every validator filed every receipt under epoch 0 (their signed end times), none under 1
    expect(await until(async () => (await Promise.all(services.map(async s => (await s.ledger.entries(0n)).length))).every(n => n === jobs), 20_000)).toBe(true)
    for (const s of services) expect((await s.ledger.entries(1n)).length).toBe(0)

    const emission = net.gatewayChain.contracts.emission
    expect(await until(async () => !/^0x0+$/.test(await net.gatewayChain.read<string>(emission, 'roots', [0n])), 60_000, 200)).toBe(true)
    // a quorum (2 of 3 equal stakes) signed the same root; a validator slower to close finds it posted
    const closed = services.map(s => s.closed().find(r => r.epoch === 0n)).filter(r => r !== undefined)
    expect(closed.length).toBeGreaterThanOrEqual(2)
    const roots = new Set(closed.map(r => r.tree.root))
    expect(roots.size).toBe(1)
    expect(await net.gatewayChain.read<string>(emission, 'roots', [0n])).toBe([...roots][0])
    const tree = closed[0]!.tree
    const miner = net.miners[0]!
    const expected = whitepaperEpochCap(llmRevenue, EPOCH).emission
    expect(tree.claims.map(c => [c.account, c.amount])).toEqual([[miner.wallet.address, expected]])
    const before = await net.gatewayChain.read<bigint>(net.gatewayChain.contracts.token, 'balanceOf', [miner.wallet.address])
    const claim = tree.claims[0]!
    await miner.chain.claim(0n, claim.account, claim.amount, claim.proof)
    expect(await net.gatewayChain.read<bigint>(net.gatewayChain.contracts.token, 'balanceOf', [miner.wallet.address]) - before).toBe(expected)
  }, 240_000)
})
