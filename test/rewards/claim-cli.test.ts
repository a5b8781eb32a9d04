import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { startDevnet, connectChain, writeDeployment, writeRewardFile, buildRewardTree, signRewardRoot, type Devnet } from '../../src/chain/index.js'
import { WAD } from '../../src/economics/index.js'
import { runCli, tempDir } from '../helpers.js'
import { chainPaths, homePaths } from '../../src/core/home.js'
import { deploymentKey } from '../../src/chain/index.js'

const env = { HEURIST_PASSWORD: 'claim-pw', HEURIST_LOG_FORMAT: 'json' }
let devnet: Devnet
let home: { dir: string, cleanup: () => Promise<void> }

beforeAll(async () => {
  home = await tempDir('heurist-claim-')
  expect((await runCli(['--home', home.dir, 'init', '--kdf-cost', '10'], { env })).code).toBe(0)
  const { address } = JSON.parse((await runCli(['--home', home.dir, '--json', 'whoami'], { env })).stdout) as { address: string }
  // the operator gets ETH for gas (it submits the claim)
  devnet = await startDevnet({ port: 0, fund: [address], deploy: { epochSeconds: 3600n } })
  await writeDeployment(join(home.dir, 'devnet.json'), devnet.deployment)
}, 120_000)

afterAll(async () => {
  await devnet?.stop()
  await home?.cleanup()
})

describe('heurist claim by hand', () => {
  it('status shows what is claimable from <home>/rewards once the root is on chain; claim pays it once, a second claim exits 1', async () => {
    const who = JSON.parse((await runCli(['--home', home.dir, '--json', 'whoami'], { env })).stdout) as { address: string }
    const other = devnet.accounts[5]!.address
    const tree = buildRewardTree([{ account: who.address, amount: 5n * WAD }, { account: other, amount: 2n * WAD }])
    // a validator (the whole validator stake: a quorum alone) posts epoch 0's root after the epoch
    const v = devnet.accounts[4]!
    const vc = await connectChain({ deployment: devnet.deployment, signer: v })
    try {
      await vc.registerValidator(BigInt(devnet.deployment.params.minValidatorStake))
      await devnet.timeTravel(3600)
      await vc.postRewardRoot(0n, tree.root, tree.total, [await signRewardRoot(v, devnet.deployment, { epoch: 0n, root: tree.root, total: tree.total })])
    } finally {
      vc.close()
    }
    await writeRewardFile(chainPaths(homePaths(home.dir), deploymentKey(devnet.deployment)).rewards, 0n, tree)

    const st = await runCli(['--home', home.dir, '--json', 'status'], { env })
    expect(st.code, st.stderr).toBe(0)
    expect(JSON.parse(st.stdout).claimable).toBe((5n * WAD).toString())

    const c = await runCli(['--home', home.dir, '--json', 'claim'], { env })
    expect(c.code, c.stderr).toBe(0)
    const r = JSON.parse(c.stdout) as { account: string, epochs: string[], amount: string }
    expect(r).toMatchObject({ account: who.address, epochs: ['0'], amount: (5n * WAD).toString() })

    const again = await runCli(['--home', home.dir, 'claim'], { env })
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/^heurist: nothing to claim/)
    expect(JSON.parse((await runCli(['--home', home.dir, '--json', 'status'], { env })).stdout).claimable).toBe('0')
  }, 120_000)
})
