/**
 * Deploys the eight contracts in dependency order and wires them together.
 *
 * Where emitted HEU comes from: HEU has a fixed supply minted once to the deployer; the
 * deploy moves the emission allocation (50 % of supply, whitepaper §3.4) into `Emission`,
 * which pays reward claims and sends each epoch's unused cap (and, on the whitepaper
 * schedule, E_max − E) to the compute reservoir, an address chosen at deploy. Nothing is
 * minted later, so no colluding quorum can create tokens.
 *
 * The deployer also stakes `vaultSeedStake` into stHEU for a dead address: those shares can
 * never leave, so the vault is never empty and a first staker's donation cannot inflate the
 * exchange rate against the next staker (the ERC4626 inflation attack).
 */
import { Contract, ContractFactory, type Signer } from 'ethers'
import {
  defaultSeason2Params, minimumStake, STHEU_LOCKUP_SECONDS, WAD, WEEK_SECONDS,
  TOKEN_DISTRIBUTION, PROTOCOL_FEE_BPS
} from '../economics/index.js'
import { loadArtifacts, type ContractName } from './compile.js'
import { chainError } from './errors.js'
import type { Deployment } from './deployment.js'

export type EmissionSchedule = 'whitepaper' | 'season2'

export interface DeployParams {
  /** stHEU unstake lockup. Default 365 days (economics STHEU_LOCKUP_SECONDS, whitepaper §3.3). */
  lockupSeconds: bigint
  /** Epoch length. Default a week (Season 2 pays weekly). */
  epochSeconds: bigint
  /** Least collateral of a miner; default from the security model, see `defaultDeployParams`. */
  minCollateral: bigint
  /** Least stake of a validator. Default equal to minCollateral (ours). */
  minValidatorStake: bigint
  /** Wait between asking to exit and getting the collateral back: a week, so slashes for recent work still land (ours). */
  exitCooldown: bigint
  /** Most a pod deployer may take, in basis points. Default 3000 (ours). */
  maxPodRevenueBps: number
  /** Frontend's share of each payment, in basis points. Default 1000 (ours; whitepaper §3.2.5 gives no number). */
  frontendBps: number
  /** Protocol fee of each payment to the stHEU vault, basis points. Default economics PROTOCOL_FEE_BPS (500, ours; §3.4.3). */
  protocolFeeBps: number
  /** HEU the deployer stakes into stHEU for a dead address at deploy (dead shares). Default 1 HEU (ours). */
  vaultSeedStake: bigint
  /** Wait before a payer can take back its deposit, so miners can redeem held vouchers: a day (ours). */
  withdrawDelay: bigint
  /** F: fraction of the collateral a slash takes, basis points. Default 5000 (ours). */
  slashBps: number
  /** Reporter's share of a slash, basis points. Default 1000 (ours). */
  reporterBps: number
  /** Which schedule caps each epoch. */
  schedule: EmissionSchedule
  season2Base: bigint
  season2MaxDynamic: bigint
  season2HalfSaturation: bigint
  /** Compute reservoir; empty = the deployer. */
  reservoir: string
  /** HEU moved into Emission at deploy. Default the 50 % emission allocation. */
  emissionAllocation: bigint
}

/**
 * Security model (whitepaper appendix A.4: S > (C_h − C_m)/(P·F)) at our default inputs:
 * an honest miner spends 10 HEU more per epoch than a cheater (C_h − C_m), validators sample
 * P = 5 % of receipts and a slash takes F = 50 %: S > 10 / 0.025 = 400 HEU.
 */
export const DEFAULT_MIN_COLLATERAL = minimumStake(11n * WAD, 1n * WAD, 5n * WAD / 100n, WAD / 2n)

/** Holds the stHEU dead shares: nobody has its key. */
export const DEAD_ADDRESS = '0x000000000000000000000000000000000000dEaD'

export const defaultDeployParams: DeployParams = {
  lockupSeconds: STHEU_LOCKUP_SECONDS,
  epochSeconds: WEEK_SECONDS,
  minCollateral: DEFAULT_MIN_COLLATERAL,
  minValidatorStake: DEFAULT_MIN_COLLATERAL,
  exitCooldown: WEEK_SECONDS,
  maxPodRevenueBps: 3000,
  frontendBps: 1000,
  protocolFeeBps: PROTOCOL_FEE_BPS,
  vaultSeedStake: WAD,
  withdrawDelay: 86_400n,
  slashBps: 5000,
  reporterBps: 1000,
  schedule: 'whitepaper',
  season2Base: defaultSeason2Params.base,
  season2MaxDynamic: defaultSeason2Params.maxDynamic,
  season2HalfSaturation: defaultSeason2Params.halfSaturation,
  reservoir: '',
  emissionAllocation: TOKEN_DISTRIBUTION.emission
}

