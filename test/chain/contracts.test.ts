import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { Wallet, TypedDataEncoder, ZeroAddress, keccak256, toUtf8Bytes, type Signer } from 'ethers'
import {
  startDevnet, connectChain, signVoucher, voucherDigest, signReceipt, receiptDigest, signVerdict, signRewardRoot,
  buildRewardTree, sortBySigner, type Devnet, type ChainClient
} from '../../src/chain/index.js'
import { heuristDomain, VoucherTypes, type Voucher, type Receipt, type Verdict } from '../../src/core/typed-data.js'
import { WAD, TOTAL_SUPPLY, whitepaperEpochCap } from '../../src/economics/index.js'

const HEU = WAD
const EPOCH = 3600n
const LOCKUP = 365n * 86_400n
const COOLDOWN = 7n * 86_400n

let devnet: Devnet
const clients: ChainClient[] = []

async function client (signer?: Signer): Promise<ChainClient> {
  const c = await connectChain({ deployment: devnet.deployment, signer })
  clients.push(c)
  return c
}

function id (s: string): string { return keccak256(toUtf8Bytes(s)) }

beforeAll(async () => {
  devnet = await startDevnet({ port: 0, deploy: { epochSeconds: EPOCH, lockupSeconds: LOCKUP, exitCooldown: COOLDOWN } })
})

afterAll(async () => {
  for (const c of clients) c.close()
  await devnet?.stop()
})

describe('HeuristToken', () => {
  it('has 1,000,000,000 HEU with 18 decimals and half of it held by Emission', async () => {
    const c = await client()
    expect(await c.read(c.contracts.token, 'totalSupply')).toBe(TOTAL_SUPPLY)
    expect(await c.read(c.contracts.token, 'decimals')).toBe(18n)
    expect(await c.read(c.contracts.token, 'balanceOf', [devnet.deployment.contracts.Emission])).toBe(TOTAL_SUPPLY / 2n)
  })
})

describe('StakedHeurist', () => {
  it('stakes, rises in value as rewards arrive, vests on unstake, and pays only after the lockup', async () => {
    const user = devnet.accounts[1]!
    const c = await client(user)
    const before = await c.balances(user.address)
    await c.stake(100n * HEU)
    let b = await c.balances(user.address)
    expect(b.stheu).toBeGreaterThan(0n)
    expect(b.heu).toBe(before.heu - 100n * HEU)
    // rewards arrive: someone sends HEU to the vault, each share is worth more
    const rewarder = await client(devnet.accounts[0]!)
    await rewarder.send('reward', rewarder.contracts.token, 'transfer', [devnet.deployment.contracts.StakedHeurist, 10n * HEU])
    b = await c.balances(user.address)
    expect(b.stheuValue).toBeGreaterThan(109n * HEU)
    expect(b.stheuValue).toBeLessThanOrEqual(110n * HEU)

    const half = b.stheu / 2n
    await c.unstake(half)
    b = await c.balances(user.address)
    expect(b.vesting.total).toBeGreaterThan(54n * HEU)
    expect(b.vesting.matured).toBe(0n)
    // local check: not matured, nothing sent
    await expect(c.withdraw()).rejects.toMatchObject({ code: 'CHAIN_NOT_MATURED' })
    // the contract itself refuses too
    await expect(c.send('withdraw', c.contracts.stheu, 'withdraw()', [])).rejects.toThrow(/NothingMatured/)
    // the ERC4626 exit that would skip the lockup is closed
    await expect(c.send('redeem', c.contracts.stheu, 'redeem', [1n, user.address, user.address])).rejects.toThrow(/LockupRequired/)

    await devnet.timeTravel(LOCKUP - 100n)
    await expect(c.withdraw()).rejects.toMatchObject({ code: 'CHAIN_NOT_MATURED' })
    await devnet.timeTravel(200n)
    const ready = await c.balances(user.address)
    expect(ready.vesting.matured).toBe(ready.vesting.total)
    await c.withdraw()
    b = await c.balances(user.address)
    expect(b.heu - ready.heu).toBe(ready.vesting.total)
    expect(b.vesting.total).toBe(0n)
  })

  it('refuses to stake more than the balance, without sending anything', async () => {
    const user = devnet.accounts[2]!
    const c = await client(user)
    const nonce = await devnet.provider.getTransactionCount(user.address)
    await expect(c.stake(10_000_000n * HEU)).rejects.toMatchObject({ code: 'CHAIN_INSUFFICIENT_BALANCE' })
    expect(await devnet.provider.getTransactionCount(user.address)).toBe(nonce)
  })

  it('reverts a deposit without allowance with the decoded ERC20 error', async () => {
    const c = await client(devnet.accounts[2]!)
    await expect(c.send('stake', c.contracts.stheu, 'deposit', [5n * HEU, devnet.accounts[2]!.address]))
      .rejects.toMatchObject({ code: 'CHAIN_INSUFFICIENT_ALLOWANCE', message: expect.stringMatching(/^stake reverted: ERC20InsufficientAllowance/) })
  })
})

