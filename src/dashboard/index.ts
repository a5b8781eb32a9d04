/** The local dashboard served by `mine`, `gateway` and `up`: page, JSON and the role sources. */
export { startDashboard, defaultDashboardOptions, type Dashboard, type DashboardOptions } from './server.js'
export { nodeSource, slashFeed, type MinerPart } from './sources.js'
export type { DashboardSource, DashboardSnapshot, DashboardPeer, DashboardEarning, DashboardSlash, HistoryPoint } from './types.js'
