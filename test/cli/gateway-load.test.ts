import { describe, it, expect } from 'vitest'
import { resolveConfig } from '../../src/core/config.js'
import { isHeuristError } from '../../src/core/errors.js'
import { gatewayLoadOptions } from '../../src/cli/gateway-load.js'
import { defaultQueueOptions } from '../../src/gateway/queue.js'

describe('gateway load bounds from config', () => {
  it('defaults are the queue\'s and the connection guard\'s; env overrides reach the gateway options', () => {
    expect(gatewayLoadOptions(resolveConfig({}).config)).toEqual({ queue: { maxQueued: defaultQueueOptions.maxQueued, maxQueuedPerKey: defaultQueueOptions.maxQueuedPerKey }, connections: { perIp: 256 } })
    const c = resolveConfig({ env: { HEURIST_GATEWAY_QUEUE_MAX: '64', HEURIST_GATEWAY_QUEUE_MAX_PER_KEY: '8', HEURIST_GATEWAY_CONNECTIONS_PER_IP: '32' } }).config
    expect(gatewayLoadOptions(c)).toEqual({ queue: { maxQueued: 64, maxQueuedPerKey: 8 }, connections: { perIp: 32 } })
  })

  it('a bad bound stops the program naming the key', () => {
    let err: unknown = null
    try { resolveConfig({ env: { HEURIST_GATEWAY_QUEUE_MAX: '0' } }) } catch (e) { err = e }
    expect(isHeuristError(err, 'CONFIG_BAD_VALUE')).toBe(true)
    expect((err as Error).message).toContain('gateway.queueMax')
  })
})
