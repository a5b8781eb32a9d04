/**
 * What the chain commands share: `--rpc`/`--deployment` flags, finding the deployment
 * (flags > config > the home folder's deployment.json, then devnet.json), HEU amount parsing, and the
 * readable result (transaction hashes, gas used, new balances).
 */
import { Command } from 'commander'
import { access } from 'node:fs/promises'
import { isAddress, getAddress } from 'ethers'
import { usageError } from '../core/errors.js'
import { chainPaths } from '../core/home.js'
import { parseHeu, formatHeu, isEconomicsError } from '../economics/index.js'
import { connectChain, readDeployment, deploymentKey, type ChainClient, type TxResult, type Balances, type Deployment } from '../chain/index.js'
import { loadContext, type CommandContext } from './context.js'

export interface ChainFlags { rpc?: string, deployment?: string }

export function withChainFlags (cmd: Command): Command {
  return cmd
    .option('--rpc <url>', 'EVM JSON-RPC URL (config chain.rpc; default: the one in the home\'s deployment.json or devnet.json)')
    .option('--deployment <file>', 'deployment file with chain id and contract addresses (config chain.deployment; default: the home\'s deployment.json, else devnet.json)')
}

/**
 * The deployment file this home uses when no flag or config names one: deployment.json (a
 * chain elsewhere, from `heurist deployment import`), else devnet.json (a devnet run here).
 */
async function homeDeploymentPath (ctx: CommandContext): Promise<string | null> {
  for (const p of [ctx.paths.deployment, ctx.paths.devnet]) {
    try { await access(p); return p } catch { /* next */ }
  }
  return null
}

/** Scopes the context's store and reward paths to this deployment (each chain's state apart). */
export function useDeployment (ctx: CommandContext, d: Deployment): Deployment {
  ctx.paths = chainPaths(ctx.paths, deploymentKey(d))
  return d
}

/**
 * Finds the deployment and RPC URL: flags, then config (chain.rpc, chain.deployment), then the
 * home's deployment.json or devnet.json; the context's store and reward paths then point at
 * that deployment's own folder.
 */
export async function resolveDeployment (ctx: CommandContext, flags: ChainFlags): Promise<{ deployment: Deployment, rpc: string | undefined }> {
  const rpc = flags.rpc ?? (ctx.config.chain.rpc === '' ? undefined : ctx.config.chain.rpc)
  const file = flags.deployment ?? (ctx.config.chain.deployment === '' ? undefined : ctx.config.chain.deployment)
  if (file !== undefined) return { deployment: useDeployment(ctx, await readDeployment(file)), rpc }
  const home = await homeDeploymentPath(ctx)
  if (home === null && rpc !== undefined) throw usageError('CHAIN_NO_DEPLOYMENT', '--rpc needs --deployment FILE (the contract addresses on that chain), or `heurist deployment import FILE --rpc URL` once')
  return { deployment: useDeployment(ctx, await readDeployment(home ?? ctx.paths.deployment)), rpc }
}

/**
 * The deployment this node uses: flags or config chain.deployment, else the home's
 * deployment.json or devnet.json; null when none exists. Scopes the context's paths to it.
 */
export async function findDeployment (ctx: CommandContext, flags: ChainFlags = {}): Promise<Deployment | null> {
  const named = flags.deployment ?? (ctx.config.chain.deployment !== '' ? ctx.config.chain.deployment : undefined)
  if (named !== undefined) {
    try { await access(named) } catch { throw usageError('CHAIN_NO_DEPLOYMENT', `${flags.deployment !== undefined ? '--deployment' : 'config key chain.deployment'}: no file at ${named}`) }
    return useDeployment(ctx, await readDeployment(named))
  }
  const home = await homeDeploymentPath(ctx)
  if (home === null) {
    if (flags.rpc !== undefined || ctx.config.chain.rpc !== '') throw usageError('CHAIN_NO_DEPLOYMENT', '--rpc needs --deployment FILE (the contract addresses on that chain), or `heurist deployment import FILE --rpc URL` once')
    return null
  }
  return useDeployment(ctx, await readDeployment(home))
}

