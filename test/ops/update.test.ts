import { describe, it, expect, afterEach } from 'vitest'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { compareVersions } from '../../src/ops/index.js'
import { runCli } from '../helpers.js'

const CURRENT = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

/** A local HTTP server standing in for the npm registry: GET /heurist answers `doc`. */
async function registry (status: number, doc: unknown): Promise<{ url: string, paths: string[], close: () => Promise<void> }> {
  const paths: string[] = []
  const server: Server = createServer((req, res) => {
    paths.push(req.url ?? '')
    res.writeHead(status, { 'content-type': 'application/json' }).end(typeof doc === 'string' ? doc : JSON.stringify(doc))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths, close: async () => { server.closeAllConnections(); await new Promise<void>(resolve => server.close(() => { resolve() })) } }
}

const closers: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of closers.splice(0)) await c() })

describe('heurist update check', () => {
  it('reports a newer published version with its changelog line, read from the registry in update.registry', async () => {
    const reg = await registry(200, { name: 'heurist', 'dist-tags': { latest: '9.1.0' }, versions: { [CURRENT]: {}, '9.1.0': { version: '9.1.0', heurist: { changelog: 'faster claims' } } } })
    closers.push(reg.close)
    const r = await runCli(['update', 'check', '--json'], { env: { HEURIST_UPDATE_REGISTRY: reg.url } })
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ current: CURRENT, latest: '9.1.0', updateAvailable: true, changelog: 'faster claims', install: 'npm install -g heurist@9.1.0' })
    expect(reg.paths).toEqual(['/heurist'])
    const human = await runCli(['update', 'check'], { env: { HEURIST_UPDATE_REGISTRY: reg.url } })
    expect(human.stdout).toContain('heurist 9.1.0 is out')
    expect(human.stdout).toContain('faster claims')
  })

  it('says this version is the newest when the registry\'s latest is not above it', async () => {
    const reg = await registry(200, { 'dist-tags': { latest: CURRENT }, versions: { [CURRENT]: {} } })
    closers.push(reg.close)
    const r = await runCli(['update', 'check', '--json'], { env: { HEURIST_UPDATE_REGISTRY: reg.url } })
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ latest: CURRENT, updateAvailable: false, install: null })
  })

  it('offline: a clear one-line error and exit 1', async () => {
    const reg = await registry(200, {})
    const url = reg.url
    await reg.close() // nothing listens there now
    const r = await runCli(['update', 'check'], { env: { HEURIST_UPDATE_REGISTRY: url } })
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toContain(`cannot reach the npm registry at ${url}`)
  })

  it('a registry answer that is not a package document is refused (exit 1), as is an unpublished package', async () => {
    const junk = await registry(200, '<html>captive portal</html>')
    closers.push(junk.close)
    const r = await runCli(['update', 'check'], { env: { HEURIST_UPDATE_REGISTRY: junk.url } })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('dist-tags.latest')
    const missing = await registry(404, { error: 'not found' })
    closers.push(missing.close)
    const m = await runCli(['update', 'check'], { env: { HEURIST_UPDATE_REGISTRY: missing.url } })
    expect(m.code).toBe(1)
    expect(m.stderr).toContain('not published')
  })

  it('orders versions as semver does', () => {
    const rows: Array<[string, string, number]> = [
      ['0.1.0', '0.1.0', 0], ['0.2.0', '0.10.0', -1], ['1.0.0', '0.99.99', 1],
      ['1.0.0-rc.1', '1.0.0', -1], ['1.0.0-rc.2', '1.0.0-rc.10', -1], ['1.0.0-alpha', '1.0.0-alpha.1', -1], ['1.0.0-beta', '1.0.0-alpha', 1]
    ]
    for (const [a, b, want] of rows) expect([a, b, compareVersions(a, b)]).toEqual([a, b, want])
  })
})
