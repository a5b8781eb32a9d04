import { describe, it, expect, afterAll } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { formatUnits, Wallet } from 'ethers'
import { fileURLToPath } from 'node:url'
import { BIN, runCli, tempDir } from '../helpers.js'
import { connectChain, readDeployment, devAccounts, type ChainClient } from '../../src/chain/index.js'

// Pay-by-User (issue 19) with every part real: `heurist up` (devnet, a llama.cpp and an ONNX
// miner, the gateway) funds a separate user home's key with --fund; the user deposits with
// `heurist deposit`, runs three chat requests and one image through `heurist infer --gateway`
// (402, signed authorization, paid retry), and the gateway settles the session on chain from the
// user's deposit. Balances to the wei: the user's deposit falls by exactly what was charged
// (each charge within its quote; the image's charge is its quote), and the miner, the frontend
// and the stHEU vault rise by the split of each settled amount. `status` shows what was
// authorized and spent; `deposit --withdraw` asks for the rest back.

const PASSWORD = 'e2e-pay-by-user-pw'
const baseEnv = {
  HEURIST_PASSWORD: PASSWORD,
  HEURIST_LOG_FORMAT: 'json',
  HEURIST_INFERENCE_THREADS: '1',
  HEURIST_P2P_DEVNET: 'true',
  HEURIST_DASHBOARD_ENABLED: 'false',
  HEURIST_PODS_HOST: 'false',
  // settle every job at the next pass, so balances move while `up` runs
  HEURIST_GATEWAY_SETTLE_THRESHOLD: '0'
}
const HEU = 10n ** 18n
const BPS = 10_000n

const cleanups: Array<() => Promise<void>> = []
let up: ChildProcess | null = null

async function runNode (args: string[], env: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 120_000)
  const code = await new Promise<number | null>(resolve => { child.on('close', resolve) })
  clearTimeout(timer)
  return { code, stdout, stderr }
}

async function until (fn: () => Promise<boolean>, timeoutMs: number, stepMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await fn()) return true
    await new Promise(resolve => setTimeout(resolve, stepMs))
  }
  return await fn()
}

