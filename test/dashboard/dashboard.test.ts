import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { existsSync } from 'node:fs'
import OpenAI from 'openai'
import { chromium, type Browser } from 'playwright-core'
import { startDevnet, connectChain, type Devnet, type ChainClient } from '../../src/chain/index.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { silentLogger } from '../../src/core/logger.js'
import { Store } from '../../src/core/store.js'
import { heuristDomain } from '../../src/core/typed-data.js'
import { createHeuristNode, Advertiser, basicHardware, type HeuristNode, type JobServer } from '../../src/p2p/index.js'
import { createLlamaEngine, ensureTinyModels, type LlamaEngine } from '../../src/inference/index.js'
import { engineExecutor } from '../../src/cli/mesh.js'
import { startGatewayService, VoucherInbox, type GatewayService } from '../../src/gateway/index.js'
import { WAD, FLOOR_WEI_PER_UNIT, REDEMPTION_WINDOW_SECONDS } from '../../src/economics/index.js'
import { EpochService, RewardClaimer, onRewardRoots } from '../../src/rewards/index.js'
import { startDashboard, nodeSource, type Dashboard } from '../../src/dashboard/index.js'
import { tempDir } from '../helpers.js'
import { until } from '../p2p/util.js'

const CHROMIUM = '/usr/bin/chromium'
const EPOCH = 3600n
const logger = silentLogger()

