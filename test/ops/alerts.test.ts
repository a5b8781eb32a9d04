import { describe, it, expect, afterEach } from 'vitest'
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseEther, toBeHex } from 'ethers'
import { AlertSender, NodeWatch, type Alert } from '../../src/ops/index.js'
import { silentLogger } from '../../src/core/logger.js'
import { isHeuristError } from '../../src/core/errors.js'
import { startDevnet, connectChain, type Devnet, type ChainClient } from '../../src/chain/index.js'
import { runCli, tempDir } from '../helpers.js'
import { testNode, until } from '../p2p/util.js'

/** A real HTTP receiver: records every POST body; `answer` picks each reply's status (or null: never answer). */
async function receiver (answer: (n: number) => number | null = () => 204): Promise<{ url: string, got: Alert[], attempts: number, close: () => Promise<void> }> {
  const state = { got: [] as Alert[], attempts: 0 }
  const hung: ServerResponse[] = []
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => {
      const status = answer(++state.attempts)
      if (status === null) { hung.push(res); return }
      if (status >= 200 && status < 300) state.got.push(JSON.parse(body) as Alert)
      res.writeHead(status).end()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/hook`,
    get got () { return state.got },
    get attempts () { return state.attempts },
    close: async () => { for (const r of hung) r.destroy(); server.closeAllConnections(); await new Promise<void>(resolve => server.close(() => { resolve() })) }
  }
}

const stops: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => {})
  stops.length = 0
})

describe('alert webhook sender', () => {
  it('retries a failing receiver with backoff and delivers the same alert (same id) once it answers 2xx', async () => {
    const r = await receiver(n => n <= 2 ? 503 : 204)
    stops.push(r.close)
    const s = new AlertSender({ url: r.url, node: '0xabc', role: 'mine', logger: silentLogger(), version: 'test' }, { baseDelayMs: 50, maxDelayMs: 200 })
    stops.push(() => { s.stop() })
    const t0 = Date.now()
    s.raise('gas_low', 'low gas', { balanceWei: '1' })
    await s.flush(10_000)
    expect(r.attempts).toBe(3)
    expect(r.got).toHaveLength(1)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(50 + 100) // two backoff waits: 50 ms, then 100 ms
    expect(r.got[0]).toMatchObject({ v: 1, kind: 'gas_low', severity: 'warning', node: '0xabc', role: 'mine', message: 'low gas', data: { balanceWei: '1' } })
    expect(s.stats).toMatchObject({ sent: 1, failedAttempts: 2, dropped: 0 })
  })

  it('never blocks the caller: with a receiver that never answers, raising 300 alerts returns at once and the queue stays bounded', async () => {
    const r = await receiver(() => null)
    stops.push(r.close)
    const s = new AlertSender({ url: r.url, node: '0xabc', role: 'mine', logger: silentLogger(), version: 'test' }, { maxQueue: 10, timeoutMs: 60_000 })
    stops.push(() => { s.stop() })
    const t0 = performance.now()
    for (let i = 0; i < 300; i++) s.raise('idle', `idle ${i}`)
    expect(performance.now() - t0).toBeLessThan(1000)
    expect(s.stats.queued).toBe(10)
    expect(s.stats.dropped).toBe(290)
  })

  it('gives up on an alert after maxAttempts and goes on with the next', async () => {
    const r = await receiver(n => n <= 2 ? 500 : 204)
    stops.push(r.close)
    const s = new AlertSender({ url: r.url, node: '0xabc', role: 'mine', logger: silentLogger(), version: 'test' }, { maxAttempts: 2, baseDelayMs: 10 })
    stops.push(() => { s.stop() })
    s.raise('idle', 'first')
    s.raise('idle', 'second')
    await s.flush(10_000)
    expect(r.got.map(a => a.message)).toEqual(['second'])
    expect(s.stats).toMatchObject({ sent: 1, dropped: 1 })
  })

  it('refuses a webhook that is not http(s)', () => {
    expect(() => new AlertSender({ url: 'file:///etc/passwd', node: '0x', role: 'mine', logger: silentLogger(), version: 'test' })).toThrow(/http/)
  })
})

describe('node watch on the devnet: each alert reaches the webhook', () => {
  let devnet: Devnet
  let chain: ChainClient

  async function rpc (method: string, params: unknown[]): Promise<unknown> {
    return await devnet.request(method, params)
  }

  it('slashed, gas below minimum, claim failed, idle, reachability lost', async () => {
    devnet = await startDevnet({ port: 0 })
    stops.push(async () => { await devnet.stop() })
    const d = devnet.deployment
    const minerWallet = devnet.accounts[2]!
    chain = await connectChain({ deployment: d, signer: minerWallet })
    stops.push(() => { chain.close() })
    await chain.register(BigInt(d.params.minCollateral))
    const r = await receiver()
    stops.push(r.close)
    const alerts = new AlertSender({ url: r.url, node: minerWallet.address, role: 'mine', logger: silentLogger(), version: 'test' }, { baseDelayMs: 20 })
    stops.push(() => { alerts.stop() })

    // reachability from real libp2p nodes: a relay, and a private miner holding a reservation on it
    const relay = await testNode({ reachability: { relay: 'on' } })
    stops.push(async () => { await relay.stop(0) })
    const miner = await testNode({ bootstrap: [relay.multiaddrs()[0]!], reachability: { relay: 'off', reservations: 1 } })
    stops.push(async () => { await miner.stop(0) })
    expect(await until(() => miner.reachability.report().status === 'private-via-relay', 30_000)).toBe(true)

    let jobs = 0
    const watch = new NodeWatch({ alerts, logger: silentLogger(), operator: minerWallet.address, chain, jobsArrived: () => jobs, advertising: () => true, reachability: miner.reachability }, { minEthWei: parseEther('1'), idleMs: 300, pollMs: 60_000 })
    await watch.start()
    stops.push(() => { watch.stop() })

    // gas: the operator holds 0.5 ETH, under the 1 ETH minimum
    await rpc('hardhat_setBalance', [minerWallet.address, toBeHex(parseEther('0.5'))])
    // slashed: NodeRegistry.slash as the Slashing contract (its only caller) emits the real event
    const slasher = d.contracts.Slashing
    await rpc('hardhat_impersonateAccount', [slasher])
    await rpc('hardhat_setBalance', [slasher, toBeHex(parseEther('1'))])
    const data = chain.contracts.nodes.interface.encodeFunctionData('slash', [minerWallet.address, 5n])
    const tx = await rpc('eth_sendTransaction', [{ from: slasher, to: d.contracts.NodeRegistry, data }]) as string
    await devnet.provider.waitForTransaction(tx)
    // idle: no job arrives for longer than idleMs
    await new Promise(resolve => setTimeout(resolve, 350))
    await watch.poll()
    // claim failed: a claim for an epoch with no root reverts on chain; the claimer reports it
    const claimErr = await chain.claim(0n, minerWallet.address, 1n, []).then(() => null, (e: unknown) => e)
    expect(isHeuristError(claimErr)).toBe(true)
    if (isHeuristError(claimErr)) watch.claimFailed(0n, claimErr.code, claimErr.message)
    // reachability lost: the relay goes away, and with it the reservation
    await relay.stop(0)
    expect(await until(() => miner.reachability.report().status === 'unreachable', 30_000)).toBe(true)
    await watch.poll()

    await alerts.flush(10_000)
    const kinds = r.got.map(a => a.kind).sort()
    expect(kinds).toEqual(['claim_failed', 'gas_low', 'idle', 'reachability_lost', 'slashed'])
    const byKind = Object.fromEntries(r.got.map(a => [a.kind, a]))
    expect(byKind.slashed!.data).toMatchObject({ amountWei: '5', tx })
    expect(byKind.slashed!.severity).toBe('critical')
    expect(byKind.gas_low!.data).toMatchObject({ balanceWei: parseEther('0.5').toString(), minWei: parseEther('1').toString() })
    expect(byKind.reachability_lost!.data).toMatchObject({ was: 'private-via-relay' })
    expect(String(byKind.claim_failed!.data.reason).length).toBeGreaterThan(0)

    // each condition alerts once: a second round with nothing new sends nothing more
    await watch.poll()
    await alerts.flush(5000)
    expect(r.got).toHaveLength(5)
    // a job re-arms idle
    jobs++
    await watch.poll()
    await new Promise(resolve => setTimeout(resolve, 350))
    await watch.poll()
    await alerts.flush(5000)
    expect(r.got.filter(a => a.kind === 'idle')).toHaveLength(2)
  }, 120_000)
})

describe('node watch: pods that fail to load', () => {
  it('each new failed event of the pod host alerts model_load_failed once; events from before the watch started do not', async () => {
    const r = await receiver()
    stops.push(r.close)
    const alerts = new AlertSender({ url: r.url, node: '0xminer', role: 'mine', logger: silentLogger(), version: 'test' }, { baseDelayMs: 20 })
    stops.push(() => { alerts.stop() })
    // the pod host's event list (PodManager.events: bounded, newest last)
    const events: Array<{ pod: string, name: string, event: string, reason?: string }> = [{ pod: 'a'.repeat(64), name: 'old', event: 'failed', reason: 'before the watch' }]
    const watch = new NodeWatch({ alerts, logger: silentLogger(), operator: '0x' + '1'.repeat(40), chain: null, jobsArrived: null, advertising: () => false, reachability: null, podEvents: () => events }, { pollMs: 60_000 })
    await watch.start()
    stops.push(() => { watch.stop() })
    events.push({ pod: 'b'.repeat(64), name: 'big-model', event: 'pulling' }, { pod: 'b'.repeat(64), name: 'big-model', event: 'failed', reason: 'sha256 mismatch' })
    await watch.poll()
    await watch.poll()
    await alerts.flush(5000)
    expect(r.got.map(a => [a.kind, a.data.code, a.data.reason])).toEqual([['model_load_failed', 'PODS_LOAD_FAILED', 'sha256 mismatch']])
    expect(r.got[0]!.message).toContain('big-model')
  })
})

describe('heurist mine: a model that fails to load', () => {
  it('posts model_load_failed to alerts.webhook and exits 1', async () => {
    const { dir, cleanup } = await tempDir('heurist-alert-mine-')
    stops.push(cleanup)
    const r = await receiver()
    stops.push(r.close)
    const env = { HEURIST_PASSWORD: 'pw-for-tests', HEURIST_ALERTS_WEBHOOK: r.url, HEURIST_LOG_LEVEL: 'warn' }
    const init = await runCli(['init', '--home', dir, '--json', '--kdf-cost', '10'], { env })
    expect(init.code, init.stderr).toBe(0)
    const bad = join(dir, 'broken.gguf')
    await writeFile(bad, Buffer.from('GGUF this is not a model'))
    const mine = await runCli(['mine', '--home', dir, '--json', '--models', bad, '--listen', '/ip4/127.0.0.1/tcp/0'], { env, timeoutMs: 60_000 })
    expect(mine.code, mine.stderr).toBe(1)
    expect(r.got.map(a => a.kind)).toEqual(['model_load_failed'])
    expect(r.got[0]!.data.model).toBe(bad)
    expect(r.got[0]!.node).toBe((JSON.parse(init.stdout) as { address: string }).address)
  }, 90_000)
})
