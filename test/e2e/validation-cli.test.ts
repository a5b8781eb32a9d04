import { describe, it, expect, afterAll } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import OpenAI from 'openai'
import { Wallet, formatUnits } from 'ethers'
import { BIN, runCli, tempDir } from '../helpers.js'
import { connectChain, readDeployment, DEFAULT_MIN_COLLATERAL, type ChainClient } from '../../src/chain/index.js'

// The validation done-when with every part a real process on 127.0.0.1: `heurist devnet`,
// `heurist register` (miners with collateral, validators with stake), `heurist gateway keys
// create`, `heurist gateway`, an honest `heurist mine`, a `heurist mine --cheat wrong-model`
// and three `heurist validate`, each in its own home folder. Jobs go through the official
// openai client. The honest miner is paid (vouchers redeemed on SIGINT), the cheater is
// slashed by F on chain, the honest miner's collateral is untouched.

const PASSWORD = 'e2e-validation-pw'
const baseEnv = {
  HEURIST_PASSWORD: PASSWORD,
  HEURIST_LOG_FORMAT: 'json',
  HEURIST_INFERENCE_THREADS: '1',
  HEURIST_MINE_ADVERT_INTERVAL_MS: '1000',
  HEURIST_P2P_DEVNET: 'true',
  HEURIST_DASHBOARD_ENABLED: 'false',
  HEURIST_PODS_HOST: 'false'
}
const LOOPBACK = '/ip4/127.0.0.1/tcp/0'
const PRICE = 10n ** 12n // wei per compute unit (ms × GiB)

interface Proc {
  name: string
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<number | null>
  /** Resolves with the first JSON line (stdout or stderr) that `match` accepts; bounded. */
  line: (match: (j: Record<string, unknown>) => boolean, timeoutMs: number) => Promise<Record<string, unknown>>
}

const procs: Proc[] = []
const cleanups: Array<() => Promise<void>> = []

function jsonLines (text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (const l of text.split('\n')) {
    if (!l.startsWith('{')) continue
    try { out.push(JSON.parse(l) as Record<string, unknown>) } catch {}
  }
  return out
}

function start (name: string, home: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, '--home', home, ...args], { env: { ...process.env, ...baseEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>(resolve => { child.on('close', code => { resolve(code) }) })
  const p: Proc = {
    name,
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    line: async (match, timeoutMs) => {
      const deadline = Date.now() + timeoutMs
      while (Date.now() < deadline) {
        const hit = [...jsonLines(out), ...jsonLines(err)].find(match)
        if (hit !== undefined) return hit
        if (child.exitCode !== null) break
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      throw new Error(`${name}: no matching line within ${timeoutMs} ms (exit ${String(child.exitCode)})\n${err.slice(-3000)}`)
    }
  }
  procs.push(p)
  return p
}

async function stop (p: Proc, timeoutMs = 30_000): Promise<number | null | 'timeout'> {
  p.child.kill('SIGINT')
  return await Promise.race([p.exited, new Promise<'timeout'>(resolve => setTimeout(() => { resolve('timeout') }, timeoutMs))])
}

async function until (fn: () => Promise<boolean>, timeoutMs: number, stepMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await fn()) return true
    await new Promise(resolve => setTimeout(resolve, stepMs))
  }
  return await fn()
}

