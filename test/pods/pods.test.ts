import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import OpenAI from 'openai'
import { Wallet, ZeroAddress } from 'ethers'
import { TOPICS, encodeMessage, type HeuristNode } from '../../src/p2p/index.js'
import { buildDemand, type SignedVoucher } from '../../src/gateway/index.js'
import { deployPod, readPods, type DeployPodInput } from '../../src/pods/index.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { tempDir } from '../helpers.js'
import { testNode, until } from '../p2p/util.js'
import { startPodNet, tinyWeights, hostsOf, type PodNet } from './fixture.js'

/**
 * Pods end to end on real parts: contracts on the EDR devnet, weights over HTTP on
 * 127.0.0.1, three miners on libp2p running llama.cpp, a gateway serving the OpenAI API.
 */
describe('pods: scale from zero, serve, pay the deployer, scale to zero', () => {
  let net: PodNet
  let cleanup: () => Promise<void>
  let deployer: Wallet
  const others: HeuristNode[] = []

  beforeAll(async () => {
    const t = await tempDir('heurist-pods-')
    cleanup = t.cleanup
    net = await startPodNet(t.dir, { manager: { scaleDownMs: 1500 } })
    deployer = net.devnet.accounts[6]!
  }, 120_000)

  afterAll(async () => {
    for (const n of others) await n.stop().catch(() => {})
    await net?.stop()
    await cleanup?.()
  })

  async function deploy (seed: number, name: string, extra: Partial<DeployPodInput> = {}): Promise<string> {
    const w = tinyWeights(seed)
    net.weights.put(`/${name}.gguf`, w.bytes)
    const chain = await net.chainOf(deployer)
    await deployPod(chain, { sha256: w.sha256, kind: 'llm', minVramMb: 0, revenueBps: 2000, name, uri: net.weights.url(`/${name}.gguf`), ...extra })
    for (const m of net.miners) await m.host.directory.refresh()
    await net.gatewayDirectory.refresh()
    return extra.sha256 ?? w.sha256
  }

  it('an unhosted pod is pulled and loaded by miners with room when requests arrive, served, paid (deployer share), and unloaded everywhere after the idle time', async () => {
    const podId = await deploy(11, 'tiny-pod')
    expect(hostsOf(net, podId)).toHaveLength(0)
    expect(net.gateway.node.peerTable.miners(podId)).toHaveLength(0)
    expect(net.weights.hits.get('/tiny-pod.gguf')).toBeUndefined()

    const { apiKey } = await net.gateway.accounts.create(10n ** 17n)
    const client = new OpenAI({ apiKey, baseURL: `${net.gateway.gateway.url}/v1`, maxRetries: 0, timeout: 90_000 })
    const replies = await Promise.all([0, 1, 2].map(async i =>
      await client.chat.completions.create({ model: 'tiny-pod', messages: [{ role: 'user', content: `hello ${i}` }], max_tokens: 6, seed: i })))
    for (const r of replies) {
      expect(r.choices[0]!.message.content!.length).toBeGreaterThan(0)
      expect(r.usage!.completion_tokens).toBeGreaterThan(0)
    }
    const hosts = hostsOf(net, podId)
    expect(hosts.length).toBeGreaterThanOrEqual(1)
    // each host pulled the weights once through its model cache (sha256 checked)
    expect(net.weights.hits.get('/tiny-pod.gguf')).toBe(net.miners.filter(m => m.host.manager.events.some(e => e.pod === podId && e.event === 'pulling')).length)
    // the pod is asked for by id as well as by name
    const byId = await client.completions.create({ model: '0x' + podId, prompt: 'once', max_tokens: 4 })
    expect(byId.choices[0]!.text.length).toBeGreaterThan(0)

    // payment: redeem every voucher; the deployer gets its 20 % of each voucher that names it
    // (requests that named the pod by its name); the request by id paid no pod share
    // (the gateway raises a voucher just after the response goes out: wait for the by-id one)
    const podVouchers = async (): Promise<SignedVoucher[]> => (await net.gateway.vouchers.all()).filter(v => v.podId === '0x' + podId)
    expect(await until(async () => (await podVouchers()).some(v => v.podDeployer === ZeroAddress && v.podBps === 0), 10_000, 50)).toBe(true)
    const vouchers = await podVouchers()
    expect(vouchers.some(v => v.podDeployer === deployer.address && v.podBps === 2000)).toBe(true)
    const deployerChain = await net.chainOf(deployer)
    const before = (await deployerChain.balances(deployer.address)).heu
    let share = 0n
    for (const v of vouchers) {
      const { signature, ...voucher } = v
      await deployerChain.redeemVoucher(voucher, signature)
      if (v.podDeployer === deployer.address) share += v.cumulativeAmount * 2000n / 10_000n
    }
    expect(share).toBeGreaterThan(0n)
    expect((await deployerChain.balances(deployer.address)).heu).toBe(before + share)

    // scale to zero: no demand for 3 s → every miner unloads it, and adverts stop naming it
    expect(await until(() => hostsOf(net, podId).length === 0, 20_000, 100)).toBe(true)
    const unloads = hosts.map(h => h.host.manager.events.filter(e => e.pod === podId && e.event === 'unloaded'))
    for (const u of unloads) expect(u.length).toBeGreaterThan(0)
    // an extra host may step down first (scale-down, when the machine is slow and demand thins);
    // the last host goes because the pod is idle: that is the scale to zero
    const reasons = unloads.flat().map(e => e.reason)
    expect(reasons.every(r => r === 'idle' || r === 'more hosts than its votes and demand want')).toBe(true)
    expect(reasons).toContain('idle')
    expect(await until(() => net.gateway.node.peerTable.miners(podId).length === 0, 10_000, 100)).toBe(true)
  }, 150_000)

  it('votes for a pod change how many miners host it under sustained demand', async () => {
    const podId = await deploy(21, 'voted-pod')
    // a second pod holds all the votes at first
    const other = await deploy(22, 'other-pod')
    const voter = net.devnet.accounts[7]!
    const vc = await net.chainOf(voter)
    await vc.stake(1000n * 10n ** 18n)
    await vc.votePod('0x' + other, 100n * 10n ** 18n)

    // sustained demand from a (second) gateway: 20 pending jobs, re-published every 500 ms
    const gw = await testNode({ bootstrap: [net.miners[0]!.node.multiaddrs()[0]!] })
    others.push(gw)
    const publish = setInterval(() => { gw.publish(TOPICS.demand, encodeMessage(buildDemand(gw.address, { [podId]: 20 }))).catch(() => {}) }, 500)
    try {
      for (const m of net.miners) await m.host.directory.refresh()
      // share 0 of the votes: one host (demand always gets at least one)
      expect(await until(() => hostsOf(net, podId).length === 1, 30_000, 100)).toBe(true)
      await new Promise(resolve => setTimeout(resolve, 2500))
      expect(hostsOf(net, podId)).toHaveLength(1)

      // 300 votes against 100: 75 % of the votes → ⌈0.75 · 3⌉ = 3 hosts
      await vc.votePod('0x' + podId, 300n * 10n ** 18n)
      for (const m of net.miners) await m.host.directory.refresh()
      expect(await until(() => hostsOf(net, podId).length === 3, 30_000, 100)).toBe(true)

      // votes move away again: back down to one host (after scaleDownMs in excess)
      await vc.unvotePod('0x' + podId, 300n * 10n ** 18n)
      for (const m of net.miners) await m.host.directory.refresh()
      expect(await until(() => hostsOf(net, podId).length === 1, 30_000, 100)).toBe(true)
    } finally {
      clearInterval(publish)
    }
    const pods = await readPods(await net.chainOf(voter))
    expect(pods.find(p => p.id === other)!.votes).toBe(100n * 10n ** 18n)
  }, 150_000)

  it('bad weights are never served and the miner says why: unreachable URL, sha256 mismatch', async () => {
    const unreachable = await deploy(31, 'gone-pod', { uri: 'http://127.0.0.1:1/gone.gguf' })
    const wrong = tinyWeights(32)
    // registered under one hash, served with other bytes
    const liar = await deploy(33, 'liar-pod', { sha256: wrong.sha256 })
    const gw = await testNode({ bootstrap: [net.miners[0]!.node.multiaddrs()[0]!] })
    others.push(gw)
    const publish = setInterval(() => { gw.publish(TOPICS.demand, encodeMessage(buildDemand(gw.address, { [unreachable]: 1, [liar]: 1 }))).catch(() => {}) }, 500)
    try {
      expect(await until(() => net.miners.some(m => m.host.manager.failure(unreachable) !== undefined) && net.miners.some(m => m.host.manager.failure(liar) !== undefined), 30_000, 100)).toBe(true)
      const why = (id: string): string => net.miners.map(m => m.host.manager.failure(id)).find(r => r !== undefined)!
      expect(why(unreachable)).toMatch(/cannot download/)
      expect(why(liar)).toMatch(/sha256 of .* is [0-9a-f]{64}, expected/)
      await new Promise(resolve => setTimeout(resolve, 1500))
      expect(hostsOf(net, unreachable)).toHaveLength(0)
      expect(hostsOf(net, liar)).toHaveLength(0)
      // nothing was loaded under that id anywhere
      for (const m of net.miners) expect(m.host.manager.models().some(x => x.id === liar)).toBe(false)
    } finally {
      clearInterval(publish)
    }
  }, 90_000)

  it('demand from a peer that signs for another gateway is rejected', async () => {
    const liar = await testNode({ bootstrap: [net.miners[0]!.node.multiaddrs()[0]!] })
    others.push(liar)
    const someoneElse = identityFromPrivateKey(Wallet.createRandom().privateKey).address
    const id = 'f'.repeat(64)
    expect(await until(() => liar.connectedPeers().length > 0, 10_000)).toBe(true)
    await new Promise(resolve => setTimeout(resolve, 1500))
    for (let i = 0; i < 3; i++) {
      await liar.publish(TOPICS.demand, encodeMessage(buildDemand(someoneElse, { [id]: 50 }))).catch(() => {})
      await new Promise(resolve => setTimeout(resolve, 300))
    }
    expect(await until(() => net.miners.some(m => m.node.stats.get(TOPICS.demand, 'reject', 'P2P_OPERATOR_MISMATCH') > 0), 10_000)).toBe(true)
    for (const m of net.miners) expect(m.host.demand.totals().get(id)).toBeUndefined()
  }, 30_000)
})