/** The RPC URL: the flag, else config chain.rpc, else undefined (the deployment's own rpcUrl). */
export function rpcFor (ctx: CommandContext, flags: ChainFlags = {}): string | undefined {
  return flags.rpc ?? (ctx.config.chain.rpc === '' ? undefined : ctx.config.chain.rpc)
}

export async function openChain (cmd: Command, flags: ChainFlags, signer = true): Promise<{ ctx: CommandContext, chain: ChainClient }> {
  const ctx = await loadContext(cmd)
  const { deployment, rpc } = await resolveDeployment(ctx, flags)
  const wallet = signer ? (await ctx.identity()).wallet : undefined
  const chain = await connectChain({ deployment, rpc, signer: wallet })
  return { ctx, chain }
}

/** A HEU decimal string → wei, exactly; a bad value is a usage error naming the argument. */
export function parseHeuArg (name: string, raw: string): bigint {
  try {
    return parseHeu(name, raw)
  } catch (e) {
    if (isEconomicsError(e)) throw usageError('CLI_BAD_AMOUNT', e.message)
    throw e
  }
}

/** As parseHeuArg, and above 0 (an amount to move on chain). */
export function parseAmount (name: string, raw: string): bigint {
  const v = parseHeuArg(name, raw)
  if (v === 0n) throw usageError('CLI_BAD_AMOUNT', `${name} must be above 0`)
  return v
}

export function parseAddress (name: string, raw: string): string {
  if (!isAddress(raw)) throw usageError('CLI_BAD_ADDRESS', `${name}: expected a 0x address, got ${JSON.stringify(raw)}`)
  return getAddress(raw)
}

export function parseBytes32 (name: string, raw: string): string {
  if (!/^0x[0-9a-fA-F]{64}$/.test(raw)) throw usageError('CLI_BAD_ID', `${name}: expected 0x and 64 hex digits (a sha256), got ${JSON.stringify(raw)}`)
  return raw.toLowerCase()
}

export function balancesJson (b: Balances): Record<string, unknown> {
  return {
    address: b.address,
    heu: b.heu,
    stheu: b.stheu,
    stheuValue: b.stheuValue,
    collateral: b.collateral,
    collateralExitAt: b.collateralExitAt,
    validatorStake: b.validatorStake,
    validatorExitAt: b.validatorExitAt,
    votes: b.votes,
    deposit: b.deposit,
    eth: b.eth,
    vesting: b.vesting
  }
}

export function txsHuman (txs: TxResult[]): string {
  return txs.map(t => `${t.step.padEnd(10)} tx ${t.hash}  gas ${t.gasUsed}`).join('\n')
}

/** ", exiting: back after <time>" for a pending exit (chain time), else nothing. */
function exitNote (at: bigint): string {
  return at === 0n ? '' : ` (exiting: \`heurist exit --complete\` from ${new Date(Number(at) * 1000).toISOString()})`
}

export function balancesHuman (b: Balances): string {
  return [
    `HEU          ${formatHeu(b.heu)}`,
    `stHEU        ${formatHeu(b.stheu)} (worth ${formatHeu(b.stheuValue)} HEU)`,
    `votes        ${formatHeu(b.votes)} stHEU`,
    `collateral   ${formatHeu(b.collateral)} HEU${exitNote(b.collateralExitAt)}`,
    `validator    ${formatHeu(b.validatorStake)} HEU staked${exitNote(b.validatorExitAt)}`,
    `deposit      ${formatHeu(b.deposit)} HEU`,
    `vesting      ${formatHeu(b.vesting.total)} HEU (${formatHeu(b.vesting.matured)} matured)`
  ].join('\n')
}

/** Runs a token holder's action and prints its transactions and the new balances. */
export async function runAction (cmd: Command, flags: ChainFlags, action: (chain: ChainClient) => Promise<TxResult[]>, extra: Record<string, unknown> = {}): Promise<void> {
  const { ctx, chain } = await openChain(cmd, flags)
  try {
    const txs = await action(chain)
    const b = await chain.balances(await chain.signer!.getAddress())
    ctx.print({ ...extra, transactions: txs, balances: balancesJson(b) }, () => `${txsHuman(txs)}\n${balancesHuman(b)}`)
  } finally {
    chain.close()
  }
}