describe('the validation done-when as separate heurist processes', () => {
  let chain: ChainClient | undefined

  afterAll(async () => {
    chain?.close()
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
    await Promise.all(procs.map(async p => await Promise.race([p.exited, new Promise(resolve => setTimeout(resolve, 5000))])))
    for (const c of cleanups) await c().catch(() => {})
  }, 30_000)

  it('the wrong-model miner loses F of its collateral, the honest one keeps it all and redeems its vouchers on SIGINT', async () => {
    const root = await tempDir('heurist-e2e-validation-')
    cleanups.push(root.cleanup)
    const home = (n: string): string => join(root.dir, n)
    const names = ['gateway', 'honest', 'cheater', 'v1', 'v2', 'v3'] as const
    const inits = await Promise.all(names.map(async n => await runCli(['--home', home(n), '--json', 'init', '--kdf-cost', '10'], { env: baseEnv, timeoutMs: 60_000 })))
    const addr: Record<string, string> = {}
    names.forEach((n, i) => {
      expect(inits[i]!.code, inits[i]!.stderr).toBe(0)
      addr[n] = (JSON.parse(inits[i]!.stdout) as { address: string }).address
    })
    // payouts of the honest miner go to a separate owner, whose HEU balance starts at 0
    const owner = Wallet.createRandom().address

    // the chain, funding every operator key
    const devnet = start('devnet', home('devnet'), ['--json', 'devnet', '--port', '0', '--fund', names.map(n => addr[n]).join(',')])
    const dv = await devnet.line(j => typeof j.rpcUrl === 'string', 90_000)
    const rpc = dv.rpcUrl as string
    const deployment = dv.deploymentFile as string
    const chainFlags = ['--rpc', rpc, '--deployment', deployment]
    const chainEnv = { HEURIST_CHAIN_RPC: rpc, HEURIST_CHAIN_DEPLOYMENT: deployment }
    chain = await connectChain({ deployment: await readDeployment(deployment), rpc })
    const c = chain
    const F = BigInt(c.deployment.params.slashBps)
    const collateral = async (a: string): Promise<bigint> => await c.read<bigint>(c.contracts.nodes, 'collateralOf', [a])
    const heuOf = async (a: string): Promise<bigint> => (await c.balances(a)).heu
    const redeemedEvents = async (miner: string): Promise<Array<{ amount: bigint, nodeShare: bigint }>> =>
      (await c.contracts.payments.queryFilter(c.contracts.payments.filters.Redeemed!(null, miner))).map(e => {
        const args = (e as unknown as { args: { amount: bigint, nodeShare: bigint } }).args
        return { amount: args.amount, nodeShare: args.nodeShare }
      })

    // miners with collateral, validators with stake, a funded API key: all CLI processes
    const stake = formatUnits(DEFAULT_MIN_COLLATERAL, 18)
    const setup = await Promise.all([
      runCli(['--home', home('honest'), '--json', 'register', '--collateral', stake, '--owner', owner, ...chainFlags], { env: baseEnv, timeoutMs: 60_000 }),
      runCli(['--home', home('cheater'), '--json', 'register', '--collateral', stake, ...chainFlags], { env: baseEnv, timeoutMs: 60_000 }),
      ...['v1', 'v2', 'v3'].map(async v => await runCli(['--home', home(v), '--json', 'register', '--validator', '--collateral', stake, ...chainFlags], { env: baseEnv, timeoutMs: 60_000 })),
      runCli(['--home', home('gateway'), '--json', 'gateway', 'keys', 'create', '--credits', '10'], { env: { ...baseEnv, ...chainEnv }, timeoutMs: 60_000 })
    ])
    for (const r of setup) expect(r.code, r.stderr).toBe(0)
    const apiKey = (JSON.parse(setup[5]!.stdout) as { apiKey: string, backedBy: unknown }).apiKey
    expect((JSON.parse(setup[5]!.stdout) as { backedBy: unknown }).backedBy).not.toBeNull()
    const h0 = await collateral(addr.honest!)
    const c0 = await collateral(addr.cheater!)
    expect(h0).toBe(DEFAULT_MIN_COLLATERAL)
    expect(c0).toBe(DEFAULT_MIN_COLLATERAL)

    // the gateway first (the mesh's hub), then the honest miner and the validators
    const gateway = start('gateway', home('gateway'), ['--json', 'gateway', '--port', '0', '--listen', LOOPBACK], chainEnv)
    const gw = await gateway.line(j => typeof j.baseUrl === 'string', 60_000)
    const gwAddr = (gw.p2p as string[])[0]!
    const honest = start('honest', home('honest'), ['--json', 'mine', '--listen', LOOPBACK, '--bootstrap', gwAddr, '--models', 'tiny-llama', '--price', PRICE.toString(), ...chainFlags],
      { HEURIST_MINE_REDEEM_THRESHOLD: '1000' }) // nothing is redeemed while it runs: everything on SIGINT
    // verdicts travel only between validators: each lists the ones before it
    const vAddrs: string[] = []
    const validators: Proc[] = []
    for (const v of ['v1', 'v2', 'v3']) {
      const p = start(v, home(v), ['--json', 'validate', '--sample-rate', '1', '--models', 'tiny-llama', '--listen', LOOPBACK, '--bootstrap', [gwAddr, ...vAddrs].join(','), ...chainFlags])
      validators.push(p)
      const ready = await p.line(j => j.msg === 'validator ready', 90_000)
      vAddrs.push((ready.addrs as string[])[0]!)
    }
    const honestReady = await honest.line(j => j.msg === 'miner ready', 90_000)
    expect(honestReady.paid).toBe(true)
    expect(honestReady.redeemThreshold).toBe('1000')

    const client = new OpenAI({ baseURL: gw.baseUrl as string, apiKey, maxRetries: 0, timeout: 60_000 })
    expect(await until(async () => (await client.models.list()).data.some(m => m.id === 'tiny-llama'), 30_000)).toBe(true)
    const job = async (i: number): Promise<string> => {
      const { data, response } = await client.chat.completions.create({ model: 'tiny-llama', messages: [{ role: 'user', content: `job ${i}: tell me a story` }], max_tokens: 24, seed: i, temperature: 0.8, top_k: 20 } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming).withResponse()
      expect(data.choices[0]!.message.content!.length).toBeGreaterThan(0)
      return response.headers.get('x-heurist-miner') ?? ''
    }

    // the honest miner serves (and the validators pass) a few jobs; then SIGINT: it redeems
    const honestPeer = honestReady.peerId as string
    for (let i = 0; i < 6; i++) expect(await job(i)).toBe(honestPeer)
    expect(await heuOf(owner)).toBe(0n)
    expect(await redeemedEvents(addr.honest!)).toEqual([])
    expect(await stop(honest)).toBe(0)
    const summary = JSON.parse(honest.stdout().trim().split('\n').at(-1)!) as { served: number, redeemed: string }
    expect(summary.served).toBe(6)
    expect(BigInt(summary.redeemed)).toBeGreaterThan(0n)
    const honestRedeemed = await redeemedEvents(addr.honest!)
    expect(honestRedeemed.length).toBeGreaterThan(0)
    expect(honestRedeemed.reduce((s, e) => s + e.amount, 0n)).toBe(BigInt(summary.redeemed))
    // the node's share of every redemption went to its owner
    expect(await heuOf(owner)).toBe(honestRedeemed.reduce((s, e) => s + e.nodeShare, 0n))
    expect(await heuOf(owner)).toBeGreaterThan(0n)
    expect(jsonLines(honest.stderr()).some(j => j.msg === 'vouchers redeemed' && j.redeemed === summary.redeemed)).toBe(true)

    // the cheater (claims tiny-llama, runs tiny-llama-b), redeeming as it goes, until slashed
    const cheater = start('cheater', home('cheater'), ['--json', 'mine', '--cheat', 'wrong-model', '--listen', LOOPBACK, '--bootstrap', gwAddr, '--models', 'tiny-llama,tiny-llama-b', '--price', PRICE.toString(), ...chainFlags],
      { HEURIST_MINE_REDEEM_THRESHOLD: '0.000000000001' })
    const cheaterReady = await cheater.line(j => j.msg === 'miner ready', 90_000)
    const slashed = async (): Promise<boolean> => await collateral(addr.cheater!) < c0
    const deadline = Date.now() + 120_000
    let sent = 0
    let toCheater = 0
    for (let i = 100; i < 160 && Date.now() < deadline && !await slashed(); i++) {
      if (await job(i) === cheaterReady.peerId) toCheater++
      sent++
    }
    expect(toCheater).toBeGreaterThan(0)
    expect(await until(slashed, 60_000)).toBe(true)
    // redeemed past its (tiny) threshold while running, not only at shutdown
    expect(await until(async () => (await redeemedEvents(addr.cheater!)).length > 0, 10_000)).toBe(true)
    // the Redeemed event can be on chain before the miner has logged it
    expect(await until(async () => jsonLines(cheater.stderr()).some(j => j.msg === 'voucher redeemed'), 10_000)).toBe(true)

    // each slash takes F of the collateral left; two quorums may form at once before the
    // cooldown is heard, never more
    await new Promise(resolve => setTimeout(resolve, 1000))
    const events = await c.contracts.slashing.queryFilter(c.contracts.slashing.filters.MinerSlashed!(addr.cheater!))
    expect(events.length).toBeGreaterThanOrEqual(1)
    expect(events.length).toBeLessThanOrEqual(2)
    let expected = c0
    for (let k = 0; k < events.length; k++) expected -= expected * F / 10_000n
    expect(await collateral(addr.cheater!)).toBe(expected)
    expect(await collateral(addr.honest!)).toBe(h0)

    // the validators' own counts (SIGINT prints them with --json)
    const codes = await Promise.all(validators.map(async v => await stop(v)))
    expect(codes).toEqual([0, 0, 0])
    const stats = validators.map(v => JSON.parse(v.stdout().trim().split('\n').at(-1)!) as { sampled: number, passed: number, failed: number, gatewayBlamed: number, slashesSubmitted: number })
    expect(stats.reduce((s, x) => s + x.passed, 0)).toBeGreaterThan(0)
    expect(stats.reduce((s, x) => s + x.failed, 0)).toBeGreaterThan(0)
    expect(stats.reduce((s, x) => s + x.slashesSubmitted, 0)).toBe(events.length)
    expect(stats.every(x => x.gatewayBlamed === 0)).toBe(true)
    expect(await stop(cheater)).toBe(0)
    console.log(JSON.stringify({ jobsToCheater: toCheater, sent, slashes: events.length, honestRedeemedWei: summary.redeemed }))
  }, 300_000)
})

describe('mine and devnet chain flags: bad input', () => {
  it('mine --rpc without --deployment, a bad mine.redeemThreshold and devnet --fund with a non-address each exit 2 naming the problem', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      const rpcOnly = await runCli(['--home', dir, 'mine', '--rpc', 'http://127.0.0.1:1'], { env: baseEnv })
      expect(rpcOnly.code).toBe(2)
      expect(rpcOnly.stderr).toMatch(/--rpc needs --deployment FILE/)
      const threshold = await runCli(['--home', dir, 'mine'], { env: { ...baseEnv, HEURIST_MINE_REDEEM_THRESHOLD: '-1' } })
      expect(threshold.code).toBe(2)
      expect(threshold.stderr).toMatch(/mine\.redeemThreshold/)
      const fund = await runCli(['--home', dir, 'devnet', '--port', '0', '--fund', 'not-an-address'], { env: baseEnv })
      expect(fund.code).toBe(2)
      expect(fund.stderr).toMatch(/--fund: expected a 0x address/)
    } finally { await cleanup() }
  })
})
