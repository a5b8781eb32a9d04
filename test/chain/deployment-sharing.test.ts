import { describe, it, expect, afterAll } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { access, readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { BIN, runCli, tempDir } from '../helpers.js'
import { ZeroHash } from 'ethers'
import { chainPaths, homePaths } from '../../src/core/home.js'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { POOL, type Receipt } from '../../src/core/typed-data.js'
import { devAccounts, deploymentKey, type Deployment } from '../../src/chain/index.js'
import { signReceipt } from '../../src/p2p/index.js'
import { PointsLedger } from '../../src/rewards/index.js'

/**
 * A chain other hosts can use (issue 22, findings 1, 2, 10, 11): `devnet --host 0.0.0.0`
 * serves the shareable deployment at GET /deployment.json, mines idle blocks, and keeps
 * devnet.json with --keep; another home imports it (`deployment import --rpc URL`, or a file
 * from `deployment export`) and its chain commands work with no flags; a devnet restarted on
 * the same home is a new deployment, so state goes to a new folder.
 */
const password = 'test-password'
const homes: Array<{ dir: string, cleanup: () => Promise<void> }> = []
const children: ChildProcess[] = []

async function home (): Promise<string> {
  const h = await tempDir('heurist-share-')
  homes.push(h)
  return h.dir
}

async function startDevnet (dir: string, extra: string[]): Promise<{ child: ChildProcess, exit: Promise<number | null>, info: { rpcUrl: string, listen: string, deploymentFile: string } }> {
  const child = spawn(process.execPath, [BIN, '--home', dir, '--json', 'devnet', '--port', '0', ...extra], { env: { ...process.env, HEURIST_PASSWORD: password, HEURIST_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  const exit = new Promise<number | null>(resolve => child.on('exit', code => { resolve(code) }))
  const info = await new Promise<{ rpcUrl: string, listen: string, deploymentFile: string }>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => { reject(new Error('devnet did not start in 60 s')) }, 60_000)
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find(l => l.startsWith('{'))
      if (line !== undefined && out.includes('\n')) { clearTimeout(timer); resolve(JSON.parse(line)) }
    })
    child.on('exit', code => { clearTimeout(timer); reject(new Error(`devnet exited ${code}`)) })
  })
  return { child, exit, info }
}

async function rpc (url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
  return ((await r.json()) as { result: unknown }).result
}

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  for (const h of homes) await h.cleanup()
})

