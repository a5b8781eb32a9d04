import { describe, it, expect, afterEach } from 'vitest'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { copyFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { createLlamaEngine, ensureTinyModels, type LlamaEngine } from '../../src/inference/index.js'
import { engineExecutor } from '../../src/cli/mesh.js'
import { AlertSender, MeshHealer, PartSupervisor, healingExecutor, type Alert } from '../../src/ops/index.js'
import { silentLogger } from '../../src/core/logger.js'
import { isHeuristError } from '../../src/core/errors.js'
import { Advertiser, basicHardware, TOPICS, type JobExecutor, type JobRequest, type RequestFrame } from '../../src/p2p/index.js'
import { tempDir } from '../helpers.js'
import { testNode, until } from '../p2p/util.js'
import { ScriptedExecutor, SCRIPT_MODEL } from '../p2p/scripted-executor.js'

const stops: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => {})
  stops.length = 0
})

async function receiver (): Promise<{ url: string, got: Alert[] }> {
  const got: Alert[] = []
  const server: Server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => { got.push(JSON.parse(body) as Alert); res.writeHead(204).end() })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  stops.push(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, got }
}

interface Part { executor: JobExecutor, llm: LlamaEngine, stop: () => Promise<void> }

function job (modelId: string, seed: number): RequestFrame {
  return { v: 1, type: 'request', jobId: `job-${seed}`, kind: 'llm', modelId, input: 'Once upon', sampling: { seed, temperature: 0, topP: 1, topK: 0, maxTokens: 4, stop: [] } } as unknown as RequestFrame
}

describe('self-healing: a crashed engine restarts with backoff, logged and alerted', () => {
  it('disposing the real llama engine under the executor: the job fails, the engine reloads, the next job is served, a restarted alert is posted', async () => {
    const { dir, cleanup } = await tempDir('heurist-heal-')
    stops.push(cleanup)
    const [model] = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama'] })
    const r = await receiver()
    const alerts = new AlertSender({ url: r.url, node: '0xminer', role: 'mine', logger: silentLogger(), version: 'test' }, { baseDelayMs: 20 })
    stops.push(() => { alerts.stop() })
    let loads = 0
    const engine = new PartSupervisor<Part>({
      name: 'engine',
      logger: silentLogger(),
      alerts,
      start: async () => {
        const llm = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 4 })
        const info = await llm.load(model!.path, { id: model!.id, name: model!.name })
        loads++
        return { executor: engineExecutor(llm, new Map(), [info]), llm, stop: async () => { await llm.stop() } }
      },
      stop: async p => { await p.stop() }
    }, { initialMs: 50 })
    await engine.start()
    stops.push(async () => { await engine.stop() })
    const exec = healingExecutor(engine)
    const signal = new AbortController().signal

    const before = await exec.execute(job(model!.id, 1), { signal })
    expect(before.kind).toBe('llm')
    expect(exec.models().map(m => m.id)).toEqual([model!.id])

    // the crash: the native engine goes away under the executor
    await engine.current()!.llm.stop()
    const failed = await exec.execute(job(model!.id, 2), { signal }).then(() => null, (e: unknown) => e)
    expect(isHeuristError(failed, 'INFERENCE_DISPOSED')).toBe(true)
    // while it reloads: no model advertised, jobs refused with a typed error
    expect(exec.models()).toEqual([])
    const during = await exec.execute(job(model!.id, 3), { signal }).then(() => null, (e: unknown) => e)
    expect(isHeuristError(during, 'INFERENCE_RESTARTING')).toBe(true)

    expect(await until(() => engine.current() !== null, 30_000)).toBe(true)
    expect(loads).toBe(2)
    expect(engine.stats.restarts).toBe(1)
    const after = await exec.execute(job(model!.id, 1), { signal })
    // the same model, the same seed: the same text
    expect(after.kind === 'llm' && before.kind === 'llm' ? after.result.text : null).toBe(before.kind === 'llm' ? before.result.text : 'not llm')

    await alerts.flush(5000)
    expect(r.got).toHaveLength(1)
    expect(r.got[0]).toMatchObject({ kind: 'restarted', data: { part: 'engine', attempt: 1, inMs: 50 } })
    expect(String(r.got[0]!.data.reason)).toContain('stopped')
  }, 120_000)

  it('a restart that fails is retried with doubling delays until the model loads again', async () => {
    const { dir, cleanup } = await tempDir('heurist-heal-backoff-')
    stops.push(cleanup)
    const [model] = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama'] })
    const r = await receiver()
    const alerts = new AlertSender({ url: r.url, node: '0xminer', role: 'mine', logger: silentLogger(), version: 'test' }, { baseDelayMs: 20 })
    stops.push(() => { alerts.stop() })
    const spare = join(dir, 'spare.gguf')
    await copyFile(model!.path, spare)
    const startFailures: string[] = []
    const engine = new PartSupervisor<Part>({
      name: 'engine',
      logger: silentLogger(),
      alerts,
      start: async () => {
        const llm = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 4 })
        try {
          const info = await llm.load(model!.path, { id: model!.id, name: model!.name })
          return { executor: engineExecutor(llm, new Map(), [info]), llm, stop: async () => { await llm.stop() } }
        } catch (e) {
          await llm.stop()
          throw e
        }
      },
      stop: async p => { await p.stop() },
      // the model file is back after the second failed load
      onStartFailed: e => { startFailures.push(e.message); if (startFailures.length === 2) void rename(spare, model!.path) }
    }, { initialMs: 40, maxMs: 1000 })
    await engine.start()
    stops.push(async () => { await engine.stop() })
    const exec = healingExecutor(engine)
    // the model file disappears, then the engine crashes: reloading fails until the file is back
    await rename(model!.path, join(dir, 'gone.gguf'))
    await engine.current()!.llm.stop()
    await exec.execute(job(model!.id, 1), { signal: new AbortController().signal }).catch(() => {})
    expect(await until(() => engine.current() !== null, 30_000)).toBe(true)
    expect(startFailures).toHaveLength(2)
    expect(engine.stats).toMatchObject({ restarts: 1, failedStarts: 2 })
    await alerts.flush(5000)
    expect(r.got.map(a => a.data.inMs)).toEqual([40, 80, 160])
    expect(r.got.map(a => a.data.attempt)).toEqual([1, 2, 3])
  }, 120_000)
})

