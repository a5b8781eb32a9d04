/**
 * What the token holder's commands share: `--rpc`/`--deployment` flags, finding the
 * deployment (flags > config > the home folder's devnet.json), HEU amount parsing, and the
 * readable result (transaction hashes, gas used, new balances).
 */
import { Command } from 'commander'
import { access } from 'node:fs/promises'
import { isAddress, getAddress } from 'ethers'
import { usageError } from '../core/errors.js'
import { parseHeu, formatHeu, isEconomicsError } from '../economics/index.js'
import { connectChain, readDeployment, type ChainClient, type TxResult, type Balances, type Deployment } from '../chain/index.js'
import { loadContext, type CommandContext } from './context.js'

export interface ChainFlags { rpc?: string, deployment?: string }

export function withChainFlags (cmd: Command): Command {
  return cmd
    .option('--rpc <url>', 'EVM JSON-RPC URL (default: the devnet in the home folder)')
    .option('--deployment <file>', 'deployment file with chain id and contract addresses (needed with --rpc)')
}

/** Finds the deployment and RPC URL: flags, then config (chain.rpc, chain.deployment), then devnet.json. */
export async function resolveDeployment (ctx: CommandContext, flags: ChainFlags): Promise<{ deployment: Deployment, rpc: string | undefined }> {
  const rpc = flags.rpc ?? (ctx.config.chain.rpc === '' ? undefined : ctx.config.chain.rpc)
  const file = flags.deployment ?? (ctx.config.chain.deployment === '' ? undefined : ctx.config.chain.deployment)
  if (file !== undefined) return { deployment: await readDeployment(file), rpc }
  if (rpc !== undefined) throw usageError('CHAIN_NO_DEPLOYMENT', '--rpc needs --deployment FILE (the contract addresses on that chain)')
  return { deployment: await readDeployment(ctx.paths.devnet), rpc: undefined }
}

/** The deployment this node uses: config chain.deployment, else the home folder's devnet.json; null when neither exists. */
export async function findDeployment (ctx: CommandContext): Promise<Deployment | null> {
  const path = ctx.config.chain.deployment !== '' ? ctx.config.chain.deployment : ctx.paths.devnet
  try { await access(path) } catch {
    if (ctx.config.chain.deployment !== '') throw usageError('CHAIN_NO_DEPLOYMENT', `config key chain.deployment: no file at ${path}`)
    return null
  }
  return await readDeployment(path)
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
    votes: b.votes,
    deposit: b.deposit,
    eth: b.eth,
    vesting: b.vesting
  }
}

export function txsHuman (txs: TxResult[]): string {
  return txs.map(t => `${t.step.padEnd(10)} tx ${t.hash}  gas ${t.gasUsed}`).join('\n')
}

export function balancesHuman (b: Balances): string {
  return [
    `HEU          ${formatHeu(b.heu)}`,
    `stHEU        ${formatHeu(b.stheu)} (worth ${formatHeu(b.stheuValue)} HEU)`,
    `votes        ${formatHeu(b.votes)} stHEU`,
    `collateral   ${formatHeu(b.collateral)} HEU`,
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