let devnet: Devnet
let dir: string
let cleanupDir: () => Promise<void>
let engine: LlamaEngine
let browser: Browser | undefined
const undo: Array<() => Promise<unknown>> = []

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)`)
  ;({ dir, cleanup: cleanupDir } = await tempDir('heurist-dash-'))
  devnet = await startDevnet({ port: 0, deploy: { epochSeconds: EPOCH } })
  engine = createLlamaEngine({ threads: 1, parallel: 1, gpu: 'cpu' })
}, 120_000)

afterAll(async () => {
  await browser?.close().catch(() => {})
  for (const u of undo.reverse()) await u().catch(() => {})
  await engine?.stop().catch(() => {})
  await devnet?.stop()
  await cleanupDir?.()
})

async function chainFor (i: number): Promise<ChainClient> {
  const c = await connectChain({ deployment: devnet.deployment, signer: devnet.accounts[i]! })
  undo.push(async () => { c.close() })
  return c
}

async function store (name: string): Promise<Store> {
  const s = await Store.open(join(dir, name))
  undo.push(async () => { await s.close() })
  return s
}

describe('the local dashboard in headless Chromium', () => {
  it('shows the jobs a miner served, its tokens/s chart, its peers, and the epoch reward it claimed', async () => {
    const d = devnet.deployment
    const [model] = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama'] })
    const info = await engine.load(model!.path, { id: model!.id, name: model!.name })

    // gateway (account 1) with a funded deposit; miner (account 2) registered; one validator (account 3)
    const gwChain = await chainFor(1)
    await gwChain.deposit(50n * WAD)
    const minerChain = await chainFor(2)
    await minerChain.register(BigInt(d.params.minCollateral))
    const vChain = await chainFor(3)
    await vChain.registerValidator(BigInt(d.params.minValidatorStake))

    const gwId = identityFromPrivateKey(devnet.accounts[1]!.privateKey)
    const svc: GatewayService = await startGatewayService({
      identity: gwId, store: await store('gw'), logger, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], devnet: true,
      http: { host: '127.0.0.1', port: 0 },
      chain: { voucherSigner: { wallet: gwId.wallet, domain: heuristDomain(d.chainId, d.contracts.Payments) }, receiptDomain: { chainId: d.chainId, verifyingContract: d.contracts.Slashing } }
    })
    undo.push(async () => { await svc.stop() })
    onRewardRoots(svc.node, d, logger, () => {})
    const boot = [svc.node.multiaddrs()[0]!]

    const minerStore = await store('miner')
    const miner: HeuristNode = await createHeuristNode({ identity: identityFromPrivateKey(devnet.accounts[2]!.privateKey), logger, store: minerStore, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: boot, devnet: true, heartbeatMs: 200 })
    undo.push(async () => { await miner.stop() })
    const server: JobServer = await miner.serveJobs(engineExecutor(engine, new Map(), [info]), { receiptDomain: { chainId: d.chainId, verifyingContract: d.contracts.Slashing } })
    const adv = new Advertiser(miner, {
      intervalMs: 1000,
      describe: () => ({ hardware: basicHardware(), models: [info], queueDepth: server.queueDepth, maxJobs: 1, tokensPerSecond: server.stats.tokensPerSecond, imagesPerSecond: 0, price: FLOOR_WEI_PER_UNIT.llama, version: 'test', paid: true })
    }, logger)
    adv.start()
    undo.push(async () => { adv.stop() })
    // paid as mine is: the gateway's vouchers redeemed as they come (points count redeemed payments only)
    const inbox = new VoucherInbox(miner, minerStore, minerChain, logger, { domain: heuristDomain(d.chainId, d.contracts.Payments) })
    await inbox.start()
    undo.push(async () => { await inbox.stop() })
    const claimer = new RewardClaimer({ node: miner, chain: minerChain, store: minerStore, logger, rewardsDir: join(dir, 'miner-rewards') }, { pollMs: 250, snapshotMs: 250 })
    await claimer.start()
    undo.push(async () => { await claimer.stop() })

    const vStore = await store('validator')
    const vNode = await createHeuristNode({ identity: identityFromPrivateKey(devnet.accounts[3]!.privateKey), logger, store: vStore, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: boot, devnet: true, heartbeatMs: 200 })
    undo.push(async () => { await vNode.stop() })
    const epochs = new EpochService({ node: vNode, chain: vChain, wallet: devnet.accounts[3]!, store: vStore, logger, rewardsDir: join(dir, 'v-rewards') }, { pollMs: 250, republishMs: 500, graceMs: 500 })
    await epochs.start()
    undo.push(async () => { await epochs.stop() })

    const dash: Dashboard = await startDashboard(nodeSource({ role: 'miner', miners: [{ node: miner, jobs: server, claimer }], chain: minerChain }), logger, { sampleMs: 250 })
    undo.push(async () => { await dash.stop() })
    expect(dash.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)

    expect(await until(() => svc.backend.models().length > 0, 20_000)).toBe(true)
    const { apiKey } = await svc.accounts.create(50n * WAD, 'dashboard test')
    const client = new OpenAI({ baseURL: `${svc.gateway.url}/v1`, apiKey, maxRetries: 0, timeout: 30_000 })
    const JOBS = 4
    for (let i = 0; i < JOBS; i++) {
      const r = await client.chat.completions.create({ model: info.name, messages: [{ role: 'user', content: `hello ${i}` }], max_tokens: 24, seed: i })
      expect(r.choices[0]!.message.content?.length ?? 0).toBeGreaterThan(0)
    }
    // the validator files the gateway's receipts under this epoch, then the epoch ends
    expect(await until(async () => (await epochs.ledger.entries(0n)).length === JOBS, 20_000)).toBe(true)
    // every job's voucher came and is redeemed (several may go in one transaction)
    expect(await until(async () => inbox.stats.received === JOBS && await inbox.owed() === 0n, 20_000, 200)).toBe(true)
    expect(inbox.stats.transactions).toBeGreaterThan(0)
    await devnet.timeTravel(EPOCH + REDEMPTION_WINDOW_SECONDS)
    expect(await until(() => claimer.earnings().some(e => e.claimed), 30_000, 200)).toBe(true)
    const earned = claimer.earnings()[0]!
    expect(earned.amount).toBeGreaterThan(0n)

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
    })
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', e => { errors.push(e.message) })
    await page.goto(dash.url, { timeout: 20_000 })
    await page.waitForFunction((n) => document.getElementById('jobs-served')?.textContent === String(n), JOBS, { timeout: 20_000 })
    expect(await page.textContent('#role')).toContain('miner')
    // the earning row: epoch 0, the miner's address, the amount in HEU, claimed
    await page.waitForSelector('#earnings tbody tr', { timeout: 20_000 })
    const row = await page.$$eval('#earnings tbody tr td', tds => tds.map(td => td.textContent))
    expect(row[0]).toBe('0')
    expect(row[1]).toBe(devnet.accounts[2]!.address)
    const whole = earned.amount / WAD
    const frac = (earned.amount % WAD).toString().padStart(18, '0').slice(0, 6).replace(/0+$/, '')
    expect(row[2]).toBe(frac === '' ? whole.toString() : `${whole}.${frac}`)
    expect(row[3]).toBe('yes')
    expect(await page.textContent('#earned-total')).toBe(row[2])
    // peers: the gateway (and the validator, if connected) with their addresses
    const peers = await page.$$eval('#peers tbody tr td:first-child', tds => tds.map(td => td.textContent))
    expect(peers).toContain(devnet.accounts[1]!.address)
    // the chart has drawn several samples
    await page.waitForFunction(() => Number(document.getElementById('tps-chart')?.dataset.points ?? 0) >= 3, undefined, { timeout: 20_000 })
    const line = await page.getAttribute('#tps-line', 'points')
    expect(line!.split(' ').length).toBeGreaterThanOrEqual(3)
    // no slash in this network
    expect(await page.$$('#slashes tbody tr')).toHaveLength(0)
    // the JSON behind it says the same
    const summary = await (await fetch(`${dash.url}/api/summary`)).json() as { jobs: { served: number }, earnings: Array<{ amount: string }>, history: unknown[] }
    expect(summary.jobs.served).toBe(JOBS)
    expect(summary.earnings[0]!.amount).toBe(earned.amount.toString())
    expect(errors).toEqual([])
  }, 180_000)

  it('listens on loopback only', async () => {
    await expect(startDashboard({ snapshot: async () => { throw new Error('unused') } }, logger, { host: '0.0.0.0' })).rejects.toThrow(/loopback/)
  })
})
