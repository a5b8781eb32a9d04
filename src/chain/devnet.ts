/**
 * The embedded devnet: Hardhat's EDR running in this process, the contracts deployed, dev
 * accounts funded with ETH and HEU, and a JSON-RPC server (127.0.0.1 unless told otherwise)
 * for other processes and hosts. With `blockIntervalMs`, an idle chain mines an empty block
 * that often, so block time (and the contracts' epochs) follows the clock.
 */
import { createRequire } from 'node:module'
import { HDNodeWallet, Wallet, Mnemonic, type JsonRpcProvider } from 'ethers'
import { HeuristError } from '../core/errors.js'
import { WAD } from '../economics/index.js'
import { deployContracts, type DeployParams } from './deploy.js'
import { shareableDeployment, type Deployment } from './deployment.js'
import { makeProvider } from './provider.js'
import { startRpcServer, type RpcServer } from './rpc-server.js'
import { loadArtifacts, type Artifacts } from './compile.js'
import { Contract } from 'ethers'

const require = createRequire(import.meta.url)

/** Hardhat's well-known dev mnemonic: the keys are public, for local chains only. */
export const DEV_MNEMONIC = 'test test test test test test test test test test test junk'

export interface DevnetOptions {
  /** RPC port; 0 = any free port. Default 8545. */
  port: number
  /** Address the RPC listens on. Default 127.0.0.1; 0.0.0.0 (or one interface's address) lets other hosts in. */
  host: string
  /** With no block for this long, mine an empty one (0 = only on transactions). Default 0. */
  blockIntervalMs: number
  chainId: number
  /** Dev accounts derived from DEV_MNEMONIC. Account 0 deploys; the last is the compute reservoir. */
  accounts: number
  /** ETH each dev account and each `fund` address starts with. */
  ethPerAccount: bigint
  /** HEU sent to each dev account and each `fund` address after deploy. */
  heuPerAccount: bigint
  /** Extra addresses to fund (e.g. the home folder's operator). */
  fund: string[]
  /** Contract parameters (epoch length, lockup, ...). */
  deploy: Partial<DeployParams>
  onProgress?: (step: string) => void
}

export const defaultDevnetOptions: DevnetOptions = {
  port: 8545,
  host: '127.0.0.1',
  blockIntervalMs: 0,
  chainId: 31337,
  accounts: 10,
  ethPerAccount: 10_000n * WAD,
  heuPerAccount: 1_000_000n * WAD,
  fund: [],
  deploy: {}
}

export interface Devnet {
  rpcUrl: string
  chainId: number
  deployment: Deployment
  /** Funded dev accounts (connected to `provider`); accounts[0] deployed the contracts. */
  accounts: Wallet[]
  /** Where the contracts send reservoir HEU (the last dev account). */
  reservoir: string
  provider: JsonRpcProvider
  /** Raw JSON-RPC against the in-process chain. */
  request: (method: string, params?: unknown[]) => Promise<unknown>
  /** Moves the chain's clock forward and mines a block. */
  timeTravel: (seconds: number | bigint) => Promise<void>
  /** The latest block's timestamp. */
  now: () => Promise<bigint>
  stop: () => Promise<void>
}

interface EdrModule {
  EdrContext: new () => { registerProviderFactory: (t: string, f: unknown) => Promise<void>, createProvider: (...args: any[]) => Promise<EdrProvider> }
  L1_CHAIN_TYPE: string
  PRAGUE: string
  l1ProviderFactory: () => unknown
  l1GenesisState: (hf: unknown) => Array<Record<string, unknown>>
  l1HardforkFromString: (s: string) => unknown
  MineOrdering: { Priority: string }
  ContractDecoder: new () => unknown
}
interface EdrProvider { handleRequest: (req: string) => Promise<{ data: string | unknown }> }

let edrContext: Promise<{ edr: EdrModule, ctx: InstanceType<EdrModule['EdrContext']> }> | undefined

/** EdrContext may be created once per process. */
async function edrOnce (): Promise<{ edr: EdrModule, ctx: InstanceType<EdrModule['EdrContext']> }> {
  edrContext ??= (async () => {
    let edr: EdrModule
    try {
      edr = require('@nomicfoundation/edr') as EdrModule
    } catch (e) {
      throw new HeuristError('CHAIN_NO_EDR', `the embedded chain (@nomicfoundation/edr) cannot load on ${process.platform}-${process.arch}: ${(e as Error).message.split('\n')[0] ?? ''}`, { cause: e })
    }
    const ctx = new edr.EdrContext()
    await ctx.registerProviderFactory(edr.L1_CHAIN_TYPE, edr.l1ProviderFactory())
    return { edr, ctx }
  })()
  return await edrContext
}

export function devAccounts (n: number): HDNodeWallet[] {
  const m = Mnemonic.fromPhrase(DEV_MNEMONIC)
  return Array.from({ length: n }, (_, i) => HDNodeWallet.fromMnemonic(m, `m/44'/60'/0'/0/${i}`))
}

