/**
 * What a running miner keeps up for `heurist earnings`: verdicts on its own receipts filed in
 * its points ledger (own-verdicts.ts), and every minute its ledger part for the current and the
 * previous epoch written to `<home>/rewards/earnings-ledger.json` (the store is locked while it runs).
 */
import type { Logger } from '../core/logger.js'
import type { Store } from '../core/store.js'
import type { ChainClient } from '../chain/index.js'
import type { HeuristNode } from '../p2p/index.js'
import { chainOrganicCheck, ledgerEarnings, readLedgerReport, writeLedgerReport, type PointsLedger } from '../rewards/index.js'
import { chainStakeViews } from '../validation/index.js'
import { hearOwnVerdicts } from './own-verdicts.js'

export interface EarningsFeedsInit {
  node: HeuristNode
  store: Store
  ledger: PointsLedger
  chain: ChainClient
  operator: string
  rewardsDir: string
  /** The job server's served counter (it grows while the miner runs). */
  jobsServed: () => number
  logger: Logger
  /** How often the report is rewritten. Default 60 s. */
  everyMs?: number
}

export function startEarningsFeeds (o: EarningsFeedsInit): () => void {
  const d = o.chain.deployment
  const offVerdicts = hearOwnVerdicts({ node: o.node, ledger: o.ledger, operator: o.operator, domain: { chainId: d.chainId, verifyingContract: d.contracts.Slashing }, stakeOf: chainStakeViews(o.chain).stakeOf, logger: o.logger })
  let busy = false
  // jobs served per epoch, carried over from the last report (a restart keeps the counts)
  let served: Map<string, number> | null = null
  let lastCount = 0
  const round = async (): Promise<void> => {
    if (busy) return
    busy = true
    try {
      await o.ledger.flush()
      const current = await o.chain.currentEpoch()
      if (served === null) {
        const old = await readLedgerReport(o.rewardsDir).catch(() => null)
        served = new Map(old !== null && old.operator.toLowerCase() === o.operator.toLowerCase() ? old.served.map(x => [x.epoch, x.jobs]) : [])
      }
      const count = o.jobsServed()
      served.set(current.toString(), (served.get(current.toString()) ?? 0) + Math.max(0, count - lastCount))
      lastCount = count
      const check = await chainOrganicCheck(o.chain)
      const parts = []
      for (const e of current === 0n ? [0n] : [current - 1n, current]) parts.push(await ledgerEarnings(o.ledger, o.store, e, o.operator, check))
      await writeLedgerReport(o.rewardsDir, o.operator, parts, [...served].map(([epoch, jobs]) => ({ epoch, jobs })))
    } catch (err) {
      o.logger.debug({ err: (err as Error).message }, 'earnings report not written (next round retries)')
    } finally {
      busy = false
    }
  }
  const first = setTimeout(() => { void round() }, Math.min(5000, o.everyMs ?? 60_000))
  const timer = setInterval(() => { void round() }, o.everyMs ?? 60_000)
  first.unref()
  timer.unref()
  return () => { clearTimeout(first); clearInterval(timer); offVerdicts() }
}
