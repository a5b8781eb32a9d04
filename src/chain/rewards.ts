/**
 * Reward claim files (contract): one JSON per epoch, `rewards/epoch-<N>.json` in the home
 * folder, written by whoever built the epoch's tree (validators, the epochs service) and read
 * by `heurist claim` and `heurist status`. { epoch, root, total, claims: [{account, amount, proof}] }.
 */
import { z } from 'zod'
import { readdir, readFile, writeFile, rename, mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { HeuristError } from '../core/errors.js'
import type { RewardTree } from './signing.js'

const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/)
const uint = z.string().regex(/^\d{1,78}$/)

export const rewardFileSchema = z.object({
  epoch: uint,
  root: hex32,
  total: uint,
  claims: z.array(z.object({
    account: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
    amount: uint,
    proof: z.array(hex32).max(64)
  })).max(100_000)
})

export type RewardFile = z.infer<typeof rewardFileSchema>

const MAX_FILE_BYTES = 64 * 1024 * 1024

export async function writeRewardFile (dir: string, epoch: bigint, tree: RewardTree): Promise<string> {
  await mkdir(dir, { recursive: true })
  const path = join(dir, `epoch-${epoch}.json`)
  const body: RewardFile = {
    epoch: epoch.toString(),
    root: tree.root,
    total: tree.total.toString(),
    claims: tree.claims.map(c => ({ account: c.account, amount: c.amount.toString(), proof: c.proof }))
  }
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(body))
  await rename(tmp, path)
  return path
}

/** Every valid reward file in `dir` (none when it does not exist); a bad file is an error naming it. */
export async function readRewardFiles (dir: string): Promise<RewardFile[]> {
  let names: string[]
  try { names = await readdir(dir) } catch { return [] }
  const out: RewardFile[] = []
  for (const n of names.filter(n => /^epoch-\d+\.json$/.test(n)).sort()) {
    // size first: a huge file is refused before it is read into memory
    if ((await stat(join(dir, n))).size > MAX_FILE_BYTES) throw new HeuristError('CHAIN_BAD_REWARD_FILE', `${n} is too large`)
    const text = await readFile(join(dir, n), 'utf8')
    let raw: unknown
    try { raw = JSON.parse(text) } catch { throw new HeuristError('CHAIN_BAD_REWARD_FILE', `${join(dir, n)} is not JSON`) }
    const r = rewardFileSchema.safeParse(raw)
    if (!r.success) throw new HeuristError('CHAIN_BAD_REWARD_FILE', `${join(dir, n)}: ${r.error.issues[0]?.message ?? 'invalid'}`)
    out.push(r.data)
  }
  return out
}