describe('sharing a chain between hosts', () => {
  it('devnet --host 0.0.0.0: deployment served and imported, idle blocks, --keep, a restart is a new deployment', async () => {
    const chainHome = await home()
    const { child, exit, info } = await startDevnet(chainHome, ['--host', '0.0.0.0', '--block-seconds', '1', '--keep'])
    expect(info.listen).toMatch(/^0\.0\.0\.0:\d+$/)
    // this host reaches a wildcard listener on loopback
    expect(info.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)

    // idle blocks: no transaction is sent, yet the height grows (bounded wait)
    const h0 = BigInt(await rpc(info.rpcUrl, 'eth_blockNumber') as string)
    let h1 = h0
    const end = Date.now() + 15_000
    while (h1 < h0 + 2n && Date.now() < end) {
      await new Promise(resolve => setTimeout(resolve, 250))
      h1 = BigInt(await rpc(info.rpcUrl, 'eth_blockNumber') as string)
    }
    expect(h1).toBeGreaterThanOrEqual(h0 + 2n)

    // the shareable deployment: chain id and contracts, no host-specific RPC URL
    const served = await (await fetch(`${info.rpcUrl}/deployment.json`)).json() as Record<string, unknown>
    expect(served.chainId).toBe(31337)
    expect(served).not.toHaveProperty('rpcUrl')
    expect(served.genesisHash).toMatch(/^0x[0-9a-f]{64}$/)

    // another home: import from the devnet itself, then chain commands need no flags
    const other = await home()
    const imp = await runCli(['--home', other, '--json', 'deployment', 'import', '--rpc', info.rpcUrl])
    expect(imp.code, imp.stderr).toBe(0)
    const stored = JSON.parse(await readFile(join(other, 'deployment.json'), 'utf8')) as Record<string, unknown>
    expect(stored.rpcUrl).toBe(info.rpcUrl)
    expect(stored.contracts).toEqual(served.contracts)
    const status = await runCli(['--home', other, '--json', 'status', '--address', '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'])
    expect(status.code, status.stderr).toBe(0)
    expect((JSON.parse(status.stdout) as { chainId: number }).chainId).toBe(31337)

    // doctor checks the configured chain: chain id, genesis and every contract's code
    const doc = await runCli(['--home', other, '--json', 'doctor'], { timeoutMs: 90_000 })
    const rpcCheck = (JSON.parse(doc.stdout) as { checks: Array<{ name: string, status: string, detail: string }> }).checks.find(c => c.name === 'chain-rpc')
    expect(rpcCheck, doc.stderr).toMatchObject({ status: 'ok' })
    expect(rpcCheck!.detail).toContain('8 contracts found')

    // export → file → import on a third home
    const exported = await runCli(['--home', chainHome, 'deployment', 'export'])
    expect(exported.code, exported.stderr).toBe(0)
    expect(JSON.parse(exported.stdout)).toEqual(served)
    const third = await home()
    const file = join(third, 'chain.json')
    const out = await runCli(['--home', chainHome, 'deployment', 'export', '--out', file])
    expect(out.code, out.stderr).toBe(0)
    const imp3 = await runCli(['--home', third, '--json', 'deployment', 'import', file, '--rpc', info.rpcUrl])
    expect(imp3.code, imp3.stderr).toBe(0)

    // a wrong RPC for the file is refused by the check (chain id matches, no contracts there)
    const fresh = await startDevnet(await home(), ['--block-seconds', '0'])
    const wrong = await runCli(['--home', await home(), 'deployment', 'import', file, '--rpc', fresh.info.rpcUrl])
    fresh.child.kill('SIGINT')
    expect(await fresh.exit).toBe(0)
    // two devnets deploy at the same addresses: only the genesis hash tells them apart
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(/no contract|restarted|genesis/i)

    // --keep: devnet.json stays after the devnet stops
    child.kill('SIGINT')
    expect(await exit).toBe(0)
    await access(join(chainHome, 'devnet.json'))

    // a restarted devnet on the same home is a new deployment: its state folder is new
    const s1 = await runCli(['--home', chainHome, '--json', 'deployment', 'export'])
    const key1 = (JSON.parse(s1.stdout) as { genesisHash: string }).genesisHash
    // the first chain's ledger holds a receipt of epoch 0 (as a miner on this home would have
    // filed it): same chain id, same Slashing address as the restarted chain will have
    const dA = JSON.parse(await readFile(join(chainHome, 'devnet.json'), 'utf8')) as Deployment
    const minerW = devAccounts(3)[2]!
    const where = { chainId: dA.chainId, verifyingContract: dA.contracts.Slashing }
    const r: Receipt = { jobId: '0x' + 'ab'.repeat(32), requester: devAccounts(2)[1]!.address, miner: minerW.address, modelId: '0x' + '11'.repeat(32), pool: POOL.llm, inputHash: ZeroHash, outputHash: ZeroHash, paramsHash: ZeroHash, computeUnits: 2000n, startedAt: 1000n, endedAt: 1010n }
    const storeA = await Store.open(chainPaths(homePaths(chainHome), deploymentKey(dA)).store)
    try {
      const ledgerA = new PointsLedger(storeA, silentLogger())
      ledgerA.setEpoch(0n)
      const signed = await signReceipt(minerW as never, r, where)
      expect(await ledgerA.record({ v: 1, type: 'receipt', signed, chainId: dA.chainId, verifyingContract: dA.contracts.Slashing } as never, identityFromPrivateKey(devAccounts(2)[1]!.privateKey).peerId.toString())).toBe(true)
      expect((await ledgerA.points(0n, { isPayer: async () => true, payoutOf: async (a: string) => a, paidWei: async () => 0n })).receipts).toBe(1)
    } finally {
      await storeA.close()
    }
    const again = await startDevnet(chainHome, ['--block-seconds', '0'])
    // the new chain's epoch 0 starts from an empty ledger (finding 10: it counted the old one's receipts)
    const earned = await runCli(['--home', chainHome, '--json', 'earnings', '--epoch', '0', '--address', minerW.address], { timeoutMs: 60_000 })
    expect(earned.code, earned.stderr).toBe(0)
    const epoch0 = (JSON.parse(earned.stdout) as { epochs: Array<{ ledger: { receipts: unknown[] } | null }> }).epochs[0]!
    expect(epoch0.ledger?.receipts ?? []).toEqual([])
    const s2 = await runCli(['--home', chainHome, '--json', 'deployment', 'export'])
    const key2 = (JSON.parse(s2.stdout) as { genesisHash: string }).genesisHash
    expect(key2).not.toBe(key1)
    again.child.kill('SIGINT')
    expect(await again.exit).toBe(0)
    // without --keep, devnet.json goes with the chain
    await expect(access(join(chainHome, 'devnet.json'))).rejects.toThrow()
    expect(await readdir(chainHome)).not.toContain('devnet.json')
  }, 180_000)
})