describe('self-healing: libp2p that stopped on its own is started again in place', () => {
  it('same PeerId, the job protocol and gossip work again, a restarted alert is posted', async () => {
    const r = await receiver()
    const alerts = new AlertSender({ url: r.url, node: '0xminer', role: 'mine', logger: silentLogger(), version: 'test' }, { baseDelayMs: 20 })
    stops.push(() => { alerts.stop() })
    const miner = await testNode()
    stops.push(async () => { await miner.stop() })
    await miner.serveJobs(new ScriptedExecutor(), { maxConcurrentJobs: 1, maxQueue: 1 })
    const addr = miner.multiaddrs()[0]!
    const peer = await testNode({ bootstrap: [addr] })
    stops.push(async () => { await peer.stop() })
    await peer.dial(addr)
    const healer = new MeshHealer({ node: miner, logger: silentLogger(), alerts }, { checkMs: 60_000, backoff: { initialMs: 50 } })
    await healer.start()
    stops.push(async () => { await healer.stop() })
    const id = miner.peerId.toString()
    const llmJob: JobRequest = { kind: 'llm', modelId: SCRIPT_MODEL.id, input: 'hello', sampling: { seed: 1, temperature: 0, topP: 1, topK: 0, maxTokens: 5, stop: [] } }
    const served = async (): Promise<unknown> => { const out = (await peer.runJob(miner.peerId, llmJob)).output; return out.kind === 'llm' ? out.result.text : out.kind }
    expect(await served()).toBe('one two three four five')

    // gossip: the miner's adverts reach the peer
    const adv = new Advertiser(miner, { intervalMs: 500, describe: () => ({ hardware: basicHardware(), models: [SCRIPT_MODEL], queueDepth: 0, maxJobs: 1, tokensPerSecond: 1, imagesPerSecond: 0, price: 0n, version: 'test', paid: false }) }, silentLogger())
    adv.start()
    stops.push(() => { adv.stop() })
    expect(await until(() => peer.peerTable.miners().some(m => m.peerId === id), 30_000)).toBe(true)

    // the fault: libp2p stops under the running node
    await miner.libp2p.stop()
    expect(miner.multiaddrs()).toEqual([])
    healer.check()
    expect(await until(() => miner.libp2p.status === 'started' && healer.supervisor.current() !== null, 30_000)).toBe(true)
    expect(miner.peerId.toString()).toBe(id)
    expect(miner.pubsub.getTopics().sort()).toEqual([TOPICS.capacity, TOPICS.receipts].sort())

    // the peer finds it again, and hears its adverts again (the node redials its bootstrap list; here the peer dials back)
    await peer.dial(miner.multiaddrs()[0]!)
    expect(await served()).toBe('one two three four five')
    const heardAt = (): number => peer.peerTable.miners().find(m => m.peerId === id)?.lastSeen ?? 0
    const restartedAt = Date.now()
    expect(await until(() => heardAt() > restartedAt, 30_000)).toBe(true)

    await alerts.flush(5000)
    expect(r.got.map(a => a.data)).toMatchObject([{ part: 'mesh', attempt: 1, inMs: 50 }])
    expect(String(r.got[0]!.data.reason)).toContain('libp2p stopped on its own')
  }, 120_000)
})
