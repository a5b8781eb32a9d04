import { z } from 'zod'
import { HeuristError } from '../core/errors.js'

export interface UpdateCheckOptions {
  /** npm registry base URL. Default https://registry.npmjs.org (update.registry). */
  registry: string
  /** Default 10 s. */
  timeoutMs: number
  /** The registry document is read up to this size. Default 8 MB (a package with many versions). */
  maxBytes: number
}

export const defaultUpdateCheckOptions: UpdateCheckOptions = { registry: 'https://registry.npmjs.org', timeoutMs: 10_000, maxBytes: 8 * 1024 * 1024 }

export interface UpdateInfo {
  package: string
  current: string
  latest: string
  updateAvailable: boolean
  /** The newest version's one-line changelog (package.json `heurist.changelog`), if it has one. */
  changelog: string | null
  registry: string
}

const SEMVER = /^(\d{1,9})\.(\d{1,9})\.(\d{1,9})(?:-([0-9A-Za-z.-]{1,64}))?(?:\+[0-9A-Za-z.-]{1,64})?$/

/** -1, 0 or 1 as semver orders a and b (prereleases before their release, compared as strings per part). */
export function compareVersions (a: string, b: string): number {
  const pa = SEMVER.exec(a)
  const pb = SEMVER.exec(b)
  if (pa === null || pb === null) throw new HeuristError('UPDATE_BAD_VERSION', `not a version: ${JSON.stringify((pa === null ? a : b).slice(0, 80))}`)
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i])
    if (d !== 0) return Math.sign(d)
  }
  const ra = pa[4]
  const rb = pb[4]
  if (ra === rb) return 0
  if (ra === undefined) return 1
  if (rb === undefined) return -1
  const xa = ra.split('.')
  const xb = rb.split('.')
  for (let i = 0; i < Math.max(xa.length, xb.length); i++) {
    const sa = xa[i]
    const sb = xb[i]
    if (sa === undefined) return -1
    if (sb === undefined) return 1
    const na = /^\d+$/.test(sa) ? Number(sa) : NaN
    const nb = /^\d+$/.test(sb) ? Number(sb) : NaN
    if (!Number.isNaN(na) && !Number.isNaN(nb)) { if (na !== nb) return Math.sign(na - nb); continue }
    if (!Number.isNaN(na)) return -1
    if (!Number.isNaN(nb)) return 1
    if (sa !== sb) return sa < sb ? -1 : 1
  }
  return 0
}

const packument = z.object({
  'dist-tags': z.object({ latest: z.string().max(256) }),
  versions: z.record(z.string().max(256), z.object({ heurist: z.object({ changelog: z.string().max(1000) }).partial().optional() }).passthrough())
})

async function readBounded (res: Response, max: number): Promise<string> {
  const reader = res.body?.getReader()
  if (reader === undefined) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > max) { await reader.cancel(); throw new HeuristError('UPDATE_BAD_REGISTRY_ANSWER', `the registry's answer is over ${max} bytes`) }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Asks the npm registry for the newest published version of `name` (its `latest` tag) and
 * compares it with `current`. Nothing is installed. An unreachable registry is a typed error
 * (UPDATE_OFFLINE) that says so in one line.
 */
export async function checkForUpdate (name: string, current: string, options: Partial<UpdateCheckOptions> = {}): Promise<UpdateInfo> {
  const o = { ...defaultUpdateCheckOptions, ...options }
  const base = o.registry.replace(/\/+$/, '')
  const url = `${base}/${encodeURIComponent(name).replace(/^%40/, '@')}`
  let res: Response
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'follow', signal: AbortSignal.timeout(o.timeoutMs) })
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name
    throw new HeuristError('UPDATE_OFFLINE', `cannot reach the npm registry at ${base} (${cause}): are we offline? update.registry / HEURIST_UPDATE_REGISTRY picks another`)
  }
  if (res.status === 404) {
    await res.body?.cancel().catch(() => {})
    throw new HeuristError('UPDATE_NOT_PUBLISHED', `${name} is not published on ${base}`)
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => {})
    throw new HeuristError('UPDATE_BAD_REGISTRY_ANSWER', `the npm registry at ${base} answered HTTP ${res.status}`)
  }
  const text = await readBounded(res, o.maxBytes)
  let doc: z.infer<typeof packument>
  try {
    doc = packument.parse(JSON.parse(text))
  } catch {
    throw new HeuristError('UPDATE_BAD_REGISTRY_ANSWER', `the npm registry at ${base} sent a document without dist-tags.latest and versions`)
  }
  const latest = doc['dist-tags'].latest
  const changelog = doc.versions[latest]?.heurist?.changelog ?? null
  return { package: name, current, latest, updateAvailable: compareVersions(latest, current) > 0, changelog, registry: base }
}
