import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { startDevnet, writeDeployment, type Devnet } from '../../src/chain/index.js'
import { Advertiser, TOPICS, basicHardware, encodeMessage, type HeuristNode } from '../../src/p2p/index.js'
import { buildDemand } from '../../src/gateway/index.js'
import { silentLogger } from '../../src/core/logger.js'
import { runCli, tempDir } from '../helpers.js'
import { testNode } from '../p2p/util.js'
import { DemandBoard } from '../../src/pods/index.js'

// `heurist pod` as a user runs it, against the in-process devnet (devnet.json in the home
// folder) and a small mesh: one miner advertising a pod, one gateway publishing demand.
let home: { dir: string, cleanup: () => Promise<void> }
let devnet: Devnet
const env = (): NodeJS.ProcessEnv => ({ HEURIST_HOME: home.dir, HEURIST_PASSWORD: 'test-password', HEURIST_LOG_LEVEL: 'warn', HEURIST_P2P_DEVNET: 'true' })
const HOSTED = '1'.repeat(64)
const HUGE = '2'.repeat(64)

beforeAll(async () => {
  home = await tempDir('heurist-pod-cli-')
  const init = await runCli(['init', '--kdf-cost', '10', '--json'], { env: env() })
  expect(init.code).toBe(0)
  const { address } = JSON.parse(init.stdout) as { address: string }
  devnet = await startDevnet({ port: 0, fund: [address] })
  await writeDeployment(join(home.dir, 'devnet.json'), devnet.deployment)
}, 120_000)

afterAll(async () => {
  await devnet?.stop()
  await home?.cleanup()
})

describe('heurist pod', () => {
  it('deploy with a share above 10,000 bps exits 2 with the reason, before touching the chain', async () => {
    const r = await runCli(['pod', 'deploy', '--model', 'http://127.0.0.1:1/m.gguf', '--sha256', HOSTED, '--share-bps', '10001'], { env: env() })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--share-bps: expected an integer from 0 to 10000/)
    const bad = await runCli(['pod', 'deploy', '--model', 'ftp://x/m.gguf', '--sha256', HOSTED], { env: env() })
    expect(bad.code).toBe(2)
    const sha = await runCli(['pod', 'deploy', '--model', 'http://x/m.gguf', '--sha256', 'abc'], { env: env() })
    expect(sha.code).toBe(2)
    expect(sha.stderr).toMatch(/--sha256/)
  })

  it('deploy registers pods; list --json shows votes, hosts from adverts, demand, a clear pending status, and retire', async () => {
    const d1 = await runCli(['pod', 'deploy', '--model', 'http://127.0.0.1:1/hosted.gguf', '--sha256', HOSTED, '--share-bps', '2000', '--json'], { env: env() })
    expect(d1.stderr).toBe('')
    expect(d1.code).toBe(0)
    const dep = JSON.parse(d1.stdout) as { podId: string, name: string, shareBps: number, deployer: string }
    expect(dep).toMatchObject({ podId: '0x' + HOSTED, name: 'hosted', shareBps: 2000 })
    const d2 = await runCli(['pod', 'deploy', '--model', 'http://127.0.0.1:1/huge.gguf', '--sha256', HUGE, '--min-vram', '80', '--name', 'huge-pod', '--json'], { env: env() })
    expect(d2.code).toBe(0)
    // the deployment caps shares at 3000 bps: above it is a usage error naming the limit
    const capped = await runCli(['pod', 'deploy', '--model', 'http://127.0.0.1:1/x.gguf', '--sha256', '3'.repeat(64), '--share-bps', '5000'], { env: env() })
    expect(capped.code).toBe(2)
    expect(capped.stderr).toMatch(/at most 3000 bps/)
    // a name already taken is refused by the contract with its reason
    const taken = await runCli(['pod', 'deploy', '--model', 'http://127.0.0.1:1/hosted.gguf', '--sha256', '4'.repeat(64), '--name', 'hosted'], { env: env() })
    expect(taken.code).toBe(1)
    expect(taken.stderr).toMatch(/NameTaken/)

    // a miner that hosts the first pod (CPU only), and a gateway with demand for both
    const nodes: HeuristNode[] = []
    try {
      const miner = await testNode()
      nodes.push(miner)
      // a real miner listens to (and so relays) demand
      new DemandBoard(miner, silentLogger()).start()
      const adv = new Advertiser(miner, { intervalMs: 1000, describe: () => ({ hardware: basicHardware(), models: [{ id: HOSTED, name: 'hosted', kind: 'llm', contextSize: 1024, memoryBytes: 1 }], queueDepth: 0, maxJobs: 1, tokensPerSecond: 1, imagesPerSecond: 0, price: 0n, version: 'test', paid: true }) }, silentLogger())
      adv.start()
      const gw = await testNode({ bootstrap: [miner.multiaddrs()[0]!] })
      nodes.push(gw)
      const publish = setInterval(() => { gw.publish(TOPICS.demand, encodeMessage(buildDemand(gw.address, { [HOSTED]: 3, [HUGE]: 2 }))).catch(() => {}) }, 400)
      try {
        const list = await runCli(['pod', 'list', '--json', '--bootstrap', miner.multiaddrs()[0]!, '--wait-ms', '4000'], { env: env(), timeoutMs: 60_000 })
        expect(list.stderr).toBe('')
        expect(list.code).toBe(0)
        const out = JSON.parse(list.stdout) as { pods: Array<Record<string, unknown>> }
        const hosted = out.pods.find(p => p.id === '0x' + HOSTED)!
        expect(hosted).toMatchObject({ name: 'hosted', votes: '0', hosts: [miner.address], pending: 3, status: 'hosted', revenueThisEpoch: '0', shareBps: 2000, retired: false })
        const huge = out.pods.find(p => p.id === '0x' + HUGE)!
        expect(huge).toMatchObject({ name: 'huge-pod', hosts: [], pending: 2, status: 'pending', reason: 'no miner has 80.0 GB of VRAM', minVramMb: 80 * 1024 })
      } finally {
        clearInterval(publish)
        adv.stop()
      }
    } finally {
      for (const n of nodes) await n.stop()
    }

    const retire = await runCli(['pod', 'retire', '0x' + HUGE, '--json'], { env: env() })
    expect(retire.code).toBe(0)
    const again = await runCli(['pod', 'retire', '0x' + HUGE], { env: env() })
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/AlreadyRetired/)
    const list2 = await runCli(['pod', 'list', '--json', '--wait-ms', '0'], { env: env() })
    const huge2 = (JSON.parse(list2.stdout) as { pods: Array<Record<string, unknown>> }).pods.find(p => p.id === '0x' + HUGE)!
    expect(huge2).toMatchObject({ retired: true, status: 'retired' })
  }, 120_000)
})
