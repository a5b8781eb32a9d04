import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { connect, type Socket } from 'node:net'
import { startTinyMesh, type TinyMesh, type TinyGateway } from '../gateway/load-fixture.js'
import { until } from '../p2p/util.js'

/**
 * Attacks on the gateway's HTTP layer by a client with no key or a cheap one, end to end on a
 * real server in front of a real tiny-llama miner:
 * - slowloris: hundreds of connections that dribble their headers, to exhaust descriptors and
 *   lock out `/health` and honest clients;
 * - a huge body behind a bad key, to make the gateway buffer a megabyte per connection before
 *   it checks who is asking.
 * The attacker gains nothing (its sockets are closed, nothing is read), the honest client loses
 * nothing (served, charged exactly its cost).
 */
let mesh: TinyMesh
let g: TinyGateway

beforeAll(async () => {
  mesh = await startTinyMesh({ miners: 1, slots: 2 })
  g = await mesh.addGateway({ headersTimeoutMs: 1500, connections: { perIp: 64, total: 512 } })
})
afterAll(async () => { await mesh?.stop() })

function slowSocket (port: number): { socket: Socket, closed: Promise<void> } {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  const closed = new Promise<void>(resolve => { socket.once('close', () => { resolve() }) })
  socket.once('connect', () => { socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nX-Slow: ') })
  return { socket, closed }
}

describe('hostile HTTP clients', () => {
  it('slowloris: 400 dribbling connections never hold more than the per-IP bound, are cut at the header timeout, and /health and an honest request are served meanwhile', async () => {
    const port = g.gateway.port
    const slow = Array.from({ length: 400 }, () => slowSocket(port))
    // keep dribbling one header byte every 200 ms
    const drip = setInterval(() => { for (const s of slow) if (!s.socket.destroyed) s.socket.write('a') }, 200)
    try {
      expect(await until(() => slow.every(s => s.socket.destroyed || s.socket.readyState === 'open'), 10_000, 20)).toBe(true)
      // the server holds at most its per-IP bound of them (the rest were evicted or refused)
      expect(g.gateway.connections!.open).toBeLessThanOrEqual(64)

      const t0 = Date.now()
      const health = await fetch(`${g.gateway.url}/health`, { signal: AbortSignal.timeout(5000) })
      expect(health.status).toBe(200)
      expect(Date.now() - t0).toBeLessThan(5000)

      const credits = 10n ** 18n
      const honest = await g.accounts.create(credits)
      const r = await fetch(`${g.gateway.url}/v1/chat/completions`, { method: 'POST', signal: AbortSignal.timeout(30_000), headers: { authorization: `Bearer ${honest.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: mesh.model.name, messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 }) })
      expect(r.status).toBe(200)
      expect(await until(() => g.jobs.length === 1, 5000, 20)).toBe(true)
      const h = await g.accounts.lookup(honest.apiKey)
      expect(h!.credits).toBe(credits - g.jobs[0]!.cost)

      // every dribbling connection is closed by the server: evicted, or cut at the 1.5 s header timeout
      const allClosed = await Promise.race([Promise.all(slow.map(async s => await s.closed)).then(() => true), new Promise<boolean>(resolve => setTimeout(() => { resolve(false) }, 15_000))])
      expect(allClosed).toBe(true)
      expect(g.gateway.connections!.stats.evicted + g.gateway.connections!.stats.refused).toBeGreaterThan(0)
    } finally {
      clearInterval(drip)
      for (const s of slow) s.socket.destroy()
    }
  })

  it('a bad key with a 1 MB body is refused 401 before the body is read: the answer comes while most of the body was never sent', async () => {
    const port = g.gateway.port
    const socket = connect(port, '127.0.0.1')
    const answer = new Promise<string>((resolve, reject) => {
      let data = ''
      socket.on('data', (d: Buffer) => { data += d.toString(); if (data.includes('\r\n\r\n')) resolve(data) })
      socket.on('error', reject)
      setTimeout(() => { reject(new Error(`no answer: ${data}`)) }, 10_000)
    })
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer hk-${'x'.repeat(43)}\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"model":`)
    const head = await answer
    socket.destroy()
    expect(head).toMatch(/^HTTP\/1\.1 401 /)
    // only 10 of the 1,000,000 body bytes were ever sent: the server did not wait for them
    const noKey = await fetch(`${g.gateway.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: mesh.model.name, messages: [{ role: 'user', content: 'x'.repeat(500_000) }] }) })
    expect(noKey.status).toBe(401)
    expect((await noKey.json() as { error: { code: string } }).error.code).toBe('missing_api_key')
  })
})
