/**
 * What a running miner keeps up for `heurist earnings`: verdicts on its own receipts filed in
 * its points ledger (own-verdicts.ts), and every minute its ledger part for the current and the
 * previous epoch written to `<home>/rewards/earnings-ledger.json` (the store is locked while it runs).
 */
import type { Logger } from '../core/logger.js'
import type { Store } from '../core/store.js'
import type { ChainClient } from '../chain/index.js'
import type { HeuristNode } from '../p2p/index.js'
import { chainOrganicCheck, ledgerEarnings, writeLedgerReport, type PointsLedger } from '../rewards/index.js'
import { chainStakeViews } from '../validation/index.js'
import { hearOwnVerdicts } from './own-verdicts.js'

export interface EarningsFeedsInit {
  node: HeuristNode
  store: Store
  ledger: PointsLedger
  chain: ChainClient
  operator: string
  rewardsDir: string
  logger: Logger
  /** How often the report is rewritten. Default 60 s. */
  everyMs?: number
}

export function startEarningsFeeds (o: EarningsFeedsInit): () => void {
  const d = o.chain.deployment
  const offVerdicts = hearOwnVerdicts({ node: o.node, ledger: o.ledger, operator: o.operator, domain: { chainId: d.chainId, verifyingContract: d.contracts.Slashing }, stakeOf: chainStakeViews(o.chain).stakeOf, logger: o.logger })
  let busy = false
  const round = async (): Promise<void> => {
    if (busy) return
    busy = true
    try {
      await o.ledger.flush()
      const current = await o.chain.currentEpoch()
      const check = await chainOrganicCheck(o.chain)
      const parts = []
      for (const e of current === 0n ? [0n] : [current - 1n, current]) parts.push(await ledgerEarnings(o.ledger, o.store, e, o.operator, check))
      await writeLedgerReport(o.rewardsDir, o.operator, parts)
    } catch (err) {
      o.logger.debug({ err: (err as Error).message }, 'earnings report not written (next round retries)')
    } finally {
      busy = false
    }
  }
  const first = setTimeout(() => { void round() }, 5000)
  const timer = setInterval(() => { void round() }, o.everyMs ?? 60_000)
  first.unref()
  timer.unref()
  return () => { clearTimeout(first); clearInterval(timer); offVerdicts() }
}
