/** What a dashboard shows; each role (miner, gateway, `up`) fills it from its own parts. */
export interface DashboardPeer { peerId: string, address: string, models: string[], tokensPerSecond: number, imagesPerSecond: number, queueDepth: number, lastSeen: number }

export interface DashboardEarning { epoch: string, account: string, amount: string, claimed: boolean }

export interface DashboardSlash { miner: string, amount: string, block: number, tx: string }

export interface DashboardSnapshot {
  role: string
  address: string
  peers: DashboardPeer[]
  jobs: { served: number, failed: number, running: number }
  /** Output tokens per second right now (0 when idle). */
  tokensPerSecond: number
  epoch: string | null
  /** This epoch's points of this node (or of all its miners, for `up`), per pool. */
  points: { llama: string, waifu: string } | null
  earnings: DashboardEarning[]
  slashes: DashboardSlash[]
}

export interface DashboardSource {
  snapshot: () => Promise<DashboardSnapshot>
}

export interface HistoryPoint { t: number, tokensPerSecond: number, served: number }
