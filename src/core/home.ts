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
  devnet: string
}

export function homePaths (root: string): HomePaths {
  const r = resolve(root)
  return {
    root: r,
    keystore: join(r, 'keystore.json'),
    config: join(r, 'config.toml'),
    store: join(r, 'store'),
    models: join(r, 'models'),
    devnet: join(r, 'devnet.json')
  }
}

export async function ensureHome (paths: HomePaths): Promise<void> {
  await mkdir(paths.root, { recursive: true, mode: 0o700 })
}
