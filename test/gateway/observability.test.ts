import { describe, it, expect, afterEach } from 'vitest'
import OpenAI from 'openai'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { Accounts, createGateway, type Gateway, type GatewayService } from '../../src/gateway/index.js'
import { nodeSource } from '../../src/dashboard/index.js'
import { tempDir } from '../helpers.js'
import { scriptedBackend, miner } from './fixtures.js'

/**
 * What operators see: the gateway's /metrics counts answers by status and reason, and the
 * dashboard's failed-jobs figure counts the requests the gateway failed (it used to read 0
 * while the gateway answered hundreds of 502s and 503s).
 */
let gw: Gateway | null = null
let store: Store | null = null
let cleanup: (() => Promise<void>) | null = null
afterEach(async () => { await gw?.stop(); await store?.close(); await cleanup?.(); gw = null; store = null; cleanup = null })

describe('gateway observability', () => {
  it('failed requests show in /metrics by status and reason and in the dashboard\'s failed count; /health and /v1/models are not jobs', async () => {
    const t = await tempDir('heurist-gw-obs-')
    cleanup = t.cleanup
    store = await Store.open(t.dir)
    const accounts = new Accounts(store)
    const { apiKey } = await accounts.create(10n ** 18n)
    const bad = miner('bad', { mode: 'fail' })
    gw = createGateway({ backend: scriptedBackend([bad]), accounts, logger: silentLogger(), vouchers: null, transcripts: null }, { port: 0, breaker: { failureThreshold: 100 } })
    await gw.start()
    const client = new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 10_000 })
    for (let i = 0; i < 3; i++) {
      await expect(client.chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 502, code: 'miner_failed' })
    }
    await expect(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 404 })
    bad.mode = 'ok'
    await client.chat.completions.create({ model: 'scripted-llm', messages: [{ role: 'user', content: 'hi' }] })
    await client.models.list()
    await fetch(`${gw.url}/health`)

    const m = await (await fetch(`${gw.url}/metrics`)).text()
    expect(m).toContain('heurist_gateway_request_errors_total{endpoint="/v1/chat/completions",status="502",reason="miner_failed"} 3')
    expect(m).toContain('heurist_gateway_request_errors_total{endpoint="/v1/chat/completions",status="404",reason="model_not_found"} 1')
    expect(m).toContain('heurist_gateway_queue_depth')

    const snap = await nodeSource({ role: 'gateway', miners: [], gateway: { gateway: gw } as unknown as GatewayService, chain: null }).snapshot()
    expect(snap.jobs.failed).toBe(3)
    expect(snap.jobs.served).toBe(1)
  })
})
