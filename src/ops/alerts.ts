import { randomUUID } from 'node:crypto'
import { HeuristError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'

/** What an alert is about. **Contract**: webhook receivers switch on these. */
export const ALERT_KINDS = ['slashed', 'claim_failed', 'reachability_lost', 'model_load_failed', 'gas_low', 'idle', 'restarted'] as const
export type AlertKind = typeof ALERT_KINDS[number]

/** The JSON body of one webhook POST (**contract**, version 1). */
export interface Alert {
  v: 1
  /** Unique per alert; the same on every retry of it, so a receiver can drop duplicates. */
  id: string
  kind: AlertKind
  severity: 'critical' | 'warning'
  /** The node's operator address. */
  node: string
  role: string
  /** One line for people. */
  message: string
  /** ISO-8601 time the alert was raised. */
  at: string
  data: Record<string, unknown>
}

export interface AlertSenderOptions {
  /** Attempts per alert before it is dropped (logged). Default 6. */
  maxAttempts: number
  /** First retry delay; doubles each attempt up to maxDelayMs. Default 1 s. */
  baseDelayMs: number
  /** Default 60 s: a receiver down for minutes still gets the alert. */
  maxDelayMs: number
  /** One POST's timeout. Default 10 s. */
  timeoutMs: number
  /** Alerts waiting at most; past it the oldest is dropped (a dead receiver must not grow memory). Default 100. */
  maxQueue: number
}

export const defaultAlertSenderOptions: AlertSenderOptions = { maxAttempts: 6, baseDelayMs: 1000, maxDelayMs: 60_000, timeoutMs: 10_000, maxQueue: 100 }

export interface AlertSenderInit {
  /** http(s) URL of the receiver. */
  url: string
  node: string
  role: string
  logger: Logger
  version: string
}

export interface AlertSenderStats { sent: number, failedAttempts: number, dropped: number, queued: number }

const SEVERITY: Record<AlertKind, Alert['severity']> = {
  slashed: 'critical', claim_failed: 'warning', reachability_lost: 'warning', model_load_failed: 'critical', gas_low: 'warning', idle: 'warning', restarted: 'warning'
}

/** The alerts sink: a webhook sender, or nothing when `alerts.webhook` is empty. */
export interface Alerts {
  /** Queues an alert and returns at once: never blocks serving. */
  raise: (kind: AlertKind, message: string, data?: Record<string, unknown>) => void
  /** Resolves once every queued alert was delivered or dropped, or after `timeoutMs`. */
  flush: (timeoutMs: number) => Promise<void>
  stop: () => void
}

export const noAlerts: Alerts = { raise () {}, async flush () {}, stop () {} }

export function checkWebhookUrl (url: string): URL {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new HeuristError('OPS_BAD_WEBHOOK', `alerts.webhook is not a URL: ${JSON.stringify(url.slice(0, 200))}`, { usage: true })
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new HeuristError('OPS_BAD_WEBHOOK', `alerts.webhook must be http:// or https://, got ${u.protocol}`, { usage: true })
  return u
}

/**
 * Posts alerts as JSON to a webhook, one at a time in order, retrying each with exponential
 * backoff (any non-2xx answer or network error is a failed attempt). `raise` only queues, so a
 * slow or dead receiver never holds up jobs; the queue is bounded.
 */
export class AlertSender implements Alerts {
  readonly options: AlertSenderOptions
  readonly stats: AlertSenderStats = { sent: 0, failedAttempts: 0, dropped: 0, queued: 0 }
  private readonly url: URL
  private readonly queue: Alert[] = []
  private running = false
  private stopped = false
  private timer: NodeJS.Timeout | null = null
  private wake: (() => void) | null = null
  private readonly abort = new AbortController()
  private readonly idle = new Set<() => void>()

  constructor (private readonly init: AlertSenderInit, options: Partial<AlertSenderOptions> = {}) {
    this.options = { ...defaultAlertSenderOptions, ...options }
    this.url = checkWebhookUrl(init.url)
  }

  raise (kind: AlertKind, message: string, data: Record<string, unknown> = {}): void {
    if (this.stopped) return
    const alert: Alert = { v: 1, id: randomUUID(), kind, severity: SEVERITY[kind], node: this.init.node, role: this.init.role, message: message.slice(0, 500), at: new Date().toISOString(), data }
    this.init.logger.warn({ alert: kind, ...data }, `alert: ${alert.message}`)
    this.queue.push(alert)
    while (this.queue.length > this.options.maxQueue) {
      const old = this.queue.shift()!
      this.stats.dropped++
      this.init.logger.warn({ alert: old.kind, id: old.id }, 'alert dropped: the queue is full (webhook unreachable?)')
    }
    this.stats.queued = this.queue.length
    if (!this.running) void this.drain()
  }

  async flush (timeoutMs: number): Promise<void> {
    if (!this.running && this.queue.length === 0) return
    await new Promise<void>(resolve => {
      const t = setTimeout(done, timeoutMs)
      function done (): void { clearTimeout(t); resolve() }
      this.idle.add(done)
      // a retry waiting out its backoff goes now
      this.wake?.()
    })
  }

  stop (): void {
    this.stopped = true
    this.abort.abort()
    if (this.timer !== null) clearTimeout(this.timer)
    this.wake?.()
    for (const f of this.idle) f()
    this.idle.clear()
  }

  private async drain (): Promise<void> {
    this.running = true
    try {
      while (!this.stopped && this.queue.length > 0) {
        const alert = this.queue[0]!
        let delivered = false
        for (let attempt = 1; attempt <= this.options.maxAttempts && !this.stopped; attempt++) {
          const err = await this.post(alert)
          if (err === null) { delivered = true; break }
          this.stats.failedAttempts++
          this.init.logger.debug({ alert: alert.kind, id: alert.id, attempt, err }, 'alert webhook attempt failed')
          if (attempt < this.options.maxAttempts) await this.sleep(Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (attempt - 1)))
        }
        this.queue.shift()
        this.stats.queued = this.queue.length
        if (delivered) this.stats.sent++
        else if (!this.stopped) {
          this.stats.dropped++
          this.init.logger.warn({ alert: alert.kind, id: alert.id, attempts: this.options.maxAttempts }, 'alert not delivered: the webhook kept failing')
        }
      }
    } finally {
      this.running = false
      for (const f of this.idle) f()
      this.idle.clear()
    }
  }

  /** null on a 2xx answer, else a one-line reason. */
  private async post (alert: Alert): Promise<string | null> {
    try {
      const res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': `heurist/${this.init.version}` },
        body: JSON.stringify(alert),
        redirect: 'error',
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.options.timeoutMs)])
      })
      await res.body?.cancel().catch(() => {})
      return res.status >= 200 && res.status < 300 ? null : `HTTP ${res.status}`
    } catch (e) {
      return (e as Error).message.slice(0, 200)
    }
  }

  private async sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      this.wake = () => { if (this.timer !== null) clearTimeout(this.timer); this.timer = null; this.wake = null; resolve() }
      this.timer = setTimeout(() => { this.wake?.() }, ms)
    })
  }
}
