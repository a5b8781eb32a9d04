import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { mkdir } from 'node:fs/promises'

/**
 * The home folder holds everything a node owns: keystore, config, store, model cache and
 * devnet deployment. Default: `$XDG_DATA_HOME/heurist` or `~/.heurist`.
 */
export function defaultHome (env: NodeJS.ProcessEnv = process.env): string {
  if (env.XDG_DATA_HOME !== undefined && env.XDG_DATA_HOME !== '') return join(env.XDG_DATA_HOME, 'heurist')
  return join(homedir(), '.heurist')
}

export interface HomePaths {
  root: string
  keystore: string
  config: string
  store: string
  models: string
  /** The chain this host's devnet runs (`heurist devnet`, `up`), with its local RPC URL. */
  devnet: string
  /** A chain run elsewhere, imported with `heurist deployment import` (its RPC URL as this host reaches it). */
  deployment: string
  /** Reward tables, points snapshots, earnings reports. */
  rewards: string
}

export function homePaths (root: string): HomePaths {
  const r = resolve(root)
  return {
    root: r,
    keystore: join(r, 'keystore.json'),
    config: join(r, 'config.toml'),
    store: join(r, 'store'),
    models: join(r, 'models'),
    devnet: join(r, 'devnet.json'),
    deployment: join(r, 'deployment.json'),
    rewards: join(r, 'rewards')
  }
}

/**
 * The paths for state tied to one chain deployment (`key` from deploymentKey): the store and
 * the reward files move under `chains/<key>/`, so a new chain starts from empty ledgers.
 */
export function chainPaths (paths: HomePaths, key: string): HomePaths {
  if (!/^[0-9]{1,20}-[0-9a-f]{16}$/.test(key)) throw new Error(`bad deployment key ${key}`)
  const dir = join(paths.root, 'chains', key)
  return { ...paths, store: join(dir, 'store'), rewards: join(dir, 'rewards') }
}

export async function ensureHome (paths: HomePaths): Promise<void> {
  await mkdir(paths.root, { recursive: true, mode: 0o700 })
}
