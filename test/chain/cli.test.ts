import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { access } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { BIN, runCli, tempDir } from '../helpers.js'

// The token holder's path as a user runs it: `heurist init`, `heurist devnet` in one process,
// then `heurist stake 100` and `heurist status --json` from others, reading devnet.json.
let home: { dir: string, cleanup: () => Promise<void> }
let devnet: ChildProcess
let devnetExit: Promise<number | null>
let info: { rpcUrl: string, chainId: number, operator: string, deploymentFile: string }
const env = (): NodeJS.ProcessEnv => ({ HEURIST_HOME: home.dir, HEURIST_PASSWORD: 'test-password', HEURIST_LOG_LEVEL: 'warn' })

beforeAll(async () => {
  home = await tempDir('heurist-chain-cli-')
  const init = await runCli(['init', '--kdf-cost', '10', '--json'], { env: env() })
  expect(init.code).toBe(0)
  devnet = spawn(process.execPath, [BIN, 'devnet', '--port', '0', '--epoch-seconds', '600', '--json'], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] })
  devnetExit = new Promise(resolve => devnet.on('exit', code => resolve(code)))
  info = await new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error('devnet did not start in 60 s')), 60_000)
    devnet.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find(l => l.startsWith('{'))
      if (line !== undefined && out.includes('\n')) { clearTimeout(timer); resolve(JSON.parse(line)) }
    })
    devnet.on('exit', code => { clearTimeout(timer); reject(new Error(`devnet exited ${code}`)) })
  })
})

afterAll(async () => {
  if (devnet !== undefined && devnet.exitCode === null) {
    devnet.kill('SIGKILL')
    await devnetExit
  }
  await home?.cleanup()
})

