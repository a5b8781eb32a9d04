import { CONTRACT_NAMES } from '../../src/chain/compile.js'
import { describe, it, expect } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli, tempDir } from '../helpers.js'

// The built CLI as a real process (npm test builds first).
describe('heurist validate / mine --cheat: bad input', () => {
  it('validate --sample-rate outside (0, 1] exits 2 with the reason', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      for (const bad of ['2', 'abc']) {
        const r = await runCli(['validate', '--home', dir, '--sample-rate', bad])
        expect(r.code).toBe(2)
        expect(r.stderr).toMatch(/--sample-rate must be a probability in \(0, 1\]/)
      }
    } finally { await cleanup() }
  })

  it('mine --cheat with an unknown mode exits 2 and lists the modes', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      const r = await runCli(['mine', '--home', dir, '--cheat', 'lie-a-bit'])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/--cheat must be one of wrong-model, high-temperature, random-tokens, truncate, quantized-q8, quantized-q4, ignore-constraint, wrong-embedding, wrong-seed, blank/)
    } finally { await cleanup() }
  })

  it('mine --cheat is refused on a chain that is not the devnet', async () => {
    const { dir, cleanup } = await tempDir()
    const env = { HEURIST_PASSWORD: 'test-password' }
    try {
      expect((await runCli(['init', '--home', dir, '--kdf-cost', '10'], { env })).code).toBe(0)
      const deployment = join(dir, 'mainnet.json')
      // a complete deployment file (every chain command validates the whole file) for chain id 1
      const contracts = Object.fromEntries(CONTRACT_NAMES.map((n, i) => [n, '0x' + (i + 1).toString(16).padStart(2, '0').repeat(20)]))
      const params = { lockupSeconds: '1', epochSeconds: '1', minCollateral: '1', minValidatorStake: '1', exitCooldown: '1', maxPodRevenueBps: 0, frontendBps: 0, protocolFeeBps: 0, vaultSeedStake: '0', withdrawDelay: '1', slashBps: 0, reporterBps: 0, schedule: 'whitepaper', season2Base: '0', season2MaxDynamic: '0', season2HalfSaturation: '1', reservoir: '0x' + '11'.repeat(20), emissionAllocation: '0' }
      await writeFile(deployment, JSON.stringify({ version: 1, chainId: 1, deployBlock: 0, contracts, params }))
      const r = await runCli(['mine', '--home', dir, '--cheat', 'wrong-model'], { env: { ...env, HEURIST_CHAIN_DEPLOYMENT: deployment } })
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/testing aid for the devnet only; this chain has id 1/)
    } finally { await cleanup() }
  })
})
