// Gas per job when one cumulative-voucher redemption settles 1, 10 or 100 jobs, against
// settling every job with its own redemption transaction. Runs on the in-process EDR devnet.
// Every redemption pays the full split: protocol fee to the stHEU vault (whitepaper §3.4.3),
// pod deployer (named in the voucher and checked against PodRegistry), frontend and node.
// `fractionOfOneTxPerJob` = gas per job with one redemption / gas of one redemption per job;
// the bound at 100 jobs is ≤ 0.02.
// `payByUser`: a user's session of 100 jobs (96 over 16) spread over 1, 4 or 16 miners, settled by the
// frontend in one Payments.settleAuthorized call (one allocation per miner), against one
// settlement per job; same split.
// Usage: npx tsc -p . && npm run bench:settlement   (prints JSON)
import { Wallet, keccak256, toUtf8Bytes, hexlify, randomBytes } from 'ethers'
import { startDevnet, connectChain, signVoucher } from '../dist/chain/index.js'
import { heuristDomain, PaymentAuthorizationTypes } from '../dist/core/typed-data.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const PRICE = 10n ** 15n // 0.001 HEU per job
const median = xs => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }

const devnet = await startDevnet({ port: 0 })
const payer = devnet.accounts[1]
const chain = await connectChain({ deployment: devnet.deployment, signer: payer })
await chain.deposit(100_000n * 10n ** 18n)
const podId = keccak256(toUtf8Bytes('bench-pod'))
await chain.registerPod(podId, 0, 8000, 2000)
const frontend = devnet.accounts[2].address

async function redeemUpTo (miner, jobs) {
  const v = { payer: payer.address, miner, podId, podDeployer: payer.address, podBps: 2000, pool: 0, frontend, cumulativeAmount: PRICE * BigInt(jobs) }
  const [tx] = await chain.redeemVoucher(v, await signVoucher(payer, devnet.deployment, v))
  return { gas: Number(tx.gasUsed) }
}

const results = []
for (const jobs of [1, 10, 100]) {
  const batched = []
  const perJob = []
  const batchedMs = []
  const perJobMs = []
  for (let r = 0; r < RUNS; r++) {
    // one redemption for `jobs` jobs (a fresh miner: first redemption of its channel)
    let t = performance.now()
    const one = await redeemUpTo(Wallet.createRandom().address, jobs)
    batchedMs.push(performance.now() - t)
    batched.push(one.gas / jobs)
    // one redemption per job on another fresh miner's channel
    const miner = Wallet.createRandom().address
    let gas = 0
    t = performance.now()
    for (let j = 1; j <= jobs; j++) gas += (await redeemUpTo(miner, j)).gas
    perJobMs.push(performance.now() - t)
    perJob.push(gas / jobs)
  }
  const b = median(batched)
  const p = median(perJob)
  results.push({
    jobs,
    gasPerJobOneRedemption: Math.round(b),
    gasPerJobOneTxPerJob: Math.round(p),
    ratio: Number((p / b).toFixed(2)),
    fractionOfOneTxPerJob: Number((b / p).toFixed(4)),
    msOneRedemption: Number(median(batchedMs).toFixed(1)),
    msOneTxPerJob: Number(median(perJobMs).toFixed(1))
  })
}
// Pay-by-User: the user (dev account 3) pays from its own deposit, the frontend (account 2) settles
const user = devnet.accounts[3]
const userChain = await connectChain({ deployment: devnet.deployment, signer: user })
await userChain.deposit(100_000n * 10n ** 18n)
const frontChain = await connectChain({ deployment: devnet.deployment, signer: devnet.accounts[2] })
const domain = heuristDomain(devnet.deployment.chainId, devnet.deployment.contracts.Payments)
async function authorize (maxAmount) {
  const a = { payer: user.address, frontend, session: hexlify(randomBytes(32)), maxAmount, expiry: BigInt(Math.floor(Date.now() / 1000) + 3600) }
  return { a, sig: await user.signTypedData(domain, PaymentAuthorizationTypes, a) }
}
const alloc = (miner, amount) => ({ miner, podId, podDeployer: payer.address, podBps: 2000, pool: 0, cumulativeAmount: amount })
const JOBS = 100
const payByUser = []
for (const minersN of [1, 4, 16]) {
  const once = []
  const each = []
  for (let r = 0; r < RUNS; r++) {
    const miners = Array.from({ length: minersN }, () => Wallet.createRandom().address)
    const perMiner = BigInt(JOBS / minersN | 0)
    const jobsHere = Number(perMiner) * minersN
    let { a, sig } = await authorize(PRICE * BigInt(jobsHere))
    const [tx] = await frontChain.settleAuthorized(a, sig, miners.map(m => alloc(m, PRICE * perMiner)))
    once.push(Number(tx.gasUsed) / jobsHere)
    // one settlement per job: the session's bound covers all; job j raises its miner's allocation
    ;({ a, sig } = await authorize(PRICE * BigInt(jobsHere)))
    const cum = new Map()
    let gas = 0
    for (let j = 0; j < jobsHere; j++) {
      const m = miners[j % minersN]
      cum.set(m, (cum.get(m) ?? 0n) + PRICE)
      const [t] = await frontChain.settleAuthorized(a, sig, [alloc(m, cum.get(m))])
      gas += Number(t.gasUsed)
    }
    each.push(gas / jobsHere)
  }
  const o = median(once)
  const e = median(each)
  payByUser.push({ jobs: (JOBS / minersN | 0) * minersN, miners: minersN, gasPerJobOneSettlement: Math.round(o), gasPerJobOneSettlementPerJob: Math.round(e), ratio: Number((e / o).toFixed(2)), fractionOfOneTxPerJob: Number((o / e).toFixed(4)) })
}
userChain.close()
frontChain.close()
chain.close()
await devnet.stop()
const at100 = results.find(r => r.jobs === 100)
console.log(JSON.stringify({ bench: 'settlement', runs: RUNS, boundAt100Jobs: 0.02, withinBound: at100.fractionOfOneTxPerJob <= 0.02, chain: 'EDR in-process (Prague)', split: 'protocol fee 5% to stHEU / pod 20% / frontend 10% / node 65%', results, payByUser }, null, 2))
