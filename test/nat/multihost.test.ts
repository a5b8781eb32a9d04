import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { makeLan, netnsUnavailable } from './netns.mjs'
import { BIN, NsProc, poll, spawnIn } from './procs.js'
import { runCli, tempDir } from '../helpers.js'

/**
 * Four hosts on one private LAN (network namespaces on a bridge, made and torn down here),
 * one role each — chain, miner, validator, gateway — set up only with the commands of
 * docs/multi-host.md, read from its numbered steps' code blocks (the last test checks that
 * every one ran), the validator bootstrapped to the miner alone (issue 22). Chat,
 * streaming and image requests through the gateway are answered; the validator fetches the
 * gateway's transcripts (finding it through the miner) and passes its jobs; `peers` on the
 * chain host lists the miner with LAN addresses only; an epoch closes by the clock; the
 * miner redeems its vouchers when it stops. Needs root: anywhere else it fails with the
 * reason, unless HEURIST_SKIP_NETNS=1 says to skip on purpose (as the NAT test).
 */

const unavailable = netnsUnavailable()
const skipOnPurpose = process.env.HEURIST_SKIP_NETNS === '1'
const password = 'multihost-test-password'
const EPOCH_SECONDS = 60

/**
 * The commands of docs/multi-host.md, by step: every line of each numbered step's ```sh
 * blocks (a trailing backslash joins lines). The test runs these, with the placeholders
 * filled in, and checks at the end that it ran every one.
 */
function docSteps (): Map<number, string[]> {
  const doc = readFileSync(new URL('../../docs/multi-host.md', import.meta.url), 'utf8')
  const steps = new Map<number, string[]>()
  const sections = doc.split(/^## /m).slice(1)
  for (const sec of sections) {
    const n = /^(\d+)\. /.exec(sec)
    if (n === null) continue
    const cmds: string[] = []
    for (const block of sec.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
      for (const line of block[1]!.replace(/\s*\\\n\s*/g, ' ').split('\n')) if (line.trim() !== '') cmds.push(line.trim())
    }
    steps.set(Number(n[1]), cmds)
  }
  return steps
}

interface Host { ns: string, ip: string, home: string, address: string, peerId: string, env: NodeJS.ProcessEnv }

/** Runs one heurist command inside a host, bounded; its JSON stdout line (no `level` key) and the exit code. */
async function cli (h: Host, name: string, args: string[], timeoutMs = 120_000): Promise<{ code: number | null, out: Record<string, unknown> | null, raw: string }> {
  const p = spawnIn(h.ns, name, process.execPath, [BIN, '--json', ...args], h.env)
  const timer = setTimeout(() => { p.child.kill('SIGKILL') }, timeoutMs)
  const code = await new Promise<number | null>(resolve => { p.child.on('close', c => { resolve(c) }) })
  clearTimeout(timer)
  const out = [...p.lines].reverse().find(l => !('level' in l)) ?? null
  return { code, out, raw: p.raw.slice(-20).join('\n') }
}

/** An HTTP request made from inside a host (the vitest process is on no LAN). */
async function httpIn (ns: string, url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number, text: string }> {
  const script = `const [u, b, h] = process.argv.slice(1); const r = await fetch(u, b === '' ? { headers: JSON.parse(h) } : { method: 'POST', headers: { 'content-type': 'application/json', ...JSON.parse(h) }, body: b, signal: AbortSignal.timeout(90000) }); process.stdout.write(JSON.stringify({ status: r.status, text: await r.text() }))`
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script, url, body === undefined ? '' : JSON.stringify(body), JSON.stringify(headers)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 100_000)
  await new Promise<void>(resolve => { child.on('close', () => { resolve() }) })
  clearTimeout(timer)
  if (out === '') throw new Error(`request to ${url} from ${ns} failed: ${err.slice(-500)}`)
  return JSON.parse(out) as { status: number, text: string }
}

