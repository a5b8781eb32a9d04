import { createServer, type Server } from 'node:http'
import { Counter, Gauge, Registry } from 'prom-client'
import { HeuristError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import type { GossipStats, HeuristNode, JobServer } from '../p2p/index.js'

/**
 * Prometheus text on `metrics.port` for `mine` and `validate` (the gateway serves its own
 * `/metrics` beside the API). Every figure is read from the node's own counters when scraped,
 * so nothing is counted twice and nothing runs between scrapes. GET /metrics only.
 */
export interface MetricsServer { url: string, stop: () => Promise<void> }

type Sample = Array<{ labels: Record<string, string>, value: number }>

/** A counter whose value is read from `read` at each scrape (the node keeps the running totals). */
function counterFrom (registry: Registry, name: string, help: string, labelNames: string[], read: () => Sample): void {
  const c = new Counter({ name, help, labelNames, registers: [registry], collect () { c.reset(); for (const s of read()) c.inc(s.labels, s.value) } })
}

function gaugeFrom (registry: Registry, name: string, help: string, labelNames: string[], read: () => Sample): void {
  const g = new Gauge({ name, help, labelNames, registers: [registry], collect () { g.reset(); for (const s of read()) g.set(s.labels, s.value) } })
}

/** What a mesh node shows: peers, miners heard, gossip outcomes. */
export function nodeMetrics (registry: Registry, node: HeuristNode, gossip: GossipStats): void {
  gaugeFrom(registry, 'heurist_node_peers', 'connected mesh peers', [], () => [{ labels: {}, value: node.connectedPeers().length }])
  gaugeFrom(registry, 'heurist_node_miners', 'miners with a live capacity advert', [], () => [{ labels: {}, value: node.peerTable.miners().length }])
  counterFrom(registry, 'heurist_gossip_messages_total', 'gossip messages by topic, validation result and code', ['topic', 'result', 'code'], () =>
    [...gossip.counts].map(([k, value]) => { const [topic = '', result = '', code = ''] = k.split(' '); return { labels: { topic, result, code }, value } }))
}

/** What a miner's job server shows: jobs by outcome, load against capacity, speed. */
export function minerMetrics (registry: Registry, jobs: JobServer): void {
  counterFrom(registry, 'heurist_miner_jobs_total', 'job requests by outcome: served, failed, rejected (malformed or unservable), busy (full: answered busy)', ['outcome'], () =>
    (['served', 'failed', 'rejected', 'busy'] as const).map(o => ({ labels: { outcome: o }, value: jobs.stats[o] })))
  gaugeFrom(registry, 'heurist_miner_jobs_running', 'jobs running now', [], () => [{ labels: {}, value: jobs.stats.running }])
  gaugeFrom(registry, 'heurist_miner_jobs_queued', 'jobs accepted and waiting for a slot', [], () => [{ labels: {}, value: jobs.stats.queued }])
  gaugeFrom(registry, 'heurist_miner_capacity', 'jobs held at most (running slots + queue); past it requests are answered busy', [], () => [{ labels: {}, value: jobs.capacity }])
  gaugeFrom(registry, 'heurist_miner_tokens_per_second', 'moving average of recent LLM jobs\' output tokens per second', [], () => [{ labels: {}, value: jobs.stats.tokensPerSecond }])
}

/** A validator's counters (seen, sampled, passed, failed, …), each as `event`. */
export function statsMetrics (registry: Registry, name: string, help: string, stats: () => Record<string, number>): void {
  counterFrom(registry, name, help, ['event'], () => Object.entries(stats()).map(([event, value]) => ({ labels: { event }, value })))
}

export async function serveMetrics (registry: Registry, o: { host: string, port: number, logger: Logger }): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n')
      return
    }
    registry.metrics().then(text => { res.writeHead(200, { 'content-type': registry.contentType }).end(text) }, (err: Error) => {
      o.logger.warn({ err: err.message }, 'metrics: collect failed')
      res.writeHead(500, { 'content-type': 'text/plain' }).end('collect failed\n')
    })
  })
  // scrapers are quick: a slow client does not keep a socket
  server.headersTimeout = 5000
  server.requestTimeout = 10_000
  server.keepAliveTimeout = 5000
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(new HeuristError(e.code === 'EADDRINUSE' ? 'CLI_METRICS_PORT_IN_USE' : 'CLI_METRICS_LISTEN_FAILED', `cannot serve metrics on ${o.host}:${o.port} (config metrics.port): ${e.message}`, { usage: e.code === 'EADDRINUSE' }))
    })
    server.listen(o.port, o.host, () => { resolve() })
  })
  const addr = server.address()
  const port = addr !== null && typeof addr === 'object' ? addr.port : o.port
  const url = `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}/metrics`
  o.logger.info({ url }, 'metrics served')
  return {
    url,
    async stop () {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    }
  }
}

export { Registry }