export async function startDevnet (init: Partial<DevnetOptions> = {}): Promise<Devnet> {
  const o: DevnetOptions = { ...defaultDevnetOptions, ...init }
  if (o.accounts < 2 || o.accounts > 100) throw new HeuristError('CHAIN_BAD_DEVNET', 'devnet accounts must be 2 to 100', { usage: true })
  const { edr, ctx } = await edrOnce()
  const keys = devAccounts(o.accounts)
  const hex = (a: string): Uint8Array => Buffer.from(a.slice(2), 'hex')
  const funded = [...keys.map(k => k.address), ...o.fund]
  const genesis = [
    ...edr.l1GenesisState(edr.l1HardforkFromString(edr.PRAGUE)),
    ...[...new Set(funded.map(a => a.toLowerCase()))].map(a => ({ address: hex(a), balance: o.ethPerAccount }))
  ]
  o.onProgress?.('starting the chain')
  const provider = await ctx.createProvider(edr.L1_CHAIN_TYPE, {
    allowBlocksWithSameTimestamp: false,
    allowUnlimitedContractSize: false,
    bailOnCallFailure: true,
    bailOnTransactionFailure: true,
    chainId: BigInt(o.chainId),
    coinbase: Buffer.alloc(20),
    defaultTransactionGasLimit: 30_000_000n,
    genesisState: genesis,
    hardfork: edr.PRAGUE,
    initialBaseFeePerGas: 1_000_000_000n,
    minGasPrice: 0n,
    mining: { autoMine: true, blockGasLimit: 60_000_000n, memPool: { order: edr.MineOrdering.Priority } },
    network: { genesisBlockGasLimit: 60_000_000n, genesisBlockTime: BigInt(Math.floor(Date.now() / 1000)) },
    networkId: BigInt(o.chainId),
    observability: {},
    ownedAccounts: keys.map(k => k.privateKey),
    precompileOverrides: []
  }, { enable: false, decodeConsoleLogInputsCallback: () => [], printLineCallback: () => {} }, { subscriptionCallback: () => {} }, new edr.ContractDecoder())

  const handle = async (req: string): Promise<string> => {
    const r = await provider.handleRequest(req)
    return typeof r.data === 'string' ? r.data : JSON.stringify(r.data)
  }
  let id = 0
  const request = async (method: string, params: unknown[] = []): Promise<unknown> => {
    const out = JSON.parse(await handle(JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }))) as { result?: unknown, error?: { message?: string } }
    if (out.error !== undefined) throw new HeuristError('CHAIN_RPC_ERROR', `${method}: ${out.error.message ?? 'error'}`)
    return out.result
  }

  let server: RpcServer
  const documents = new Map<string, string>()
  try {
    server = await startRpcServer(handle, { host: o.host, port: o.port, documents })
  } catch (e) {
    throw new HeuristError('CHAIN_PORT_IN_USE', `cannot listen on ${o.host}:${o.port}: ${(e as Error).message}`, { cause: e })
  }
  try {
    const ethersProvider = makeProvider(server.url, o.chainId)
    const accounts = keys.map(k => new Wallet(k.privateKey, ethersProvider))
    const deployer = accounts[0]!
    const reservoir = accounts[accounts.length - 1]!.address
    o.onProgress?.('compiling and deploying the contracts')
    const deployment = await deployContracts(deployer, { reservoir, ...o.deploy })
    deployment.rpcUrl = server.url
    const genesis = await request('eth_getBlockByNumber', ['0x0', false]) as { hash?: string } | null
    if (typeof genesis?.hash === 'string') deployment.genesisHash = genesis.hash
    // other hosts fetch the contract addresses here (`heurist deployment import --rpc URL`)
    documents.set('/deployment.json', JSON.stringify(shareableDeployment(deployment), null, 2) + '\n')
    o.onProgress?.('funding the dev accounts')
    const artifacts: Artifacts = await loadArtifacts()
    const heu = new Contract(deployment.contracts.HeuristToken, artifacts.contracts.HeuristToken.abi, deployer)
    for (const a of [...accounts.slice(1, -1).map(w => w.address), ...o.fund]) {
      await (await heu.getFunction('transfer')(a, o.heuPerAccount)).wait()
    }
    const timeTravel = async (seconds: number | bigint): Promise<void> => {
      await request('evm_increaseTime', [Number(seconds)])
      await request('evm_mine', [])
    }
    const now = async (): Promise<bigint> => {
      const b = await request('eth_getBlockByNumber', ['latest', false]) as { timestamp: string }
      return BigInt(b.timestamp)
    }
    let stopped = false
    // idle blocks: the contracts read block.timestamp, which stands still without blocks
    let idle: NodeJS.Timeout | null = null
    if (o.blockIntervalMs > 0) {
      let lastHeight = ''
      let lastChange = Date.now()
      let busy = false
      idle = setInterval(() => {
        if (busy || stopped) return
        busy = true
        void (async () => {
          const h = String(await request('eth_blockNumber', []))
          if (h !== lastHeight) { lastHeight = h; lastChange = Date.now(); return }
          if (Date.now() - lastChange >= o.blockIntervalMs) { await request('evm_mine', []); lastChange = Date.now() }
        })().catch(() => {}).finally(() => { busy = false })
      }, Math.max(100, Math.floor(o.blockIntervalMs / 4)))
      idle.unref()
    }
    return {
      rpcUrl: server.url,
      chainId: o.chainId,
      deployment,
      accounts,
      reservoir,
      provider: ethersProvider,
      request,
      timeTravel,
      now,
      stop: async () => {
        if (stopped) return
        stopped = true
        if (idle !== null) clearInterval(idle)
        ethersProvider.destroy()
        await server.close()
      }
    }
  } catch (e) {
    await server.close()
    throw e
  }
}

/** Whether the embedded chain's native module loads here (for `heurist doctor`). */
export async function edrAvailable (): Promise<{ ok: boolean, detail: string }> {
  try {
    await edrOnce()
    return { ok: true, detail: `embedded chain (EDR) loads on ${process.platform}-${process.arch}` }
  } catch (e) {
    edrContext = undefined
    return { ok: false, detail: (e as Error).message }
  }
}
