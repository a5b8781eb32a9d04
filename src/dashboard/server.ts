/**
 * The local dashboard (`mine`, `gateway`, `up`): a small page and its JSON on 127.0.0.1,
 * served by fastify. It samples its source every `sampleMs` into a bounded history, which is
 * what the tokens/s chart draws. Loopback only: it shows addresses and earnings, and has no
 * authentication.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import type { Logger } from '../core/logger.js'
import { HeuristError } from '../core/errors.js'
import { PAGE_HTML, PAGE_JS } from './page.js'
import type { DashboardSource, HistoryPoint } from './types.js'

export interface DashboardOptions {
  /** Loopback only; another host is refused. Default 127.0.0.1. */
  host: string
  /** 0 = any free port. Default 0: several nodes on one machine must not collide. */
  port: number
  /** How often the source is sampled for the chart. Default 1,000 ms. */
  sampleMs: number
  /** Samples kept (a bound on memory). Default 600: ten minutes at one a second. */
  maxHistory: number
}

export const defaultDashboardOptions: DashboardOptions = { host: '127.0.0.1', port: 0, sampleMs: 1000, maxHistory: 600 }

export interface Dashboard { url: string, port: number, stop: () => Promise<void> }

const CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'"

export async function startDashboard (source: DashboardSource, logger: Logger, options: Partial<DashboardOptions> = {}): Promise<Dashboard> {
  const o = { ...defaultDashboardOptions, ...options }
  if (o.host !== '127.0.0.1' && o.host !== '::1' && o.host !== 'localhost') {
    throw new HeuristError('DASHBOARD_NOT_LOOPBACK', `the dashboard listens on loopback only, not ${o.host}`, { usage: true })
  }
  const history: HistoryPoint[] = []
  const sample = async (): Promise<void> => {
    const s = await source.snapshot()
    history.push({ t: Date.now(), tokensPerSecond: s.tokensPerSecond, served: s.jobs.served })
    if (history.length > o.maxHistory) history.splice(0, history.length - o.maxHistory)
  }
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: 1024 })
  app.addHook('onSend', async (_req, reply) => {
    reply.header('content-security-policy', CSP)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('cache-control', 'no-store')
  })
  app.get('/', async (_req, reply) => await reply.type('text/html; charset=utf-8').send(PAGE_HTML))
  app.get('/dashboard.js', async (_req, reply) => await reply.type('text/javascript; charset=utf-8').send(PAGE_JS))
  app.get('/api/summary', async (_req, reply) => {
    const s = await source.snapshot()
    return await reply.type('application/json').send(JSON.stringify({ ...s, history }))
  })
  try {
    await app.listen({ host: o.host, port: o.port })
  } catch (e) {
    await app.close()
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new HeuristError('DASHBOARD_PORT_IN_USE', `dashboard port ${o.port} is in use (use 0 for any free port)`, { usage: true })
    throw e
  }
  await sample().catch(() => {})
  const timer = setInterval(() => { sample().catch(err => { logger.debug({ err: (err as Error).message }, 'dashboard: sample failed') }) }, o.sampleMs)
  timer.unref()
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : o.port
  const url = `http://${o.host === '::1' ? '[::1]' : o.host}:${port}`
  logger.info({ url }, 'dashboard listening')
  return {
    url,
    port,
    async stop () {
      clearInterval(timer)
      await app.close()
    }
  }
}
