import { Registry, Counter, Histogram, Gauge } from 'prom-client'

/** The gateway's Prometheus metrics, on its own registry (several gateways may share a process in tests). */
export class GatewayMetrics {
  readonly registry = new Registry()
  readonly requests = new Counter({ name: 'heurist_gateway_requests_total', help: 'HTTP requests by endpoint and status', labelNames: ['endpoint', 'status'] as const, registers: [this.registry] })
  readonly latency = new Histogram({ name: 'heurist_gateway_request_duration_seconds', help: 'request latency by endpoint', labelNames: ['endpoint'] as const, buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [this.registry] })
  readonly ttft = new Histogram({ name: 'heurist_gateway_time_to_first_token_seconds', help: 'time from request to the first token sent to the client', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry] })
  readonly tokens = new Counter({ name: 'heurist_gateway_tokens_total', help: 'tokens served, by direction (prompt, completion)', labelNames: ['direction'] as const, registers: [this.registry] })
  readonly images = new Counter({ name: 'heurist_gateway_images_total', help: 'images served', registers: [this.registry] })
  readonly attempts = new Counter({ name: 'heurist_gateway_miner_attempts_total', help: 'jobs sent to miners by outcome (ok, error, timeout, aborted, skipped)', labelNames: ['miner', 'outcome'] as const, registers: [this.registry] })
  readonly inFlight = new Gauge({ name: 'heurist_gateway_jobs_in_flight', help: 'jobs being served now, by model', labelNames: ['model'] as const, registers: [this.registry] })
  /** Non-200 answers by status and reason (the error code the client got; `stream_error` when a stream ended in an error event). */
  readonly errors = new Counter({ name: 'heurist_gateway_request_errors_total', help: 'requests that did not succeed, by endpoint, status and reason (the error code)', labelNames: ['endpoint', 'status', 'reason'] as const, registers: [this.registry] })
  readonly queueDepth = new Gauge({ name: 'heurist_gateway_queue_depth', help: 'requests waiting for a miner with room, by model', labelNames: ['model'] as const, registers: [this.registry] })
  readonly queueWait = new Histogram({ name: 'heurist_gateway_queue_wait_seconds', help: 'time a request waited for a miner with room (0 when one had room at once)', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [this.registry] })
  readonly queueRejected = new Counter({ name: 'heurist_gateway_queue_rejected_total', help: 'requests refused with 429 because the model\'s queue (or the key\'s share of it) was full', labelNames: ['model'] as const, registers: [this.registry] })
  readonly minerInFlight = new Gauge({ name: 'heurist_gateway_miner_in_flight', help: 'this gateway\'s jobs on each miner now (at most 2 × its advertised maxJobs)', labelNames: ['miner'] as const, registers: [this.registry] })
  readonly busy = new Counter({ name: 'heurist_gateway_miner_busy_total', help: 'busy replies from miners (full; not a failure)', labelNames: ['miner'] as const, registers: [this.registry] })
  readonly spent = new Counter({ name: 'heurist_gateway_paid_wei_total', help: 'HEU wei promised to miners in vouchers (as a float)', registers: [this.registry] })

  async text (): Promise<string> {
    return await this.registry.metrics()
  }
}
