import type { HeuristConfig } from '../core/config.js'
import type { GatewayOptions } from '../gateway/index.js'

/** The gateway's load bounds from config (gateway.queueMax, queueMaxPerKey, connectionsPerIp), for `gateway` and `up`. */
export function gatewayLoadOptions (config: HeuristConfig): Pick<GatewayOptions, 'queue' | 'connections'> {
  return {
    queue: { maxQueued: config.gateway.queueMax, maxQueuedPerKey: config.gateway.queueMaxPerKey },
    connections: { perIp: config.gateway.connectionsPerIp }
  }
}
