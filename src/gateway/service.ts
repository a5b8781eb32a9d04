import type { Identity } from '../core/identity.js'
import type { Logger } from '../core/logger.js'
import type { Store } from '../core/store.js'
import { createHeuristNode, TOPICS, encodeMessage, unpaidReceiptDomain, type HeuristNode, type ReceiptDomainOptions, type RunJobResult } from '../p2p/index.js'
import { Accounts } from './accounts.js'
import { VoucherBook, type VoucherSigner, type SignedVoucher } from './vouchers.js'
import { Transcripts } from './transcripts.js'
import { createMeshBackend, type MeshBackend } from './mesh.js'
import { createGateway, type Gateway, type GatewayOptions } from './server.js'
import { buildDemand } from './demand.js'
import { sendVoucher } from './payouts.js'
import { serveTranscripts } from './transcript-protocol.js'
import { countersignedReceipt } from './countersign.js'
import type { Candidate, CompletedJob, PodResolver } from './types.js'
import { PayByUser, type PayByUserChain, type PayByUserOptions } from './pay-by-user.js'

/**
 * A whole gateway node: the mesh node, the mesh backend, the HTTP server, the ledger
 * (accounts, vouchers, transcripts), receipt gossip and demand adverts. Started in that
 * order, stopped in reverse. The CLI's `gateway` and `up` both build this.
 */
export interface GatewayServiceOptions {
  identity: Identity
  store: Store
  logger: Logger
  listen: string[]
  bootstrap: string[]
  /** Addresses to advertise instead of the listen addresses (p2p.announce). */
  announce?: string[]
  devnet: boolean
  http: Partial<GatewayOptions>
  /** Chain: vouchers are signed for this Payments domain and receipts checked under this one. Null = unpaid. */
  chain: { voucherSigner: VoucherSigner, receiptDomain: ReceiptDomainOptions } | null
  /** Hands a new voucher to its miner; default: pushed over /heurist/voucher/1.0.0 when on a chain. */
  deliverVoucher?: (miner: Candidate, voucher: SignedVoucher) => void | Promise<void>
  /** Whether an address is a registered validator (transcripts go to them only). Default: nobody. */
  isValidator?: (address: string) => Promise<boolean>
  /** How often demand is published. Default 2 s: quick enough for a miner to scale up in a few seconds. */
  demandIntervalMs: number
  /** Pods on chain, so clients can name a pod no miner hosts yet (see GatewayComponents.pods). */
  pods?: PodResolver
  /** Miners that may be routed to (registered with collateral; chain/eligibility.ts). Default: all (unpaid local use). */
  eligible?: (address: string) => Promise<boolean>
  /**
   * Pay-by-User (needs `chain`): callers without an API key pay from their own Payments deposit,
   * settled on chain by this gateway's key (a ChainClient signed by it serves as `chain`).
   */
  payByUser?: { chain: PayByUserChain, asset: string, withdrawDelaySeconds: bigint, options?: Partial<PayByUserOptions> }
}

export interface GatewayService {
  node: HeuristNode
  backend: MeshBackend
  gateway: Gateway
  accounts: Accounts
  vouchers: VoucherBook
  transcripts: Transcripts
  /** Pay-by-User sessions and their settlement; null when not enabled. */
  payByUser: PayByUser | null
  stop: () => Promise<void>
}

export async function startGatewayService (o: Omit<GatewayServiceOptions, 'demandIntervalMs'> & { demandIntervalMs?: number }): Promise<GatewayService> {
  const node = await createHeuristNode({ identity: o.identity, logger: o.logger, store: o.store, listen: o.listen, bootstrap: o.bootstrap, announce: o.announce ?? [], devnet: o.devnet })
  const backend = createMeshBackend(node, o.logger, o.chain === null ? {} : { receiptDomain: o.chain.receiptDomain })
  backend.start()
  const accounts = new Accounts(o.store)
  const vouchers = new VoucherBook(o.store, o.identity.address, o.identity.address, o.chain?.voucherSigner ?? null)
  const transcripts = new Transcripts(o.store)
  const domain = o.chain?.receiptDomain ?? unpaidReceiptDomain
  const deliver = o.deliverVoucher ?? (o.chain === null
    ? undefined
    : (miner: Candidate, v: SignedVoucher) => {
        // not awaited: a slow miner must not hold up the response; a lost voucher is
        // superseded by the next (cumulative) one
        sendVoucher(node, miner.peerId, v).catch(err => { o.logger.info({ miner: miner.peerId, err: (err as Error).message }, 'voucher delivery failed') })
      })
  const pu = o.payByUser
  const payByUser = pu === undefined || o.chain === null
    ? null
    : new PayByUser(o.store, pu.chain, o.logger, { ...pu.options, domain: o.chain.voucherSigner.domain, frontend: o.identity.address, asset: pu.asset, withdrawDelaySeconds: pu.withdrawDelaySeconds },
      // the chain refused the user's settlement for good: the gateway accepted those jobs, so it
      // pays their miners from its own deposit with its ordinary vouchers
      async (c, amount) => {
        const v = await vouchers.raise(c.miner, c.podId, c.pool, amount, c.pod)
        const candidate = backend.candidates(c.podId.slice(2)).find(x => x.address.toLowerCase() === c.miner.toLowerCase())
        if (candidate !== undefined && deliver !== undefined) await deliver(candidate, v)
        else o.logger.warn({ miner: c.miner }, 'fallback voucher signed; the miner is not reachable now (it gets it with its next voucher)')
      })
  const gateway = createGateway({
    backend,
    accounts,
    logger: o.logger,
    vouchers,
    transcripts,
    ...(o.pods === undefined ? {} : { pods: o.pods }),
    ...(o.eligible === undefined ? {} : { eligible: o.eligible }),
    ...(deliver === undefined ? {} : { onVoucher: deliver }),
    ...(payByUser === null ? {} : { payByUser }),
    // The receipt is gossiped in a message signed by the gateway's key (StrictSign): the
    // gateway's countersignature that it asked for and was served this job.
    onJob: async (job: CompletedJob) => {
      const r = job.receipt as RunJobResult | undefined
      if (r?.receiptValid !== true) return
      await node.publishReceipt(countersignedReceipt(job, r, o.identity.wallet, domain))
    }
  }, o.http)
  try {
    await gateway.start()
  } catch (e) {
    backend.stop()
    await node.stop()
    throw e
  }
  payByUser?.start()
  let hadDemand = false
  const stopTranscripts = await serveTranscripts(node, transcripts, o.logger, { isValidator: o.isValidator ?? (async () => false) })
  const demandTimer = setInterval(() => {
    // publish while there is demand, and once more when it drops to zero
    const d = buildDemand(node.address, gateway.pending())
    if (d.models.length > 0 || hadDemand) node.publish(TOPICS.demand, encodeMessage(d)).catch(err => { o.logger.debug({ err }, 'cannot publish demand') })
    hadDemand = d.models.length > 0
    transcripts.prune().catch(err => { o.logger.warn({ err }, 'cannot prune transcripts') })
  }, o.demandIntervalMs ?? 2000)
  demandTimer.unref()
  return {
    node,
    backend,
    gateway,
    accounts,
    vouchers,
    transcripts,
    payByUser,
    async stop () {
      clearInterval(demandTimer)
      await gateway.stop()
      // what users owe is settled before the node goes (a failure is logged and kept for the next start)
      await payByUser?.stop().catch(err => { o.logger.warn({ err: (err as Error).message }, 'pay-by-user settlement at stop failed') })
      await stopTranscripts()
      backend.stop()
      await node.stop()
    }
  }
}
