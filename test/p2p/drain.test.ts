import { describe, it, expect } from 'vitest'
import { isHeuristError } from '../../src/core/errors.js'
import type { JobRequest } from '../../src/p2p/index.js'
import { testNode } from './util.js'
import { ScriptedExecutor, SCRIPT_MODEL } from './scripted-executor.js'

const job: JobRequest = { kind: 'llm', modelId: SCRIPT_MODEL.id, input: 'hi', sampling: { seed: 1, temperature: 0, topP: 1, topK: 0, maxTokens: 5, stop: [] } }

describe('graceful drain', () => {
  it('finishes a running job with a valid receipt, refuses new ones, then stops', async () => {
    const miner = await testNode()
    const client = await testNode()
    const late = await testNode()
    try {
      await miner.serveJobs(new ScriptedExecutor(undefined, 150), { maxConcurrentJobs: 2 })
      await client.dial(miner.multiaddrs()[0]!)
      await late.dial(miner.multiaddrs()[0]!)
      let stopping: Promise<void> | undefined
      const running = client.runJob(miner.peerId, job, { onToken: () => { stopping ??= miner.stop(10_000) } })
      // wait until the drain has begun, then try a new job
      while (stopping === undefined) await new Promise(resolve => setTimeout(resolve, 10))
      let lateCode = ''
      try { await late.runJob(miner.peerId, job) } catch (e) { lateCode = isHeuristError(e) ? String(e.details?.code ?? e.code) : String(e) }
      expect(lateCode).toBe('P2P_DRAINING')
      const r = await running
      expect(r.output.kind === 'llm' && r.output.result.text).toBe('one two three four five')
      expect(r.receiptValid).toBe(true)
      await stopping
      expect(miner.connectedPeers.bind(miner)).toThrow()
    } finally {
      await Promise.allSettled([client.stop(), late.stop(), miner.stop()])
    }
  })

  it('cancels a job that outlives the grace period', async () => {
    const miner = await testNode()
    const client = await testNode()
    try {
      const exec = new ScriptedExecutor(undefined, 400)
      await miner.serveJobs(exec)
      await client.dial(miner.multiaddrs()[0]!)
      let stopping: Promise<void> | undefined
      const p = client.runJob(miner.peerId, job, { onToken: () => { stopping ??= miner.stop(100) } })
      let code = ''
      try { await p } catch (e) { code = isHeuristError(e) ? String(e.details?.code ?? e.code) : String(e) }
      expect(['P2P_DRAINING', 'P2P_STREAM_CLOSED', 'P2P_PROTOCOL']).toContain(code)
      await stopping
      expect(exec.seen[0]?.aborted).toBe(true)
    } finally {
      await Promise.allSettled([client.stop(), miner.stop()])
    }
  })
})