export interface DeployOptions {
  /** Called after each contract lands (progress for the CLI). */
  onProgress?: (name: ContractName, address: string) => void
}

/** Deploys everything from `signer` (which receives the non-emission supply). */
export async function deployContracts (signer: Signer, params: Partial<DeployParams> = {}, options: DeployOptions = {}): Promise<Deployment> {
  const p: DeployParams = { ...defaultDeployParams, ...params }
  const artifacts = await loadArtifacts()
  const provider = signer.provider
  if (provider == null) throw chainError(new Error('the signer has no provider'), artifacts, 'deploy')
  const deployer = await signer.getAddress()
  const reservoir = p.reservoir === '' ? deployer : p.reservoir
  const chainId = Number((await provider.getNetwork()).chainId)
  const deployBlock = await provider.getBlockNumber()
  const genesisHash = (await provider.getBlock(0))?.hash ?? undefined
  const addresses: Partial<Record<ContractName, string>> = {}

  const deploy = async (name: ContractName, ...args: unknown[]): Promise<string> => {
    try {
      const a = artifacts.contracts[name]
      const c = await new ContractFactory(a.abi, a.bytecode, signer).deploy(...args)
      await c.waitForDeployment()
      const addr = await c.getAddress()
      addresses[name] = addr
      options.onProgress?.(name, addr)
      return addr
    } catch (e) {
      throw chainError(e, artifacts, `deploying ${name}`)
    }
  }
  const call = async (name: ContractName, fn: string, ...args: unknown[]): Promise<void> => {
    const c = new Contract(addresses[name]!, artifacts.contracts[name].abi, signer)
    try {
      const tx = await c.getFunction(fn)(...args)
      await tx.wait()
    } catch (e) {
      throw chainError(e, artifacts, `${name}.${fn}`)
    }
  }

  const token = await deploy('HeuristToken', deployer)
  const stheu = await deploy('StakedHeurist', token, p.lockupSeconds)
  if (p.vaultSeedStake > 0n) {
    await call('HeuristToken', 'approve', stheu, p.vaultSeedStake)
    await call('StakedHeurist', 'deposit', p.vaultSeedStake, DEAD_ADDRESS)
  }
  const nodes = await deploy('NodeRegistry', token, p.minCollateral, p.minValidatorStake, p.exitCooldown)
  const pods = await deploy('PodRegistry', p.maxPodRevenueBps)
  await deploy('Voting', stheu)
  const payments = await deploy('Payments', token, pods, nodes, stheu, p.frontendBps, p.protocolFeeBps, p.epochSeconds, p.withdrawDelay)
  const slashing = await deploy('Slashing', token, nodes, reservoir, p.slashBps, p.reporterBps)
  await call('NodeRegistry', 'setSlasher', slashing)
  const emission = await deploy('Emission', token, payments, nodes, reservoir, p.schedule === 'whitepaper' ? 0 : 1,
    p.season2Base, p.season2MaxDynamic, p.season2HalfSaturation)
  await call('HeuristToken', 'transfer', emission, p.emissionAllocation)

  const s = (v: bigint): string => v.toString()
  return {
    version: 1,
    chainId,
    deployBlock,
    ...(genesisHash === undefined ? {} : { genesisHash }),
    contracts: addresses as Record<ContractName, string>,
    params: {
      lockupSeconds: s(p.lockupSeconds),
      epochSeconds: s(p.epochSeconds),
      minCollateral: s(p.minCollateral),
      minValidatorStake: s(p.minValidatorStake),
      exitCooldown: s(p.exitCooldown),
      maxPodRevenueBps: p.maxPodRevenueBps,
      frontendBps: p.frontendBps,
      protocolFeeBps: p.protocolFeeBps,
      vaultSeedStake: s(p.vaultSeedStake),
      withdrawDelay: s(p.withdrawDelay),
      slashBps: p.slashBps,
      reporterBps: p.reporterBps,
      schedule: p.schedule,
      season2Base: s(p.season2Base),
      season2MaxDynamic: s(p.season2MaxDynamic),
      season2HalfSaturation: s(p.season2HalfSaturation),
      reservoir,
      emissionAllocation: s(p.emissionAllocation)
    }
  }
}
