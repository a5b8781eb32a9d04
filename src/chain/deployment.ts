/**
 * The deployment file (contract): chain id and contract addresses, plus the RPC URL this host
 * reaches the chain by. `heurist devnet` writes it as devnet.json in the home folder; `heurist
 * deploy` writes one for any chain; `heurist deployment export` writes the shareable part (no
 * RPC URL: that differs per host) and `heurist deployment import FILE --rpc URL` stores it as
 * deployment.json in another host's home; every chain command reads it (`--deployment FILE`).
 */
import { z } from 'zod'
import { createHash } from 'node:crypto'
import { readFile, writeFile, rename } from 'node:fs/promises'
import { HeuristError, usageError } from '../core/errors.js'
import { CONTRACT_NAMES, type ContractName } from './compile.js'

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'a 0x-prefixed 20-byte address')
const uint = z.string().regex(/^\d{1,78}$/, 'a decimal integer')

export const deploymentSchema = z.object({
  version: z.literal(1),
  chainId: z.number().int().positive(),
  rpcUrl: z.string().max(2048).optional(),
  deployBlock: z.number().int().min(0),
  /** The chain's block 0 hash: tells a restarted devnet (same chain id, same addresses) from the last one. */
  genesisHash: z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'a 0x-prefixed 32-byte hash').optional(),
  contracts: z.object(Object.fromEntries(CONTRACT_NAMES.map(n => [n, address])) as Record<ContractName, typeof address>),
  params: z.object({
    lockupSeconds: uint,
    epochSeconds: uint,
    minCollateral: uint,
    minValidatorStake: uint,
    exitCooldown: uint,
    maxPodRevenueBps: z.number().int().min(0).max(10_000),
    frontendBps: z.number().int().min(0).max(10_000),
    protocolFeeBps: z.number().int().min(0).max(10_000),
    vaultSeedStake: uint,
    withdrawDelay: uint,
    slashBps: z.number().int().min(0).max(10_000),
    reporterBps: z.number().int().min(0).max(10_000),
    schedule: z.enum(['whitepaper', 'season2']),
    season2Base: uint,
    season2MaxDynamic: uint,
    season2HalfSaturation: uint,
    reservoir: address,
    emissionAllocation: uint
  })
})

export type Deployment = z.infer<typeof deploymentSchema>

const MAX_DEPLOYMENT_BYTES = 64 * 1024

export function parseDeployment (text: string, origin = 'deployment'): Deployment {
  if (text.length > MAX_DEPLOYMENT_BYTES) throw usageError('CHAIN_BAD_DEPLOYMENT', `${origin} is over ${MAX_DEPLOYMENT_BYTES} bytes`)
  let raw: unknown
  try { raw = JSON.parse(text) } catch { throw usageError('CHAIN_BAD_DEPLOYMENT', `${origin} is not JSON`) }
  const r = deploymentSchema.safeParse(raw)
  if (!r.success) {
    const i = r.error.issues[0]
    throw usageError('CHAIN_BAD_DEPLOYMENT', `${origin}: ${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'}`)
  }
  return r.data
}

export async function readDeployment (path: string): Promise<Deployment> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw usageError('CHAIN_NO_DEPLOYMENT', `no deployment at ${path}: pass --rpc URL --deployment FILE, or once \`heurist deployment import FILE --rpc URL\` (FILE comes from \`heurist deployment export\` on the chain's host, see docs/multi-host.md)`)
    throw new HeuristError('CHAIN_BAD_DEPLOYMENT', `cannot read ${path}: ${(e as Error).message}`)
  }
  return parseDeployment(text, path)
}

/** Writes atomically (temp file + rename), so a reader never sees half a file. */
export async function writeDeployment (path: string, d: Deployment): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(d, null, 2) + '\n')
  await rename(tmp, path)
}

/** The deployment without the host-specific RPC URL: what one host hands to another. */
export function shareableDeployment (d: Deployment): Deployment {
  const { rpcUrl: _local, ...rest } = d
  return rest
}

/**
 * A short name for one chain deployment (chain id, genesis block, every contract address), so
 * each deployment's local state (stores, reward tables) lives apart: a new chain, or a devnet
 * restarted with the same chain id and addresses, never sees the last one's ledgers.
 */
export function deploymentKey (d: Deployment): string {
  const h = createHash('sha256')
  h.update(JSON.stringify([d.chainId, d.genesisHash ?? '', d.deployBlock, Object.entries(d.contracts).sort(([a], [b]) => a < b ? -1 : 1).map(([k, v]) => `${k}=${v.toLowerCase()}`)]))
  return `${d.chainId}-${h.digest('hex').slice(0, 16)}`
}