/** A shell command line run inside a host, bounded: its exit code and stdout. */
async function shIn (ns: string, line: string, timeoutMs = 100_000): Promise<{ code: number | null, out: string, err: string }> {
  const child = spawn('ip', ['netns', 'exec', ns, 'sh', '-c', line], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  const code = await new Promise<number | null>(resolve => { child.on('close', c => { resolve(c) }) })
  clearTimeout(timer)
  return { code, out, err }
}

if (unavailable !== null) {
  describe('four hosts on a LAN (network namespaces)', () => {
    it(skipOnPurpose ? `NOT RUN on purpose (HEURIST_SKIP_NETNS=1): ${unavailable}` : 'can make network namespaces', () => {
      if (!skipOnPurpose) throw new Error(`the multi-host test cannot run here: ${unavailable}`)
      console.warn(`[nat] multi-host test NOT RUN (HEURIST_SKIP_NETNS=1): ${unavailable}`)
    })
  })
} else {
  describe('four hosts on a LAN (network namespaces), set up from docs/multi-host.md', () => {
    let lan: ReturnType<typeof makeLan> | null = null
    const cleanups: Array<() => Promise<void>> = []
    const procs: NsProc[] = []
    const hosts: Record<'chain' | 'miner' | 'validator' | 'gateway', Host> = {} as never
    let bootstrap = ''
    let apiKey = ''
    let baseUrl = ''
    let miner!: NsProc
    let validator!: NsProc
    let gateway!: NsProc
    const steps = docSteps()
    const used = new Set<string>()
    let fill: (cmd: string) => string = cmd => cmd
    /** The doc's command of `step` that starts with `start`, placeholders filled, as it reads. */
    const docLine = (step: number, start: string): string => {
      const hits = (steps.get(step) ?? []).filter(c => c.startsWith(start))
      if (hits.length !== 1) throw new Error(`docs/multi-host.md step ${step}: ${hits.length} commands start with "${start}"`)
      used.add(`${step}: ${hits[0]!}`)
      const filled = fill(hits[0]!)
      const left = /0x[A-Z_]+ADDRESS|[A-Z]+_PEER_ID|hk-\.\.\./.exec(filled)
      if (left !== null) throw new Error(`step ${step}: placeholder ${left[0]} not filled in "${filled}"`)
      return filled
    }
    /** A heurist command of the doc as argv (its commands have no quoting): "heurist X ..." → ["X", ...]. */
    const docArgs = (step: number, start: string): string[] => {
      const words = docLine(step, `heurist ${start}`).split(/\s+/)
      return words.slice(1)
    }

    beforeAll(async () => {
      lan = makeLan(['chain', 'miner', 'validator', 'gateway'])
      // step 1 (every host): heurist init — the operator key, its address and PeerId
      for (const role of ['chain', 'miner', 'validator', 'gateway'] as const) {
        const t = await tempDir(`heurist-mh-${role}-`)
        cleanups.push(t.cleanup)
        const env = { HEURIST_HOME: t.dir, HEURIST_PASSWORD: password, HEURIST_LOG_FORMAT: 'json', HEURIST_INFERENCE_THREADS: '1', HEURIST_INFERENCE_GPU: 'cpu', HEURIST_MINE_ADVERT_INTERVAL_MS: '1000', HEURIST_DASHBOARD_ENABLED: 'false', HEURIST_PODS_HOST: 'false' }
        const init = await runCli([...docArgs(1, 'init'), '--kdf-cost', '10', '--json'], { env })
        expect(init.code, init.stderr).toBe(0)
        const id = JSON.parse(init.stdout) as { address: string, peerId: string }
        hosts[role] = { ns: lan.ns[role], ip: lan.ips[role], home: t.dir, address: id.address, peerId: id.peerId, env }
        // whoami prints the same address and PeerId again
        const who = await cli(hosts[role], 'whoami', docArgs(1, 'whoami'))
        expect(who.code, who.raw).toBe(0)
        expect(who.out).toMatchObject({ address: id.address, peerId: id.peerId })
      }
      const { chain, miner: m, validator: v, gateway: g } = hosts
      // the doc's example LAN is the test's
      expect([chain.ip, m.ip, v.ip, g.ip]).toEqual(['10.232.0.1', '10.232.0.2', '10.232.0.3', '10.232.0.4'])
      fill = cmd => cmd.replaceAll('0xMINER_ADDRESS', m.address).replaceAll('0xVALIDATOR_ADDRESS', v.address).replaceAll('0xGATEWAY_ADDRESS', g.address)
        .replaceAll('MINER_PEER_ID', m.peerId).replaceAll('hk-...', apiKey === '' ? 'hk-...' : apiKey)

      // step 2 (chain host): the devnet on every interface, funding the other hosts' keys
      const devnet = spawnIn(chain.ns, 'devnet', process.execPath, [BIN, '--json', ...docArgs(2, 'devnet')], chain.env)
      procs.push(devnet)
      await devnet.waitLine(l => typeof l.rpcUrl === 'string', 120_000, 'devnet ready')

      // step 3 (miner, validator, gateway hosts): import the deployment from the chain host
      for (const h of [m, v, g]) {
        const r = await cli(h, 'import', docArgs(3, 'deployment import'))
        expect(r.code, r.raw).toBe(0)
      }

      // step 4: the miner registers and starts first, with no bootstrap
      const reg = await cli(m, 'register', docArgs(4, 'register'))
      expect(reg.code, reg.raw).toBe(0)
      miner = spawnIn(m.ns, 'miner', process.execPath, [BIN, '--json', ...docArgs(4, 'mine')], m.env)
      procs.push(miner)
      bootstrap = `/ip4/${m.ip}/tcp/4021/p2p/${m.peerId}`

      // step 5: the validator stakes and joins through the miner alone
      const vreg = await cli(v, 'register', docArgs(5, 'register'))
      expect(vreg.code, vreg.raw).toBe(0)
      // step 6: the gateway's funded API key
      const key = await cli(g, 'keys', docArgs(6, 'gateway keys create'))
      expect(key.code, key.raw).toBe(0)
      expect(key.out?.backedBy).not.toBeNull()
      apiKey = String(key.out!.apiKey)

      await miner.waitLine(l => l.msg === 'miner ready', 180_000, '"miner ready"')
      validator = spawnIn(v.ns, 'validator', process.execPath, [BIN, '--json', ...docArgs(5, 'validate')], v.env)
      procs.push(validator)
      gateway = spawnIn(g.ns, 'gateway', process.execPath, [BIN, '--json', ...docArgs(6, 'gateway --host')], g.env)
      procs.push(gateway)
      await validator.waitLine(l => l.msg === 'validator ready', 180_000, '"validator ready"')
      await gateway.waitLine(l => typeof l.baseUrl === 'string', 120_000, 'gateway ready')
      baseUrl = `http://${g.ip}:8080/v1`
      const listed = await poll(async () => {
        const r = await httpIn(chain.ns, `${baseUrl}/models`, undefined, { authorization: `Bearer ${apiKey}` })
        return r.status === 200 && r.text.includes('tiny-llama') && r.text.includes('tiny-sd') ? r : undefined
      }, 60_000, 1000)
      if (listed === undefined) throw new Error(`the gateway never listed the miner's models; gateway output:\n${gateway.raw.slice(-15).join('\n')}`)
    }, 600_000)

    afterAll(async () => {
      await Promise.allSettled(procs.map(async p => { await p.stop() }))
      lan?.teardown()
      for (const c of cleanups) await c().catch(() => {})
    }, 60_000)

    it('the miner advertises its LAN address with its PeerId, never loopback', () => {
      const ready = miner.lines.find(l => l.msg === 'miner ready')!
      const addrs = ready.addrs as string[]
      expect(addrs).toContain(bootstrap)
      expect(addrs.filter(a => a.includes('/127.'))).toEqual([])
    })

    it('step 7, the doc\'s curl commands: chat, streaming and image requests through the gateway are answered (a client on the chain host)', async () => {
      const chat = await shIn(hosts.chain.ns, docLine(7, 'curl -sS http://10.232.0.4:8080/v1/chat/completions'))
      expect(chat.code, chat.err).toBe(0)
      expect((JSON.parse(chat.out) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content.length, chat.out).toBeGreaterThan(0)
      const stream = await shIn(hosts.chain.ns, docLine(7, 'curl -sS -N '))
      expect(stream.code, stream.err).toBe(0)
      const events = stream.out.split('\n').filter(l => l.startsWith('data: '))
      expect(events.length, stream.out).toBeGreaterThan(2)
      expect(events.at(-1)).toBe('data: [DONE]')
      expect((JSON.parse(events[0]!.slice(6)) as { object: string }).object).toBe('chat.completion.chunk')
      const image = await shIn(hosts.chain.ns, docLine(7, 'curl -sS http://10.232.0.4:8080/v1/images/generations'))
      expect(image.code, image.err).toBe(0)
      const png = Buffer.from((JSON.parse(image.out) as { data: Array<{ b64_json: string }> }).data[0]!.b64_json, 'base64')
      expect(png.subarray(1, 4).toString()).toBe('PNG')
      // two more chats (a different seed each) so the validator has several jobs to judge
      for (let i = 1; i < 3; i++) {
        const more = await httpIn(hosts.chain.ns, `${baseUrl}/chat/completions`, { model: 'tiny-llama', messages: [{ role: 'user', content: `Hello ${i}` }], max_tokens: 12, seed: i }, { authorization: `Bearer ${apiKey}` })
        expect(more.status, more.text).toBe(200)
      }
    }, 300_000)

    it('/health counts the miner once (it serves two models); /metrics is refused to another host', async () => {
      const health = await httpIn(hosts.chain.ns, `http://${hosts.gateway.ip}:8080/health`, undefined)
      expect(health.status).toBe(200)
      expect(JSON.parse(health.text)).toMatchObject({ status: 'ok', models: 2, miners: 1 })
      const metrics = await httpIn(hosts.chain.ns, `http://${hosts.gateway.ip}:8080/metrics`, undefined)
      expect(metrics.status).toBe(403)
      expect(metrics.text).not.toContain('heurist_')
    }, 60_000)

    it('the validator, bootstrapped to the miner alone, fetches the gateway\'s transcripts and passes the jobs', async () => {
      const passed = await validator.waitLine(l => l.msg === 'validator status' && Number(l.passed) > 0, 120_000, 'a passed check')
      expect(Number(passed.failed)).toBe(0)
    }, 150_000)

    it('peers --json on the chain host lists the miner with LAN addresses only', async () => {
      const r = await cli(hosts.chain, 'peers', docArgs(8, 'peers'))
      expect(r.code, r.raw).toBe(0)
      const m = (r.out!.miners as Array<{ peerId: string, addrs: string[] }>).find(x => x.peerId === hosts.miner.peerId)
      expect(m).toBeDefined()
      expect(m!.addrs.length).toBeGreaterThan(0)
      for (const a of m!.addrs) expect(a).toMatch(/^\/ip4\/10\.232\.0\.2\/tcp\/4021/)
    }, 90_000)

    it('doctor on the validator host: the chain RPC checks out and peers on the LAN reach it directly', async () => {
      const r = await cli(hosts.validator, 'doctor', docArgs(8, 'doctor'), 120_000)
      const checks = r.out!.checks as Array<{ name: string, status: string, detail: string, data?: { status?: string } }>
      expect(checks.find(c => c.name === 'chain-rpc')).toMatchObject({ status: 'ok' })
      const reach = checks.find(c => c.name === 'reachability')!
      expect(reach.status, reach.detail).toBe('ok')
      expect(reach.data?.status).toBe('private-direct')
    }, 150_000)

    it('an epoch closes by the clock (no transaction needed) and the validator signs its reward table', async () => {
      const closed = await validator.waitLine(l => l.msg === 'epochs: reward table signed' && l.epoch === '0', (EPOCH_SECONDS + 90) * 1000, 'epoch 0 closed')
      expect(closed.epoch).toBe('0')
      const st = await cli(hosts.gateway, 'status', docArgs(8, 'status'))
      expect(st.code, st.raw).toBe(0)
      expect(Number(st.out!.epoch)).toBeGreaterThanOrEqual(1)
    }, 200_000)

    it('the miner stops cleanly and redeems its vouchers in Payments', async () => {
      // Ctrl-C: running jobs drain, what the gateway owes is redeemed, then it exits
      const exited = new Promise<number | null>(resolve => { if (miner.exited !== null) resolve(miner.exited); else miner.child.once('exit', c => { resolve(c) }) })
      miner.child.kill('SIGINT')
      const code = await Promise.race([exited, new Promise<string>(resolve => setTimeout(() => { resolve('timeout') }, 60_000))])
      expect(code, miner.raw.slice(-10).join('\n')).toBe(0)
      const summary = [...miner.lines].reverse().find(l => !('level' in l) && 'redeemed' in l)
      expect(summary, miner.raw.slice(-10).join('\n')).toBeDefined()
      expect(BigInt(String(summary!.redeemed))).toBeGreaterThan(0n)
    }, 90_000)

    it('the test ran every command of every numbered step of docs/multi-host.md', () => {
      const all = [...steps].flatMap(([n, cmds]) => cmds.map(c => `${n}: ${c}`))
      expect(steps.size).toBeGreaterThanOrEqual(8)
      expect(all.filter(c => !used.has(c))).toEqual([])
    })
  })
}
