import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { Wallet, ZeroAddress, keccak256, toUtf8Bytes } from 'ethers'
import { startDevnet, connectChain, deployContracts, signVoucher, type Devnet, type ChainClient } from '../../src/chain/index.js'
import { WAD, WEEK_SECONDS, YEAR_SECONDS, whitepaperEpochCap, season2PoolCap, splitRevenue, defaultSeason2Params } from '../../src/economics/index.js'

// The parity table: the contracts and src/economics compute the emission cap and the
// revenue split with the same operations; they must agree to the wei on every row.
const HEU = WAD
const revenues = [0n, 1n, HEU, 1000n * HEU, 1_000_000n * HEU, 1_438_356n * HEU, 1_438_357n * HEU, 10_000_000n * HEU, 1_000_000_000n * HEU, 123_456_789_012_345_678_901n]
const epochs = [1n, 3600n, 86_400n, WEEK_SECONDS, YEAR_SECONDS]
const organic = [0n, 1n, HEU, 999_999n * HEU, 1_000_000n * HEU, 4_000_000n * HEU, 10n ** 27n]
const splits: Array<[bigint, number, number, number]> = [
  [0n, 2000, 1000, 500], [1n, 2000, 1000, 500], [9_999n, 3333, 3333, 500], [10n ** 18n + 7n, 2000, 1000, 500],
  [123_456_789n, 1, 1, 1], [10n ** 24n + 1n, 10_000, 0, 0], [10n ** 24n + 1n, 0, 10_000, 0], [77n * HEU, 0, 0, 0], [5n, 5000, 4999, 1],
  [1999n, 2000, 1000, 500], [10n ** 24n - 1n, 0, 0, 10_000], [33_333n, 3000, 1000, 500]
]

let devnet: Devnet
let chain: ChainClient

beforeAll(async () => {
  devnet = await startDevnet({ port: 0, deploy: { epochSeconds: 3600n } })
  chain = await connectChain({ deployment: devnet.deployment, signer: devnet.accounts[1] })
})

afterAll(async () => {
  chain?.close()
  await devnet?.stop()
})

describe('parity: contracts vs src/economics', () => {
  it('whitepaper epoch cap and reservoir agree to the wei over revenue × epoch length', async () => {
    for (const rev of revenues) {
      for (const t of epochs) {
        const [emission, reservoir] = await chain.read<[bigint, bigint]>(chain.contracts.emission, 'whitepaperEpochCap', [rev, t])
        const off = whitepaperEpochCap(rev, t)
        expect({ rev, t, emission, reservoir }).toEqual({ rev, t, emission: off.emission, reservoir: off.reservoir })
      }
    }
  })

  it('Season 2 pool cap agrees to the wei with the default parameters', async () => {
    for (const u of organic) {
      const onChain = await chain.read<bigint>(chain.contracts.emission, 'season2PoolCap', [u])
      expect({ u, cap: onChain }).toEqual({ u, cap: season2PoolCap(u, defaultSeason2Params) })
    }
  })

  it('revenue split agrees to the wei', async () => {
    for (const [amount, podBps, frontendBps, protocolFeeBps] of splits) {
      const [node, pod, frontend, protocol] = await chain.read<[bigint, bigint, bigint, bigint]>(chain.contracts.payments, 'splitRevenue', [amount, podBps, frontendBps, protocolFeeBps])
      expect({ amount, node, pod, frontend, protocol }).toEqual({ amount, ...splitRevenue(amount, { podBps, frontendBps, protocolFeeBps }) })
    }
    // both refuse shares over 10,000 bps
    await expect(chain.read(chain.contracts.payments, 'splitRevenue', [1n, 6000, 3501, 500])).rejects.toThrow(/SharesOverLimit/)
    expect(() => splitRevenue(1n, { podBps: 6000, frontendBps: 3501, protocolFeeBps: 500 })).toThrow(/10000/)
  })

  it('the cap of an epoch follows the revenue Payments recorded, on both schedules', async () => {
    const deployer = devnet.accounts[0]!
    const s2 = await deployContracts(deployer, { schedule: 'season2', epochSeconds: 3600n, reservoir: devnet.reservoir })
    for (const deployment of [devnet.deployment, { ...s2, rpcUrl: devnet.rpcUrl }]) {
      const payer = devnet.accounts[2]!
      const c = await connectChain({ deployment, signer: payer })
      try {
        if (deployment.params.schedule === 'season2') {
          // a fresh token: its supply sits with the deployer
          await c.send('fund', c.contracts.token.connect(deployer) as typeof c.contracts.token, 'transfer', [payer.address, 500_000n * HEU])
        }
        await c.deposit(500_000n * HEU)
        const epoch = await c.currentEpoch()
        const miner = Wallet.createRandom().address
        // an unrelated frontend: revenue between related parties would not count
        const llm = { payer: payer.address, miner, podId: keccak256(toUtf8Bytes('llm')), podDeployer: ZeroAddress, podBps: 0, pool: 0, frontend: Wallet.createRandom().address, cumulativeAmount: 123_456n * HEU + 789n }
        const img = { ...llm, podId: keccak256(toUtf8Bytes('img')), pool: 1, cumulativeAmount: 54_321n * HEU }
        await c.redeemVoucher(llm, await signVoucher(payer, deployment, llm))
        await c.redeemVoucher(img, await signVoucher(payer, deployment, img))
        expect(await c.currentEpoch()).toBe(epoch) // both landed in the same epoch
        const { cap, reservoir } = await c.epochCap(epoch)
        if (deployment.params.schedule === 'whitepaper') {
          const rev = await c.read<[bigint, bigint]>(c.contracts.payments, 'epochRevenue', [epoch])
          const off = whitepaperEpochCap(rev[0] + rev[1], 3600n)
          expect({ cap, reservoir }).toEqual({ cap: off.emission, reservoir: off.reservoir })
        } else {
          expect({ cap, reservoir }).toEqual({ cap: season2PoolCap(llm.cumulativeAmount) + season2PoolCap(img.cumulativeAmount), reservoir: 0n })
        }
      } finally {
        c.close()
      }
    }
  })
})
