/**
 * Compiles the Solidity sources in src/chain/contracts with solc-js (npm `solc`) and caches
 * the ABIs and bytecode in dist/chain/artifacts.json. The build runs it after tsc
 * (`npm run build`); `loadArtifacts()` recompiles on first use when the cache is missing or
 * stale (its key is a hash of the sources, the solc version and the OpenZeppelin version), so
 * the artifacts are always the build's output, never edited by hand.
 */
import { createRequire } from 'node:module'
import { readFile, readdir, writeFile, rename, mkdir } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HeuristError } from '../core/errors.js'

const require = createRequire(import.meta.url)

/** Resolved from both src/chain (tests) and dist/chain (the built CLI): same project root. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const CONTRACTS_DIR = join(ROOT, 'src', 'chain', 'contracts')
export const ARTIFACTS_PATH = join(ROOT, 'dist', 'chain', 'artifacts.json')

export const CONTRACT_NAMES = ['HeuristToken', 'StakedHeurist', 'NodeRegistry', 'PodRegistry', 'Voting', 'Payments', 'Slashing', 'Emission'] as const
export type ContractName = typeof CONTRACT_NAMES[number]

export interface Artifact { abi: any[], bytecode: string }
export interface Artifacts { key: string, solc: string, contracts: Record<ContractName, Artifact> }

async function sources (): Promise<Record<string, { content: string }>> {
  const out: Record<string, { content: string }> = {}
  for (const f of (await readdir(CONTRACTS_DIR)).filter(f => f.endsWith('.sol')).sort()) {
    out[f] = { content: await readFile(join(CONTRACTS_DIR, f), 'utf8') }
  }
  return out
}

function cacheKey (srcs: Record<string, { content: string }>, solcVersion: string): string {
  const oz = (require('@openzeppelin/contracts/package.json') as { version: string }).version
  const h = createHash('sha256').update(`solc ${solcVersion}\noz ${oz}\n`)
  for (const [name, s] of Object.entries(srcs)) h.update(`${name}\n${s.content}\n`)
  return h.digest('hex')
}

/** Runs solc over the sources, resolving `@openzeppelin/...` imports from node_modules. */
export async function compileContracts (): Promise<Artifacts> {
  const solc = require('solc') as { compile: (input: string, opts: { import: (p: string) => { contents?: string, error?: string } }) => string, version: () => string }
  const srcs = await sources()
  const input = {
    language: 'Solidity',
    sources: srcs,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: 'cancun',
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } }
    }
  }
  const findImports = (path: string): { contents?: string, error?: string } => {
    try {
      return { contents: require('node:fs').readFileSync(require.resolve(path), 'utf8') as string }
    } catch {
      return { error: `not found: ${path}` }
    }
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports })) as {
    errors?: Array<{ severity: string, formattedMessage: string }>
    contracts: Record<string, Record<string, { abi: any[], evm: { bytecode: { object: string } } }>>
  }
  const errors = (output.errors ?? []).filter(e => e.severity === 'error')
  if (errors.length > 0) throw new HeuristError('CHAIN_COMPILE_FAILED', `solc: ${errors.map(e => e.formattedMessage).join('\n')}`)
  const contracts: Partial<Record<ContractName, Artifact>> = {}
  for (const name of CONTRACT_NAMES) {
    const c = output.contracts[`${name}.sol`]?.[name]
    if (c === undefined) throw new HeuristError('CHAIN_COMPILE_FAILED', `solc produced no ${name}`)
    contracts[name] = { abi: c.abi, bytecode: '0x' + c.evm.bytecode.object }
  }
  return { key: cacheKey(srcs, solc.version()), solc: solc.version(), contracts: contracts as Record<ContractName, Artifact> }
}

let cached: Artifacts | undefined

/** The artifacts: from the cache when it matches the sources, else compiled now and cached. */
export async function loadArtifacts (): Promise<Artifacts> {
  if (cached !== undefined) return cached
  const solcVersion = (require('solc') as { version: () => string }).version()
  const key = cacheKey(await sources(), solcVersion)
  try {
    const onDisk = JSON.parse(await readFile(ARTIFACTS_PATH, 'utf8')) as Artifacts
    if (onDisk.key === key) return (cached = onDisk)
  } catch {}
  const fresh = await compileContracts()
  await mkdir(dirname(ARTIFACTS_PATH), { recursive: true })
  const tmp = `${ARTIFACTS_PATH}.${process.pid}.${Date.now()}.tmp`
  await writeFile(tmp, JSON.stringify(fresh))
  await rename(tmp, ARTIFACTS_PATH)
  return (cached = fresh)
}
