/**
 * What the on-chain attack tests share: a devnet with the real contracts, fresh funded wallets
 * (so no test depends on another's balances), exact balance reads, and raw calldata replays
 * (what a stranger copying a transaction from the chain would send).
 */
import { Wallet, type TransactionResponse } from 'ethers'
import { startDevnet, connectChain, chainError, type Devnet, type ChainClient, type DevnetOptions } from '../../src/chain/index.js'
import { WAD } from '../../src/economics/index.js'

export const HEU = WAD

export interface ChainWorld {
  devnet: Devnet
  /** A client for `signer` (closed by `stop`). */
  client: (signer?: Wallet) => Promise<ChainClient>
  /** A fresh wallet with `heu` HEU and 10 ETH for gas. */
  wallet: (heu?: bigint) => Promise<Wallet>
  /** HEU balance of `address` (wei). */
  heu: (address: string) => Promise<bigint>
  /** Sends `to`/`data` from `from` as a new transaction; a revert comes back as the decoded HeuristError. */
  replay: (from: Wallet, tx: { to: string, data: string }) => Promise<never | void>
  /** The calldata of a mined transaction. */
  calldata: (hash: string) => Promise<{ to: string, data: string }>
  stop: () => Promise<void>
}

export async function startChainWorld (deploy: DevnetOptions['deploy'] = {}): Promise<ChainWorld> {
  const devnet = await startDevnet({ port: 0, deploy })
  const clients: ChainClient[] = []
  const funder = devnet.accounts[0]!
  const admin = await connectChain({ deployment: devnet.deployment, signer: funder })
  clients.push(admin)
  const world: ChainWorld = {
    devnet,
    async client (signer) {
      const c = await connectChain({ deployment: devnet.deployment, signer })
      clients.push(c)
      return c
    },
    async wallet (heu = 0n) {
      const w = Wallet.createRandom().connect(devnet.provider) as unknown as Wallet
      await (await funder.sendTransaction({ to: w.address, value: 10n * WAD })).wait()
      if (heu > 0n) await admin.send('fund', admin.contracts.token, 'transfer', [w.address, heu])
      return w
    },
    async heu (address) {
      return await admin.read<bigint>(admin.contracts.token, 'balanceOf', [address])
    },
    async replay (from, tx) {
      let sent: TransactionResponse
      try {
        sent = await from.sendTransaction({ to: tx.to, data: tx.data })
      } catch (e) {
        throw chainError(e, admin.artifacts, 'replay')
      }
      await sent.wait()
    },
    async calldata (hash) {
      const tx = await devnet.provider.getTransaction(hash)
      if (tx === null || tx.to === null) throw new Error(`no transaction ${hash}`)
      return { to: tx.to, data: tx.data }
    },
    async stop () {
      for (const c of clients) c.close()
      await devnet.stop()
    }
  }
  return world
}