describe('Pay-by-User through the CLI: up --fund, deposit, infer --gateway, status, deposit --withdraw', () => {
  let chain: ChainClient | undefined
  afterAll(async () => {
    chain?.close()
    if (up !== null && up.exitCode === null && up.signalCode === null) {
      up.kill('SIGINT')
      await Promise.race([new Promise(resolve => up!.once('close', resolve)), new Promise(resolve => setTimeout(resolve, 20_000))])
      if (up.exitCode === null) up.kill('SIGKILL')
    }
    for (const c of cleanups) await c().catch(() => {})
  }, 40_000)

  it('three chats and an image paid from the user\'s own deposit: deposit down by exactly the charges, miner, frontend and vault up by their shares', async () => {
    const root = await tempDir('heurist-e2e-pay-')
    cleanups.push(root.cleanup)
    const userHome = join(root.dir, 'user')
    const upHome = join(root.dir, 'up')
    const init = await runCli(['--home', userHome, '--json', 'init', '--kdf-cost', '10'], { env: baseEnv, timeoutMs: 60_000 })
    expect(init.code, init.stderr).toBe(0)
    const user = (JSON.parse(init.stdout) as { address: string }).address
    // an agent with a bare key, paying with examples/agent-pays.mjs (ethers and fetch only)
    const agent = Wallet.createRandom()

    up = spawn(process.execPath, [BIN, '--home', upHome, '--json', 'up', '--miners', '1', '--validators', '0', '--port', '0', '--rpc-port', '0', '--fund', `${user},${agent.address}`], { env: { ...process.env, ...baseEnv }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    up.stdout!.on('data', (d: Buffer) => { out += d.toString() })
    up.stderr!.on('data', (d: Buffer) => { err += d.toString() })
    const ready = await until(async () => out.includes('"baseUrl"') || up!.exitCode !== null, 300_000, 200)
    expect(ready && up.exitCode === null, err.slice(-3000)).toBe(true)
    const info = JSON.parse(out.split('\n').find(l => l.includes('"baseUrl"'))!) as { baseUrl: string, rpcUrl: string, miners: string[] }
    const gatewayUrl = info.baseUrl.replace(/\/v1$/, '')
    // the user's home talks to up's chain through its deployment file
    await copyFile(join(upHome, 'devnet.json'), join(userHome, 'devnet.json'))
    const d = await readDeployment(join(userHome, 'devnet.json'))
    chain = await connectChain({ deployment: d, rpc: info.rpcUrl })
    const c = chain
    const frontend = devAccounts(2)[1]!.address // up's gateway is dev account 1
    const miner = info.miners[0]!
    const vault = d.contracts.StakedHeurist
    expect((await c.balances(user)).heu).toBeGreaterThan(0n) // funded by up --fund

    const dep = await runCli(['--home', userHome, '--json', 'deposit', '1'], { env: baseEnv, timeoutMs: 60_000 })
    expect(dep.code, dep.stderr).toBe(0)
    const before = { deposit: (await c.balances(user)).deposit, miner: (await c.balances(miner)).heu, frontend: (await c.balances(frontend)).heu, vault: (await c.balances(vault)).heu }
    expect(before.deposit).toBe(1n * HEU)

    // a quote above --max-price signs nothing and sends nothing paid
    const tooDear = await runCli(['--home', userHome, '--json', 'infer', '--gateway', gatewayUrl, '--max-price', '0.000000000000000001', '--chat', '--max-tokens', '4', 'hello'], { env: baseEnv, timeoutMs: 60_000 })
    expect(tooDear.code).toBe(1)
    expect(tooDear.stderr).toMatch(/PAY_PRICE_TOO_HIGH|--max-price allows/)

    const charges: Array<{ quote: bigint, charged: bigint }> = []
    for (const prompt of ['Say hello', 'Count to three', 'Name a colour']) {
      const r = await runCli(['--home', userHome, '--json', 'infer', '--gateway', gatewayUrl, '--max-price', '1', '--chat', '--max-tokens', '6', '--seed', '7', prompt], { env: baseEnv, timeoutMs: 120_000 })
      expect(r.code, r.stderr).toBe(0)
      const j = JSON.parse(r.stdout) as { text: string, quote: string, charged: string }
      expect(typeof j.text).toBe('string')
      charges.push({ quote: BigInt(j.quote), charged: BigInt(j.charged) })
    }
    const png = join(root.dir, 'out.png')
    const img = await runCli(['--home', userHome, '--json', 'infer', '--gateway', gatewayUrl, '--image', '--width', '64', '--height', '64', '--steps', '2', '--seed', '3', '--out', png, 'a lighthouse'], { env: baseEnv, timeoutMs: 180_000 })
    expect(img.code, img.stderr).toBe(0)
    const ij = JSON.parse(img.stdout) as { quote: string, charged: string }
    expect((await readFile(png)).subarray(1, 4).toString()).toBe('PNG')
    // an image's cost is known before it runs: charged is the quote
    expect(BigInt(ij.charged)).toBe(BigInt(ij.quote))
    charges.push({ quote: BigInt(ij.quote), charged: BigInt(ij.charged) })
    for (const x of charges) {
      expect(x.charged).toBeGreaterThan(0n)
      expect(x.charged).toBeLessThanOrEqual(x.quote)
    }
    const total = charges.reduce((s, x) => s + x.charged, 0n)

    // settlement (threshold 0: the next pass): the user's deposit falls by exactly the charges
    expect(await until(async () => (await c.balances(user)).deposit === before.deposit - total, 60_000)).toBe(true)
    // one Redeemed per (miner, pool) channel settled, all from the user's deposit to this miner
    const events = (await c.contracts.payments.queryFilter(c.contracts.payments.filters.Redeemed!(user))).map(e => (e as unknown as { args: { miner: string, amount: bigint, nodeShare: bigint, frontendShare: bigint, protocolFee: bigint } }).args)
    expect(events.reduce((s, e) => s + e.amount, 0n)).toBe(total)
    let node = 0n
    let front = 0n
    let fee = 0n
    for (const e of events) {
      expect(e.miner.toLowerCase()).toBe(miner.toLowerCase())
      const f = e.amount * BigInt(d.params.frontendBps) / BPS
      const p = e.amount * BigInt(d.params.protocolFeeBps) / BPS
      expect(e.frontendShare).toBe(f)
      expect(e.protocolFee).toBe(p)
      front += f
      fee += p
      node += e.amount - f - p
    }
    expect((await c.balances(miner)).heu).toBe(before.miner + node)
    expect((await c.balances(frontend)).heu).toBe(before.frontend + front)
    expect((await c.balances(vault)).heu).toBe(before.vault + fee)

    // status: spent and authorized per gateway
    const st = await runCli(['--home', userHome, '--json', 'status'], { env: baseEnv, timeoutMs: 60_000 })
    expect(st.code, st.stderr).toBe(0)
    const sj = JSON.parse(st.stdout) as { deposit: string, payByUser: Array<{ gateway: string, frontend: string, spent: string, authorized: string, requests: number }> }
    expect(sj.payByUser).toHaveLength(1)
    expect(sj.payByUser[0]!.gateway).toBe(gatewayUrl)
    expect(sj.payByUser[0]!.frontend).toBe(frontend)
    expect(BigInt(sj.payByUser[0]!.spent)).toBe(total)
    expect(BigInt(sj.payByUser[0]!.authorized)).toBe(charges.reduce((s, x) => s + x.quote, 0n))
    expect(sj.payByUser[0]!.requests).toBe(4)

    // the agent example: deposits 0.5 HEU itself, pays two chats, and its deposit pays exactly the charges
    const example = await runNode([fileURLToPath(new URL('../../examples/agent-pays.mjs', import.meta.url)), 'What is two plus two?', 'And three plus three?'], { GATEWAY: gatewayUrl, AGENT_KEY: agent.privateKey, RPC: info.rpcUrl, DEPOSIT: '0.5', MAX_PRICE: '1' })
    expect(example.code, example.stderr).toBe(0)
    const ex = JSON.parse(example.stdout.trim().split('\n').pop()!) as { payer: string, results: Array<{ quote: string, charged: string, text: string }> }
    expect(ex.payer).toBe(agent.address)
    expect(ex.results).toHaveLength(2)
    const agentTotal = ex.results.reduce((t, r) => t + BigInt(r.charged), 0n)
    for (const r of ex.results) expect(BigInt(r.charged)).toBeLessThanOrEqual(BigInt(r.quote))
    expect(agentTotal).toBeGreaterThan(0n)
    expect(await until(async () => (await c.balances(agent.address)).deposit === HEU / 2n - agentTotal, 60_000)).toBe(true)

    // the rest of the deposit: asked back; completing it before the delay is refused
    const left = before.deposit - total
    const ask = await runCli(['--home', userHome, '--json', 'deposit', '--withdraw', formatUnits(left, 18)], { env: baseEnv, timeoutMs: 60_000 })
    expect(ask.code, ask.stderr).toBe(0)
    expect((await c.withdrawalOf(user)).amount).toBe(left)
    const early = await runCli(['--home', userHome, '--json', 'deposit', '--withdraw'], { env: baseEnv, timeoutMs: 60_000 })
    expect(early.code).toBe(1)
    expect(early.stderr).toMatch(/CHAIN_WITHDRAWAL_NOT_READY|can be withdrawn from/)
    // and a new paid request is refused: what is being withdrawn is not spendable
    const refused = await runCli(['--home', userHome, '--json', 'infer', '--gateway', gatewayUrl, '--chat', '--max-tokens', '4', 'again'], { env: baseEnv, timeoutMs: 60_000 })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/payment_insufficient_deposit/)
  }, 600_000)
})
