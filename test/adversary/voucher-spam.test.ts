import { describe, it, expect, afterEach } from 'vitest'
import { Wallet, ZeroAddress, keccak256, toUtf8Bytes } from 'ethers'
import type { HeuristNode } from '../../src/p2p/index.js'
import { signVoucher, type ChainClient } from '../../src/chain/index.js'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { heuristDomain, type Voucher } from '../../src/core/typed-data.js'
import { VoucherInbox, sendVoucher, type SignedVoucher } from '../../src/gateway/index.js'
import { tempDir } from '../helpers.js'
import { testNode, until } from '../p2p/util.js'
import { startChainWorld, HEU } from './chain-fixture.js'

/**
 * Attack 8 (issue 15), the voucher half: a stranger on the mesh pushes vouchers at a miner
 * over /heurist/voucher/1.0.0 from payers that have no deposit (any key can sign one), so the
 * miner stores them all and retries every one on each redemption pass. Also: many channels
 * from one peer, a voucher over the payer's deposit, and a payer that withdraws after its
 * voucher was stored. Through a real miner node and a real attacker node over TCP.
 */
const WITHDRAW_DELAY = 600n

describe('attack 8: voucher spam', () => {
  const stops: Array<() => Promise<unknown> | unknown> = []
  afterEach(async () => {
    for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => {})
    stops.length = 0
  })

  it('vouchers from payers without a deposit are refused before they are stored; channels are bounded per peer; a voucher its deposit no longer covers is dropped', async () => {
    const world = await startChainWorld({ withdrawDelay: WITHDRAW_DELAY })
    stops.push(async () => { await world.stop() })
    const d = world.devnet.deployment
    const t = await tempDir('heurist-adv-vspam-')
    stops.push(t.cleanup)
    const store = await Store.open(t.dir)
    stops.push(async () => { await store.close() })

    const minerWallet = await world.wallet(BigInt(d.params.minCollateral))
    const mc: ChainClient = await world.client(minerWallet)
    await mc.register(BigInt(d.params.minCollateral))
    const miner: HeuristNode = await testNode({ identity: identityFromPrivateKey(minerWallet.privateKey) })
    stops.push(async () => { await miner.stop() })
    const maxPerPeer = 4
    // threshold above anything sent here: vouchers are kept, not redeemed on arrival
    const inbox = new VoucherInbox(miner, store, mc, silentLogger(), { domain: heuristDomain(d.chainId, d.contracts.Payments), thresholdWei: 1000n * HEU, maxPerPeer })
    await inbox.start()
    const attacker = await testNode({ bootstrap: [miner.multiaddrs()[0]!] })
    stops.push(async () => { await attacker.stop() })
    expect(await until(() => attacker.libp2p.getConnections(miner.peerId).length > 0, 10_000)).toBe(true)

    const voucher = (payer: string, pod: string, amount: bigint): Voucher => ({
      payer, miner: minerWallet.address, podId: keccak256(toUtf8Bytes(pod)), podDeployer: ZeroAddress, podBps: 0, pool: 0, frontend: ZeroAddress, cumulativeAmount: amount
    })
    // one voucher at a time, each until the miner has decided on it (the miner takes at most
    // 8 voucher streams at once and resets the rest: that bound is not what is tested here)
    const push = async (signer: Wallet, v: Voucher): Promise<void> => {
      const signed: SignedVoucher = { ...v, signature: await signVoucher(signer, d, v) }
      const seen = inbox.stats.received + inbox.stats.refused
      await sendVoucher(attacker, miner.peerId.toString(), signed)
      expect(await until(() => inbox.stats.received + inbox.stats.refused === seen + 1, 10_000, 5)).toBe(true)
    }
    const minerBalances = async (): Promise<{ heu: bigint, eth: bigint, nonce: number }> => ({
      heu: await world.heu(minerWallet.address),
      eth: await world.devnet.provider.getBalance(minerWallet.address),
      nonce: await world.devnet.provider.getTransactionCount(minerWallet.address)
    })
    const start = await minerBalances()

    // 300 vouchers from 300 fresh payers with no deposit: all refused, nothing stored
    const SPAM = 300
    for (let i = 0; i < SPAM; i++) {
      const p = Wallet.createRandom()
      await push(p as unknown as Wallet, voucher(p.address, 'spam', 10n * HEU))
    }
    expect(inbox.stats.refused).toBe(SPAM)
    expect(inbox.stats.received).toBe(0)
    expect(await inbox.owed()).toBe(0n)
    // a redemption pass has nothing to retry: no transaction, no gas
    expect(await inbox.redeemAll()).toBe(0n)
    expect(await minerBalances()).toEqual(start)

    // a funded payer: a voucher above its deposit is refused; within it, kept
    const payer = await world.wallet(10n * HEU)
    const pc = await world.client(payer)
    await pc.deposit(5n * HEU)
    await push(payer, voucher(payer.address, 'pod-0', 6n * HEU))
    expect(inbox.stats.refused).toBe(SPAM + 1)
    // one peer opens at most maxPerPeer channels; the rest are refused
    for (let i = 0; i < maxPerPeer + 3; i++) await push(payer, voucher(payer.address, `pod-${i}`, HEU / 10n))
    expect(inbox.stats.received).toBe(maxPerPeer)
    expect(inbox.stats.refused).toBe(SPAM + 1 + 3)
    expect(await inbox.owed()).toBe(BigInt(maxPerPeer) * HEU / 10n)

    // the payer takes its deposit back before the miner redeems: the vouchers can never pay,
    // so the next pass drops them (one failed attempt at most each), and later passes send nothing
    await pc.send('withdraw request', pc.contracts.payments, 'requestWithdrawal', [5n * HEU])
    await world.devnet.timeTravel(WITHDRAW_DELAY + 1n)
    await pc.send('withdraw', pc.contracts.payments, 'withdrawDeposit', [])
    expect(await pc.depositOf(payer.address)).toBe(0n)
    expect(await inbox.redeemAll()).toBe(0n)
    expect(inbox.stats.dropped).toBe(maxPerPeer)
    expect(await inbox.owed()).toBe(0n)
    const settled = await minerBalances()
    expect(await inbox.redeemAll()).toBe(0n)
    expect(await minerBalances()).toEqual(settled)
    // and the miner gained or lost no HEU through any of it
    expect(settled.heu).toBe(start.heu)
  }, 120_000)
})