describe('NodeRegistry', () => {
  it('registers an operator owned by another wallet with the operator\'s consent, and returns the collateral to the owner after the cooldown', async () => {
    const owner = devnet.accounts[3]!
    const operatorWallet = Wallet.createRandom().connect(devnet.provider)
    const operator = operatorWallet.address
    const c = await client(owner)
    const op = await client(operatorWallet)
    const min = await c.read<bigint>(c.contracts.nodes, 'minCollateral')
    expect(min).toBe(400n * HEU)
    const deadline = BigInt((await devnet.provider.getBlock('latest'))!.timestamp) + 3600n
    const consent = await op.signRegistrationConsent(owner.address, deadline)
    await expect(c.register(min - 1n, undefined, consent)).rejects.toMatchObject({ code: 'CHAIN_INSUFFICIENT_STAKE' })
    await expect(c.send('register', c.contracts.nodes, 'registerWithConsent', [operator, min - 1n, deadline, consent.signature])).rejects.toThrow(/CollateralBelowMinimum/)
    // a consent for another owner does not serve this one
    const other = await client(devnet.accounts[9]!)
    await expect(other.send('register', other.contracts.nodes, 'registerWithConsent', [operator, min, deadline, consent.signature])).rejects.toMatchObject({ code: 'CHAIN_BAD_CONSENT' })
    await c.register(min, undefined, consent)
    expect(await c.read(c.contracts.nodes, 'payoutOf', [operator])).toBe(owner.address)
    expect(await c.read(c.contracts.nodes, 'isActive', [operator])).toBe(true)
    await c.send('exit', c.contracts.nodes, 'requestExit', [operator])
    await expect(c.send('complete exit', c.contracts.nodes, 'completeExit', [operator])).rejects.toThrow(/CooldownNotOver/)
    const heu = (await c.balances(owner.address)).heu
    await devnet.timeTravel(COOLDOWN + 1n)
    await c.send('complete exit', c.contracts.nodes, 'completeExit', [operator])
    expect((await c.balances(owner.address)).heu).toBe(heu + min)
    expect(await c.read<bigint>(c.contracts.nodes, 'exitedAt', [operator])).toBe(BigInt((await devnet.provider.getBlock('latest'))!.timestamp))
    // the consent was used: it cannot register the operator a second time
    await expect(c.register(min, undefined, consent)).rejects.toMatchObject({ code: 'CHAIN_BAD_CONSENT' })
    await expect(c.send('register', c.contracts.nodes, 'registerWithConsent', [operator, min, deadline, consent.signature])).rejects.toMatchObject({ code: 'CHAIN_BAD_CONSENT' })
  })
})

describe('PodRegistry and Voting', () => {
  it('registers a pod and bounds its revenue share', async () => {
    const c = await client(devnet.accounts[4]!)
    await c.registerPod(id('pod-a'), 0, 8000, 2000)
    const pod = await c.read<[string, bigint, bigint, bigint]>(c.contracts.pods, 'pods', [id('pod-a')])
    expect(pod[0]).toBe(devnet.accounts[4]!.address)
    await expect(c.registerPod(id('pod-b'), 1, 8000, 9000)).rejects.toThrow(/RevenueShareTooHigh/)
    await expect(c.registerPod(id('pod-a'), 0, 8000, 100)).rejects.toThrow(/PodExists/)
  })

  it('escrows stHEU per vote so it is never counted twice, and unvote gives it back', async () => {
    const user = devnet.accounts[5]!
    const c = await client(user)
    await c.stake(50n * HEU)
    const shares = (await c.balances(user.address)).stheu
    const node = devnet.accounts[6]!.address
    await c.voteNode(node, shares)
    expect(await c.read(c.contracts.voting, 'nodeVotes', [node])).toBe(shares)
    // the same stHEU cannot vote a second time
    await expect(c.votePod(id('pod-a'), 1n)).rejects.toMatchObject({ code: 'CHAIN_INSUFFICIENT_BALANCE' })
    await expect(c.send('vote', c.contracts.voting, 'votePod', [id('pod-a'), 1n])).rejects.toThrow(/ERC20Insufficient/)
    await c.unvoteNode(node, shares / 2n)
    await c.votePod(id('pod-a'), shares / 2n)
    expect(await c.read(c.contracts.voting, 'podVotes', [id('pod-a')])).toBe(shares / 2n)
    expect((await c.balances(user.address)).votes).toBe(shares - shares / 2n + shares / 2n)
    await expect(c.unvotePod(id('pod-a'), shares)).rejects.toMatchObject({ code: 'CHAIN_INSUFFICIENT_VOTES' })
    await c.unvotePod(id('pod-a'), shares / 2n)
    await c.unvoteNode(node, shares - shares / 2n)
    const b = await c.balances(user.address)
    expect(b.votes).toBe(0n)
    expect(b.stheu).toBe(shares)
  })
})

