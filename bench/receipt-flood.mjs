// Where a flood of receipts from N throwaway miner keys spends its time (issue 16, finding 6):
// per receipt, the miner's EIP-712 signature, one gossip receiver's signature check, the
// receipt hash, filing it in a validator's points ledger (LevelDB); then the ledger's points for
// the epoch (organic and stake checks answered at once: the chain's part is not measured here).
// Prints JSON.
//
//   npx tsc -p . && node bench/receipt-flood.mjs [N=4001]
import { Wallet, hexlify, randomBytes, ZeroHash } from 'ethers'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { signReceipt, receiptSigner, receiptHash } from '../dist/p2p/index.js'
import { identityFromPrivateKey } from '../dist/core/identity.js'
import { Store } from '../dist/core/store.js'
import { PointsLedger } from '../dist/rewards/index.js'
const N = Number(process.argv[2] ?? 4001)
const domain = { chainId: 31337n, verifyingContract: '0x' + '11'.repeat(20) }
const gwKey = hexlify(randomBytes(32))
const gw = new Wallet(gwKey)
const id = identityFromPrivateKey(gwKey)
const now = BigInt(Math.floor(Date.now() / 1000))
const t = {}
const lap = (k, t0) => { t[k] = Math.round(performance.now() - t0) }
let t0 = performance.now()
const keys = Array.from({ length: N }, () => new Wallet(hexlify(randomBytes(32))))
lap('makeKeysMs', t0)
t0 = performance.now()
const signed = []
for (let n = 0; n < N; n++) signed.push(await signReceipt(keys[n], { jobId: '0x' + n.toString(16).padStart(64, '0'), requester: gw.address, miner: keys[n].address, modelId: '0x' + '22'.repeat(32), pool: 0, inputHash: ZeroHash, outputHash: ZeroHash, paramsHash: ZeroHash, computeUnits: 1000n, startedAt: now - 5n, endedAt: now }, domain))
lap('signMs', t0)
t0 = performance.now()
for (const s of signed) receiptSigner(s, domain)
lap('verifyMs', t0)
t0 = performance.now()
for (const s of signed) receiptHash(s, domain)
lap('hashMs', t0)
const dir = await mkdtemp(join(tmpdir(), 'flood-'))
const store = await Store.open(join(dir, 's'))
const ledger = new PointsLedger(store, { warn () {}, info () {}, debug () {} })
ledger.setEpoch(0n)
t0 = performance.now()
for (const s of signed) await ledger.record({ v: 1, type: 'receipt', signed: s, chainId: 31337, verifyingContract: domain.verifyingContract }, id.peerId.toString())
lap('recordMs', t0)
let calls = 0
t0 = performance.now()
// every triple paid in full: the flood measures filing and counting, not the payment cap's chain reads
const pts = await ledger.points(0n, { isPayer: async () => true, payoutOf: async (a) => { calls++; return a }, stakeOf: async () => 0n, paidWei: async () => 10n ** 36n })
lap('pointsMs', t0)
console.log(JSON.stringify({ receipts: N, ...t, perReceiptMs: { sign: +(t.signMs / N).toFixed(2), verify: +(t.verifyMs / N).toFixed(2), hash: +(t.hashMs / N).toFixed(2), record: +(t.recordMs / N).toFixed(2) }, counted: pts.counted, payoutCalls: calls }))
await store.close()
await rm(dir, { recursive: true, force: true })
