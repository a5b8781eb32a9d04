// The real inputs of the scale simulation: message sizes from our codecs, gossipsub RPC sizes
// from its own protobuf encoder, and CPU per message of the real gossip validators and of
// gossipsub's envelope signature check, timed on real signed messages. Used by bench/scale.mjs.
import '../dist/core/shim.js'
import { Wallet, ZeroAddress } from 'ethers'
import { identityFromPrivateKey } from '../dist/core/identity.js'
import {
  buildAdvert, createAdvertValidator, createReceiptValidator, encodeMessage, signReceipt, receiptHash, countersign, TOPICS, verdictTopic
} from '../dist/p2p/index.js'
import { buildVerdictMessage } from '../dist/validation/verdicts.js'
import { validateVerdictGossip } from '../dist/validation/service.js'
import { RPC } from '../node_modules/@libp2p/gossipsub/dist/src/message/rpc.js'

const median = xs => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)] }
const hex = n => '0x' + [...crypto.getRandomValues(new Uint8Array(n))].map(b => b.toString(16).padStart(2, '0')).join('')

/** A miner's advert as `mine` builds it: 3 models, one public address, one GPU. */
export function sampleAdvert (id, seq, ts, addrs = ['/ip4/203.0.113.7/tcp/4001']) {
  const fake = { address: id.address, multiaddrs: () => addrs }
  const models = [0, 1, 2].map(i => ({ id: hex(32).slice(2), name: `model-${i}-instruct-q4`, kind: 'llm', contextSize: 8192, memoryBytes: 5e9 }))
  const advert = buildAdvert(fake, {
    hardware: { gpus: [{ name: 'NVIDIA GeForce RTX 4090', vramTotal: 25757220864, vramFree: 20000000000 }], cpuCores: 16, ramBytes: 68719476736 },
    models, queueDepth: 1, maxJobs: 4, tokensPerSecond: 87.5, imagesPerSecond: 0, price: 1000000000n, version: '0.1.0', paid: true
  }, seq, 60_000)
  advert.ts = ts
  return advert
}

const domain = { chainId: 31337, verifyingContract: '0x5FbDB2315678afecb367f032d93F642f64180aa3' }

export async function sampleReceipt (miner, requester) {
  const r = { jobId: hex(32), requester: requester.address, miner: miner.address, modelId: hex(32), pool: 0, inputHash: hex(32), outputHash: hex(32), paramsHash: hex(32), computeUnits: 1234n, startedAt: 1764640000n, endedAt: 1764640003n }
  const signed = await signReceipt(miner.wallet, r, domain)
  const rh = receiptHash(signed, domain)
  return { v: 1, type: 'receipt', signed, chainId: domain.chainId, verifyingContract: domain.verifyingContract, measured: { units: '1234', signature: countersign(requester.wallet, rh, 1234n) } }
}

function gossipMessage (id, topic, data, seqno) {
  return { type: 'signed', from: id.peerId, data, sequenceNumber: seqno, topic, signature: new Uint8Array(64), key: id.peerId.publicKey }
}

/** Wire sizes of gossipsub's RPC pieces, from its encoder with a real key and signature. */
async function wireSizes (id) {
  const data = new Uint8Array(1000)
  const seqno = crypto.getRandomValues(new Uint8Array(8))
  const signature = await id.libp2pKey.sign(new Uint8Array(100))
  const from = id.peerId.toMultihash().bytes
  const one = RPC.encode({ subscriptions: [], messages: [{ from, data, seqno, topic: TOPICS.capacity, signature }] })
  const msgId = new Uint8Array(id.peerId.publicKey.raw.length + 8)
  const ids = n => Array.from({ length: n }, () => msgId)
  const ihave = n => RPC.encode({ subscriptions: [], messages: [], control: { ihave: [{ topicID: TOPICS.capacity, messageIDs: ids(n) }], iwant: [], graft: [], prune: [], idontwant: [] } }).length
  const idw = RPC.encode({ subscriptions: [], messages: [], control: { ihave: [], iwant: [], graft: [], prune: [], idontwant: [{ messageIDs: ids(1) }] } }).length
  // + 2 bytes: the varint length prefix of each RPC on the stream
  return {
    envelope: one.length - data.length + 2,
    idLen: msgId.length,
    perId: ihave(2) - ihave(1),
    controlOverhead: idw - (ihave(2) - ihave(1)) + 2,
    topicLen: TOPICS.capacity.length + 2
  }
}