describe('Payments', () => {
  it('redeems a cumulative voucher once, splits it, records revenue, and rejects replays on other chains or contracts', async () => {
    const payer = devnet.accounts[7]!
    const miner = Wallet.createRandom().address
    const frontend = Wallet.createRandom().address
    const podDeployer = devnet.accounts[4]!.address
    const p = await client(payer)
    await p.deposit(1000n * HEU)
    const where = devnet.deployment
    const v: Voucher = { payer: payer.address, miner, podId: id('pod-a'), podDeployer, podBps: 2000, pool: 0, frontend, cumulativeAmount: 100n * HEU }
    // the Solidity TYPEHASH spells the shared type exactly: the contract's digest is ethers' digest
    expect(await p.read(p.contracts.payments, 'voucherDigest', [v])).toBe(voucherDigest(where, v))
    const sig = await signVoucher(payer, where, v)
    const redeemer = await client(devnet.accounts[8]!)
    const podBefore = (await p.balances(podDeployer)).heu
    const vaultBefore = (await p.balances(where.contracts.StakedHeurist)).heu
    const epoch = await p.currentEpoch()
    const [tx] = await redeemer.redeemVoucher(v, sig)
    expect(tx!.gasUsed).toBeGreaterThan(0n)
    expect((await p.balances(miner)).heu).toBe(65n * HEU) // 100 − 20 % pod − 10 % frontend − 5 % protocol fee
    expect((await p.balances(frontend)).heu).toBe(10n * HEU)
    expect((await p.balances(podDeployer)).heu - podBefore).toBe(20n * HEU)
    expect((await p.balances(where.contracts.StakedHeurist)).heu - vaultBefore).toBe(5n * HEU) // §3.4.3 buybacks to stHEU
    expect((await p.balances(payer.address)).deposit).toBe(900n * HEU)
    const rev = await p.read<[bigint, bigint]>(p.contracts.payments, 'epochRevenue', [epoch])
    expect(rev[0]).toBeGreaterThanOrEqual(100n * HEU)

    // the same voucher again pays nothing
    expect(await p.redeemable(v)).toBe(0n)
    await redeemer.redeemVoucher(v, sig)
    expect((await p.balances(miner)).heu).toBe(65n * HEU)
    expect((await p.balances(payer.address)).deposit).toBe(900n * HEU)

    // a higher voucher pays the difference only
    const v2 = { ...v, cumulativeAmount: 150n * HEU }
    await redeemer.redeemVoucher(v2, await signVoucher(payer, where, v2))
    expect((await p.balances(miner)).heu).toBe(97_500_000_000_000_000_000n)
    // an older, lower voucher pays nothing
    await redeemer.redeemVoucher(v, sig)
    expect((await p.balances(miner)).heu).toBe(97_500_000_000_000_000_000n)

    // signed for another chain id, or for another contract: the signer does not recover
    const v3 = { ...v, cumulativeAmount: 200n * HEU }
    const otherChain = await payer.signTypedData(heuristDomain(1, where.contracts.Payments), VoucherTypes, v3)
    await expect(redeemer.redeemVoucher(v3, otherChain)).rejects.toThrow(/BadSignature/)
    const otherContract = await payer.signTypedData(heuristDomain(where.chainId, where.contracts.Slashing), VoucherTypes, v3)
    await expect(redeemer.redeemVoucher(v3, otherContract)).rejects.toThrow(/BadSignature/)
    // more than the deposit
    const v4 = { ...v, cumulativeAmount: 5000n * HEU }
    await expect(redeemer.redeemVoucher(v4, await signVoucher(payer, where, v4))).rejects.toMatchObject({ code: 'CHAIN_INSUFFICIENT_DEPOSIT' })
    // an unregistered pod: the node gets the pod's share; no frontend: the node gets that too
    const v5: Voucher = { ...v, podId: id('no-such-pod'), frontend: ZeroAddress, cumulativeAmount: 10n * HEU }
    await redeemer.redeemVoucher(v5, await signVoucher(payer, where, v5))
    expect((await p.balances(miner)).heu).toBe(107n * HEU) // + 10 − 5 % fee
    expect(TypedDataEncoder.hash(heuristDomain(where.chainId, where.contracts.Payments), VoucherTypes, v5)).toBe(voucherDigest(where, v5))

    // the event log by block range: one Redeemed per paying redemption, no duplicates
    const logs = await p.events('payments', 'Redeemed', devnet.deployment.deployBlock, undefined, 7)
    const mine = logs.filter(l => l.args.miner === miner)
    expect(mine.map(l => l.args.amount as bigint)).toEqual([100n * HEU, 50n * HEU, 10n * HEU])
  })
})

