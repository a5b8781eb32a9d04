import { describe, it, expect, afterEach } from 'vitest'
import OpenAI from 'openai'
import { Advertiser, basicHardware, type HeuristNode } from '../../src/p2p/index.js'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { Accounts, Transcripts, VoucherBook, createGateway, createMeshBackend, serveTranscripts, fetchTranscript, type Gateway, type CompletedJob } from '../../src/gateway/index.js'
import { transcriptMismatch, fromGatewayTranscript } from '../../src/validation/index.js'
import type { RunJobResult } from '../../src/p2p/index.js'
import { tempDir } from '../helpers.js'
import { testNode, until, stopAll } from '../p2p/util.js'
import { ScriptedExecutor, SCRIPT_MODEL } from '../p2p/scripted-executor.js'

/**
 * Gateway + two miners over real TCP on 127.0.0.1: routing from live adverts, a miner
 * killed in the middle of a job, vouchers raised per miner from the receipts' compute units.
 */
describe('gateway over the mesh', () => {
  let nodes: HeuristNode[] = []
  let advertisers: Advertiser[] = []
  let gw: Gateway | null = null
  let store: Store | null = null
  let cleanup: (() => Promise<void>) | null = null

  afterEach(async () => {
    await gw?.stop()
    advertisers.forEach(a => { a.stop() })
    await stopAll(nodes)
    await store?.close()
    await cleanup?.()
    nodes = []; advertisers = []; gw = null; store = null; cleanup = null
  })

  async function startMiner (bootstrap: string[], exec: ScriptedExecutor, tokensPerSecond: number): Promise<HeuristNode> {
    const n = await testNode({ bootstrap })
    nodes.push(n)
    await n.serveJobs(exec)
    const a = new Advertiser(n, { intervalMs: 500, describe: () => ({ hardware: basicHardware(), models: [SCRIPT_MODEL], queueDepth: 0, maxJobs: 1, tokensPerSecond, imagesPerSecond: 0, price: 3n, version: 'test', paid: false }) }, silentLogger())
    advertisers.push(a)
    a.start()
    return n
  }

  /** The gateway's store (temp folder) and mesh node; afterEach tears both down. */
  async function startGatewayNode (): Promise<{ gwNode: HeuristNode, store: Store }> {
    const t = await tempDir('heurist-gw-mesh-')
    cleanup = t.cleanup
    store = await Store.open(t.dir)
    const gwNode = await testNode()
    nodes.push(gwNode)
    return { gwNode, store }
  }

  it('a miner killed mid-request → the request succeeds through the other miner, which alone is paid; validators (only) fetch a transcript that matches the receipt', async () => {
    const { gwNode, store } = await startGatewayNode()
    const boot = [gwNode.multiaddrs()[0]!]
    const slowExec = new ScriptedExecutor(['a', 'b', 'c', 'd', 'e', 'f'], 300)
    const goodExec = new ScriptedExecutor(['one', ' two', ' three'], 10)
    const victim = await startMiner(boot, slowExec, 1000) // fastest advert: routed to first
    const good = await startMiner(boot, goodExec, 10)
    expect(await until(() => gwNode.peerTable.miners(SCRIPT_MODEL.id).length === 2, 20_000, 100)).toBe(true)

    const backend = createMeshBackend(gwNode, silentLogger())
    backend.start()
    const accounts = new Accounts(store)
    const { apiKey } = await accounts.create(10n ** 18n)
    const vouchers = new VoucherBook(store, gwNode.address, gwNode.address, null)
    const jobs: CompletedJob[] = []
    const transcripts = new Transcripts(store)
    const validator = await testNode({ bootstrap: boot })
    const outsider = await testNode({ bootstrap: boot })
    nodes.push(validator, outsider)
    const stopTranscripts = await serveTranscripts(gwNode, transcripts, silentLogger(), { isValidator: async (a) => a === validator.address })
    gw = createGateway({ backend, accounts, logger: silentLogger(), vouchers, transcripts, onJob: (j) => { jobs.push(j) } }, { port: 0, firstTokenTimeoutMs: 5000, requestTimeoutMs: 20_000 })
    await gw.start()
    const client = new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 30_000 })

    expect((await client.models.list()).data.map(m => m.id)).toEqual(['scripted'])

    const pending = client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'hi' }], max_tokens: 6 }).withResponse()
    // the victim has the job and is part-way through it: kill its libp2p node (no goodbye frames)
    expect(await until(() => slowExec.seen.length === 1, 10_000, 20)).toBe(true)
    await new Promise(resolve => setTimeout(resolve, 400))
    await victim.libp2p.stop()
    const r = await pending
    expect(r.data.choices[0]!.message.content).toBe('one two three')
    expect(r.response.headers.get('x-heurist-miner')).toBe(good.peerId.toString())
    expect(goodExec.seen).toHaveLength(1)

    expect(await until(() => jobs.length === 1, 5000, 20)).toBe(true)
    const job = jobs[0]!
    expect(job.miner.address).toBe(good.address)
    expect(job.computeUnits).toBeGreaterThan(0n)
    expect(job.cost).toBe(3n * job.computeUnits)
    const paid = await vouchers.all()
    expect(paid.map(v => v.miner)).toEqual([good.address])
    expect(paid[0]!.cumulativeAmount).toBe(job.cost)

    // a registered validator gets the transcript, and it matches the miner's receipt; anyone else is refused
    const receipt = (job.receipt as RunJobResult).receipt
    expect(job.receiptJobId).toBe(receipt.receipt.jobId)
    const got = await fetchTranscript(validator, gwNode.peerId.toString(), receipt.receipt.jobId)
    const vt = fromGatewayTranscript(receipt.receipt.jobId, got)
    expect(vt).not.toBeNull()
    expect(transcriptMismatch(vt!, receipt)).toBeNull()
    expect((got.output as { text: string }).text).toBe('one two three')
    await expect(fetchTranscript(outsider, gwNode.peerId.toString(), receipt.receipt.jobId)).rejects.toMatchObject({ code: 'GATEWAY_NOT_A_VALIDATOR' })
    await expect(fetchTranscript(validator, gwNode.peerId.toString(), '0x' + '0'.repeat(64))).rejects.toMatchObject({ code: 'GATEWAY_NO_TRANSCRIPT' })
    await stopTranscripts()
    backend.stop()
  })

  it('a client that disconnects mid-stream → the job is cancelled on the miner over the mesh; the next request is served', async () => {
    const { gwNode, store } = await startGatewayNode()
    const exec = new ScriptedExecutor(Array.from({ length: 100 }, (_, i) => `w${i} `), 30)
    await startMiner([gwNode.multiaddrs()[0]!], exec, 10)
    expect(await until(() => gwNode.peerTable.miners(SCRIPT_MODEL.id).length === 1, 20_000, 100)).toBe(true)
    const backend = createMeshBackend(gwNode, silentLogger())
    const accounts = new Accounts(store)
    const { apiKey } = await accounts.create(10n ** 18n)
    gw = createGateway({ backend, accounts, logger: silentLogger(), vouchers: null, transcripts: null }, { port: 0 })
    await gw.start()
    const client = new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 30_000 })
    const ac = new AbortController()
    const stream = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'hi' }], max_tokens: 100, stream: true }, { signal: ac.signal })
    let n = 0
    try {
      for await (const _c of stream) { if (++n === 4) ac.abort() }
    } catch { /* our own abort */ }
    expect(await until(() => exec.seen[0]?.aborted === true, 10_000, 20)).toBe(true)
    expect(exec.seen[0]!.tokens).toBeLessThan(100)
    expect(await until(() => gwNode.connectedPeers().length > 0 && gw!.pending()[SCRIPT_MODEL.id] === undefined, 5000, 20)).toBe(true)
    const r = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 })
    expect(r.choices[0]!.message.content).toBe('w0 w1 ')
  })
})