function timeIt (fn, n) {
  const t0 = performance.now()
  for (let i = 0; i < n; i++) fn(i)
  return (performance.now() - t0) / n
}

/** Sizes and CPU (ms per message) of adverts, receipts and verdicts, measured. */
export async function measureMessages ({ n = 200 } = {}) {
  const ids = Array.from({ length: 20 }, () => identityFromPrivateKey(Wallet.createRandom().privateKey))
  const gw = ids[0]
  const t0 = 1_800_000_000_000
  // adverts: distinct operators, seq and ts advancing 5 s per round (the validator's rate rule passes)
  const adverts = Array.from({ length: n }, (_, i) => {
    const id = ids[i % ids.length]; const round = Math.floor(i / ids.length)
    return gossipMessage(id, TOPICS.capacity, encodeMessage(sampleAdvert(id, round + 1, t0 + round * 5000)), new Uint8Array(8))
  })
  // a fresh validator per pass (it keeps per-operator state); its clock follows the adverts
  let clock = t0
  const advertPass = () => { const v = createAdvertValidator({ now: () => clock }); return i => { clock = t0 + Math.floor(i / ids.length) * 5000 + 100; v(adverts[i]) } }
  advertPass()(0)
  const advertMs = timeIt(advertPass(), adverts.length)
  const receipts = []
  for (let i = 0; i < Math.min(n, 100); i++) {
    const m = await sampleReceipt(ids[1 + (i % (ids.length - 1))], gw)
    receipts.push(gossipMessage(gw, TOPICS.receipts, encodeMessage(m), new Uint8Array(8)))
  }
  createReceiptValidator()(receipts[0])
  const receiptValidate = createReceiptValidator({ ratePerSecond: 1e9, burst: 1e9 })
  const receiptMs = timeIt(i => receiptValidate(receipts[i]), receipts.length)
  const validator = ids[2]
  const verdicts = []
  for (let i = 0; i < 50; i++) {
    const signed = (await sampleReceipt(ids[3 + (i % 10)], gw)).signed
    const m = await buildVerdictMessage(validator.wallet, domain, signed, hex(32), true, 0)
    verdicts.push(gossipMessage(validator, verdictTopic(signed.receipt.miner), encodeMessage(m), new Uint8Array(8)))
  }
  const verdictMs = timeIt(i => validateVerdictGossip(verdicts[i % verdicts.length]), 200)
  // gossipsub checks each message's envelope signature (secp256k1) before the topic validator
  const payload = new Uint8Array(1200)
  const sig = await gw.libp2pKey.sign(payload)
  const verifies = []
  for (let k = 0; k < 5; k++) { const t = performance.now(); for (let i = 0; i < 40; i++) await gw.libp2pKey.publicKey.verify(payload, sig); verifies.push((performance.now() - t) / 40) }
  const sigMs = median(verifies)
  const r3 = x => Math.round(x * 1000) / 1000
  return {
    sizes: { advert: adverts[0].data.length, receipt: receipts[0].data.length, verdict: verdicts[0].data.length },
    cpuMs: { advertValidator: r3(advertMs), receiptValidator: r3(receiptMs), verdictValidator: r3(verdictMs), envelopeSignature: r3(sigMs) },
    wire: await wireSizes(gw),
    sampled: { adverts: adverts.length, receipts: receipts.length, verdicts: verdicts.length, signatureChecks: 200 },
    zero: ZeroAddress.length
  }
}