describe('Slashing and Emission (validator quorum)', () => {
  const validators: Wallet[] = []
  let miner: Wallet
  let receipt: Receipt
  let minerSig: string

  async function verdicts (signers: Wallet[], rh: string): Promise<{ vs: Verdict[], sigs: string[] }> {
    const sorted = sortBySigner(signers, w => w.address)
    const vs: Verdict[] = sorted.map(w => ({ receiptHash: rh, validator: w.address, pass: false, reason: 1 }))
    const sigs = await Promise.all(vs.map(async (v, i) => await signVerdict(sorted[i]!, devnet.deployment, v)))
    return { vs, sigs }
  }

  beforeAll(async () => {
    const funder = await client(devnet.accounts[0]!)
    for (let i = 0; i < 3; i++) {
      const w = Wallet.createRandom().connect(devnet.provider) as unknown as Wallet
      validators.push(w)
      await funder.send('fund', funder.contracts.token, 'transfer', [w.address, 1000n * HEU])
      await (await devnet.accounts[0]!.sendTransaction({ to: w.address, value: WAD })).wait()
      const v = await client(w)
      await v.registerValidator(500n * HEU)
    }
    miner = Wallet.createRandom().connect(devnet.provider) as unknown as Wallet
    await funder.send('fund', funder.contracts.token, 'transfer', [miner.address, 1000n * HEU])
    await (await devnet.accounts[0]!.sendTransaction({ to: miner.address, value: WAD })).wait()
    const m = await client(miner)
    await m.register(1000n * HEU)
    const now = BigInt((await devnet.provider.getBlock('latest'))!.timestamp)
    receipt = {
      jobId: id('job-1'), requester: devnet.accounts[7]!.address, miner: miner.address, modelId: id('pod-a'), pool: 0,
      inputHash: id('in'), outputHash: id('out'), paramsHash: id('params'), computeUnits: 1234n, startedAt: now, endedAt: now + 1n
    }
    minerSig = await signReceipt(miner, devnet.deployment, receipt)
  })

  it('refuses a slash with too little quorum, slashes F with 2/3, pays the reporter and the reservoir, once per receipt', async () => {
    const reporter = await client(devnet.accounts[8]!)
    const rh = receiptDigest(devnet.deployment, receipt)
    expect(await reporter.read(reporter.contracts.slashing, 'receiptDigest', [receipt])).toBe(rh)
    const one = await verdicts(validators.slice(0, 1), rh)
    await expect(reporter.slash(receipt, minerSig, one.vs, one.sigs)).rejects.toThrow(/NoQuorum/)
    // a forged verdict (signed by someone else) is refused
    const forged = await verdicts(validators.slice(0, 2), rh)
    forged.sigs[0] = await signVerdict(miner, devnet.deployment, forged.vs[0]!)
    await expect(reporter.slash(receipt, minerSig, forged.vs, forged.sigs)).rejects.toThrow(/BadVerdictSignature/)

    const two = await verdicts(validators.slice(0, 2), rh)
    const reservoirBefore = (await reporter.balances(devnet.reservoir)).heu
    const reporterBefore = (await reporter.balances(devnet.accounts[8]!.address)).heu
    await reporter.slash(receipt, minerSig, two.vs, two.sigs)
    expect((await reporter.balances(miner.address)).collateral).toBe(500n * HEU) // F = 50 %
    expect((await reporter.balances(devnet.accounts[8]!.address)).heu - reporterBefore).toBe(50n * HEU) // 10 % of the slash
    expect((await reporter.balances(devnet.reservoir)).heu - reservoirBefore).toBe(450n * HEU)
    await expect(reporter.slash(receipt, minerSig, two.vs, two.sigs)).rejects.toThrow(/AlreadySlashed/)
  })

  it('accepts a reward root only after the epoch, within the cap and with quorum; claims pay once; the rest goes to the reservoir', async () => {
    const poster = await client(devnet.accounts[8]!)
    const epoch = await poster.currentEpoch()
    const a = devnet.accounts[1]!.address
    const b = devnet.accounts[2]!.address
    const tree = buildRewardTree([{ account: a, amount: 300n * HEU }, { account: b, amount: 200n * HEU }])
    const sign = async (signers: Wallet[], total: bigint, root = tree.root): Promise<string[]> =>
      await Promise.all(sortBySigner(signers, w => w.address).map(async w => await signRewardRoot(w, devnet.deployment, { epoch, root, total })))

    await expect(poster.postRewardRoot(epoch, tree.root, tree.total, await sign(validators, tree.total))).rejects.toThrow(/EpochNotOver/)
    await devnet.timeTravel(EPOCH)
    const { cap, reservoir } = await poster.epochCap(epoch)
    const rev = await poster.read<[bigint, bigint]>(poster.contracts.payments, 'epochRevenue', [epoch])
    const expected = whitepaperEpochCap(rev[0] + rev[1], EPOCH)
    expect(cap).toBe(expected.emission)
    expect(reservoir).toBe(expected.reservoir)

    const over = cap + 1n
    await expect(poster.postRewardRoot(epoch, tree.root, over, await sign(validators, over))).rejects.toThrow(/OverCap/)
    await expect(poster.postRewardRoot(epoch, tree.root, tree.total, await sign(validators.slice(0, 1), tree.total))).rejects.toThrow(/NoQuorum/)
    // the same validator twice does not make a quorum
    const dup = await sign(validators.slice(0, 1), tree.total)
    await expect(poster.postRewardRoot(epoch, tree.root, tree.total, [dup[0]!, dup[0]!])).rejects.toThrow(/SignersNotSorted/)

    const resBefore = (await poster.balances(devnet.reservoir)).heu
    await poster.postRewardRoot(epoch, tree.root, tree.total, await sign(validators.slice(0, 2), tree.total))
    expect((await poster.balances(devnet.reservoir)).heu - resBefore).toBe(reservoir + cap - tree.total)
    await expect(poster.postRewardRoot(epoch, tree.root, tree.total, await sign(validators, tree.total))).rejects.toThrow(/RootExists/)

    const ca = tree.claims.find(c => c.account === a)!
    const before = (await poster.balances(a)).heu
    await poster.claim(epoch, a, ca.amount, ca.proof)
    expect((await poster.balances(a)).heu - before).toBe(300n * HEU)
    await expect(poster.claim(epoch, a, ca.amount, ca.proof)).rejects.toMatchObject({ code: 'CHAIN_ALREADY_CLAIMED' })
    await expect(poster.send('claim', poster.contracts.emission, 'claim', [epoch, a, ca.amount, ca.proof])).rejects.toThrow(/AlreadyClaimed/)
    const cb = tree.claims.find(c => c.account === b)!
    await expect(poster.claim(epoch, b, cb.amount + 1n, cb.proof)).rejects.toThrow(/BadProof/)
    await poster.claim(epoch, b, cb.amount, cb.proof)
  })
})

describe('connectChain', () => {
  it('refuses a deployment for another chain id, and an unreachable RPC, with one line', async () => {
    await expect(connectChain({ deployment: { ...devnet.deployment, chainId: 1 } })).rejects.toMatchObject({ code: 'CHAIN_WRONG_CHAIN_ID' })
    await expect(connectChain({ deployment: devnet.deployment, rpc: 'http://127.0.0.1:1' })).rejects.toMatchObject({ code: 'CHAIN_RPC_UNREACHABLE' })
  })
})