describe('heurist devnet + token holder commands', () => {
  it('devnet writes devnet.json and funds the operator; stake 100 then status --json shows stHEU', async () => {
    expect(info.chainId).toBe(31337)
    expect(info.deploymentFile).toBe(join(home.dir, 'devnet.json'))
    const stake = await runCli(['stake', '100', '--json'], { env: env() })
    expect(stake.stderr).toBe('')
    expect(stake.code).toBe(0)
    const s = JSON.parse(stake.stdout) as { transactions: Array<{ step: string, hash: string, gasUsed: string }> }
    expect(s.transactions.map(t => t.step)).toEqual(['approve', 'stake'])
    expect(s.transactions[1]!.hash).toMatch(/^0x[0-9a-f]{64}$/)
    const status = await runCli(['status', '--json'], { env: env() })
    expect(status.code).toBe(0)
    const st = JSON.parse(status.stdout) as Record<string, unknown>
    for (const k of ['address', 'heu', 'stheu', 'collateral', 'votes', 'vesting', 'claimable']) expect(st).toHaveProperty(k)
    expect(st.address).toBe(info.operator)
    expect(st.stheu).toBe('100000000000000000000')
    expect(st.heu).toBe('999900000000000000000000')
  })

  it('prints a readable result: transaction, gas, new balances', async () => {
    const r = await runCli(['vote', 'node', '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', '2.5'], { env: env() })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/vote\s+tx 0x[0-9a-f]{64}\s+gas \d+/)
    expect(r.stdout).toMatch(/stHEU\s+97\.5/)
    expect(r.stdout).toMatch(/votes\s+2\.5 stHEU/)
  })

  it('register stakes the collateral under the operator key, owned by another wallet', async () => {
    const owner = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC'
    const r = await runCli(['register', '--collateral', '400', '--owner', owner, '--json'], { env: env() })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) as { owner: string, balances: { collateral: string } }
    expect(out.owner).toBe(owner)
    expect(out.balances.collateral).toBe('400000000000000000000')
  })

  it('register needs the operator\'s consent: --consent-for signs one for an owner, and only that owner can use it', async () => {
    const owner = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC'
    const r = await runCli(['register', '--consent-for', owner, '--json'], { env: env() })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const consent = JSON.parse(r.stdout) as { operator: string, owner: string, nonce: string, deadline: string, signature: string }
    expect(consent).toMatchObject({ operator: info.operator, owner, nonce: '0', signature: expect.stringMatching(/^0x[0-9a-f]{130}$/) })
    // this key is not the owner the consent names: refused before anything is sent
    const use = await runCli(['register', '--collateral', '400', '--consent', r.stdout.trim()], { env: env() })
    expect(use.code).toBe(1)
    expect(use.stderr).toBe(`heurist: register: the consent names owner ${owner}, not this key ${info.operator}\n`)
    const bad = await runCli(['register', '--collateral', '400', '--consent', '{"operator":"0x1"}'], { env: env() })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/^heurist: --consent: operator: /)
  })

  it('bad input: one line on stderr and exit 1 (runtime) or 2 (usage)', async () => {
    const closed = await new Promise<number>(resolve => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const port = (srv.address() as { port: number }).port
        srv.close(() => resolve(port))
      })
    })
    const cases: Array<[string[], number, RegExp]> = [
      [['stake', '100000000'], 1, /^heurist: stake: insufficient HEU balance: have 999500 HEU, need 100000000 HEU\n$/],
      [['register', '--collateral', '5', '--validator'], 1, /^heurist: register validator: stake 5 HEU is under the minimum 400 HEU\n$/],
      [['register', '--collateral', '400'], 1, /^heurist: register: 0x[0-9a-fA-F]{40} is already registered \(owner 0x[0-9a-fA-F]{40}\)\n$/],
      [['withdraw'], 1, /^heurist: withdraw: nothing is vesting \(unstake first\)\n$/],
      [['status', '--rpc', `http://127.0.0.1:${closed}`, '--deployment', join(home.dir, 'devnet.json')], 1, /^heurist: cannot reach the RPC endpoint http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)\n$/],
      [['stake', '1.0000000000000000001'], 2, /^heurist: amount: at most 18 decimal places/],
      [['stake', '-3'], 2, /^heurist: .*negative/],
      [['vote', 'node', 'nope', '1'], 2, /^heurist: address: expected a 0x address/],
      // --rpc alone uses the home's deployment with that URL (the file is apart from the URL)
      [['status', '--rpc', 'http://127.0.0.1:1'], 1, /^heurist: cannot reach the RPC endpoint http:\/\/127\.0\.0\.1:1/]
    ]
    for (const [args, code, err] of cases) {
      const r = await runCli(args, { env: env() })
      expect({ args, code: r.code, stderr: r.stderr }).toMatchObject({ args, code, stderr: expect.stringMatching(err) })
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
    }
  })

  it('unstake vests; withdraw before the lockup says when it unlocks and sends nothing', async () => {
    const r = await runCli(['unstake', '10', '--json'], { env: env() })
    expect(r.code).toBe(0)
    const w = await runCli(['withdraw'], { env: env() })
    expect(w.code).toBe(1)
    expect(w.stderr).toMatch(/^heurist: withdraw: vesting not matured: 10 HEU unlocks from \d{4}-/)
    const st = JSON.parse((await runCli(['status', '--json'], { env: env() })).stdout) as { vesting: { total: string } }
    expect(st.vesting.total).toBe('10000000000000000000')
  })

  it('stops on SIGINT with exit 0 and removes devnet.json', async () => {
    devnet.kill('SIGINT')
    const code = await Promise.race([devnetExit, new Promise<string>(resolve => setTimeout(() => resolve('timeout'), 15_000))])
    expect(code).toBe(0)
    await expect(access(join(home.dir, 'devnet.json'))).rejects.toThrow()
    const r = await runCli(['status'], { env: env() })
    expect(r.code).toBe(2)
    // on a host without a chain the hint is how to reach one elsewhere, not to start a devnet here
    expect(r.stderr).toMatch(/no deployment at .*deployment\.json: pass --rpc URL --deployment FILE, or once `heurist deployment import FILE --rpc URL`/)
    expect(r.stderr).not.toContain('start `heurist devnet`')
  })
})
