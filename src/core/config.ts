import { z } from 'zod'
import { readFile } from 'node:fs/promises'
import { parse as parseToml, TomlError } from 'smol-toml'
import { HeuristError, usageError } from './errors.js'
import { LOG_LEVELS } from './logger.js'

/**
 * The node's configuration. Precedence: flags > `HEURIST_*` env > `config.toml` > defaults.
 * Every key is declared once below, with its schema, default and a one-line description;
 * the schema, the defaults, the env names and the commented `config.toml` all come from it.
 * To add a key: add a `field(...)` to the right section.
 */
interface Field<T extends z.ZodType = z.ZodType> {
  schema: T
  default: z.infer<T>
  doc: string
}

function field<T extends z.ZodType> (schema: T, def: z.infer<T>, doc: string): Field<T> {
  return { schema, default: def, doc }
}

const port = z.number().int().min(0).max(65535)
const multiaddr = z.string().startsWith('/', 'a multiaddr starting with /')

export const configSpec = {
  log: {
    level: field(z.enum(LOG_LEVELS), 'info', 'minimum level logged: fatal, error, warn, info, debug, trace or silent'),
    format: field(z.enum(['auto', 'json', 'pretty']), 'auto', 'json for headless servers, pretty for people; auto = pretty on a TTY, json otherwise')
  },
  p2p: {
    listen: field(z.array(multiaddr).max(16), ['/ip4/0.0.0.0/tcp/4021'], 'multiaddrs to listen on (TCP port 4021 on every interface by default: open it to the peers that should dial this node)'),
    bootstrap: field(z.array(multiaddr).max(64), [], 'multiaddrs (with /p2p/<peerId>) of peers to join the mesh through, e.g. /ip4/10.0.0.2/tcp/4021/p2p/16Uiu2... as printed by the node at start; empty = this node starts the mesh'),
    announce: field(z.array(multiaddr).max(16), [], 'addresses to advertise instead of those found from p2p.listen, e.g. /ip4/203.0.113.7/tcp/4021 or /dns4/miner.example.org/tcp/4021 (behind a port forward or a DNS name); empty = the listen addresses, loopback left out'),
    devnet: field(z.boolean(), false, 'loopback-only relaxations for a local devnet or tests (never on a public node)'),
    relay: field(z.enum(['auto', 'on', 'off']), 'auto', 'serve as a circuit relay for miners behind NAT: auto = when a listen address is a public IP'),
    relayReservations: field(z.number().int().min(0).max(8), 2, 'relay slots a miner reserves when it is not public itself (0 = never use relays)'),
    relayMaxReservations: field(z.number().int().min(1).max(100_000), 128, 'reservations this node holds at most when it relays'),
    relayDataLimit: field(z.number().int().min(1024).max(2 ** 40), 8 * 1024 * 1024, 'bytes one relayed connection may carry (both directions) before the relay closes it'),
    relayDurationMs: field(z.number().int().min(1000).max(24 * 3_600_000), 300_000, 'how long one relayed connection may stay open, in ms'),
    relayMaxCircuitsPerPeer: field(z.number().int().min(1).max(1024), 8, 'relayed connections one peer may have open through this relay at once'),
    subscribeAdverts: field(z.boolean(), true, 'receive and relay every miner\'s capacity advert; a miner whose bootstrap peers are gateways or validators sets false (it routes nothing; its own adverts still reach them; docs/scale.md)'),
    subscribeReceipts: field(z.boolean(), true, 'receive and relay every job\'s receipt; a miner may set false at scale (then its earnings estimate sees no points; validators always receive them; docs/scale.md)')
  },
  inference: {
    threads: field(z.number().int().min(0).max(1024), 0, 'CPU threads for inference; 0 = the cores actually available'),
    imageThreads: field(z.number().int().min(0).max(1024), 0, 'onnxruntime threads per image model when mining; 0 = the cores actually available (validators always re-run on 1 and compare by SSIM/dHash)'),
    gpu: field(z.enum(['auto', 'cpu', 'cuda', 'vulkan', 'metal']), 'auto', 'compute backend; auto picks the best one whose prebuilt binary is present'),
    models: field(z.array(z.string().min(1).max(256)).max(32), [], 'models to load at start (names, sha256 ids or paths); empty = the built-in tiny models'),
    maxQueue: field(z.number().int().min(0).max(10_000), 16, 'jobs waiting per model before new ones are answered "busy"'),
    gpus: field(z.string().regex(/^(all|none|\d{1,2}(,\d{1,2}){0,15})$/, '"all", "none" or GPU indices such as "0,1"'), 'all', 'GPUs this miner budgets and places models on: all, none, or indices such as "0,1" (one identity serves them all)'),
    memoryReserveMb: field(z.number().int().min(0).max(1_048_576), 1024, 'MiB kept free on each device (RAM and each GPU) when planning which models fit'),
    memoryBudgetMb: field(z.number().int().min(0).max(16_777_216), 0, 'caps each device\'s budget at this many MiB; 0 = what is free at start less memoryReserveMb'),
    imageMaxSide: field(z.number().int().min(8).max(1024).multipleOf(8), 512, 'largest image side a miner budgets working memory for; larger image jobs are refused before they start')
  },
  mine: {
    maxJobs: field(z.number().int().min(1).max(256), 2, 'jobs a miner runs at once (more wait in the queue)'),
    price: field(z.string().regex(/^(0|[1-9][0-9]{0,77})$/, 'a price in wei (decimal integer)'), '1000000000', 'price per compute unit advertised, in wei (a unit: one token, or one step of a 64×64 image tile, on a 1 GiB model); default the protocol floor (1 gwei): below it a miner earns points only for the units its payments cover, at 0 none'),
    serveUnpaid: field(z.boolean(), false, 'serve requesters whose Payments deposit does not cover the job (local use); off: they get a P2P_NO_DEPOSIT rejection'),
    advertIntervalMs: field(z.number().int().min(500).max(600_000), 5000, 'how often the capacity advert is published, in ms (adverts live three intervals)'),
    drainGraceMs: field(z.number().int().min(0).max(600_000), 30_000, 'on SIGINT/SIGTERM, how long running jobs may take to finish before they are cancelled'),
    autoClaim: field(z.boolean(), true, 'claim epoch rewards as soon as their root is on chain (mine --no-auto-claim turns it off; heurist claim works by hand)'),
    redeemThreshold: field(z.string().regex(/^\d{1,12}(\.\d{1,18})?$/, 'an amount of HEU such as 0.01'), '0.01', 'redeem a payer\'s vouchers in Payments once they owe at least this many HEU (everything owed is redeemed on shutdown)')
  },
  rewards: {
    tipBps: field(z.number().int().min(0).max(10_000), 1000, 'validators: share of each node\'s epoch reward paid to its voters, in basis points (every validator must use the same value)')
  },
  dashboard: {
    enabled: field(z.boolean(), true, 'serve the local dashboard (mine, gateway, up) on 127.0.0.1'),
    port: field(port, 0, 'dashboard port on 127.0.0.1; 0 = any free port (the URL is logged)')
  },
  pods: {
    host: field(z.boolean(), true, 'miners host pods from PodRegistry as demand and votes ask (needs a chain deployment)'),
    idleMs: field(z.number().int().min(1000).max(7 * 86_400_000), 300_000, 'a pod with no demand and no job for this long is unloaded (scale to zero), in ms'),
    maxLoaded: field(z.number().int().min(0).max(64), 4, 'most pods one miner has loaded at once'),
    coldStartTimeoutMs: field(z.number().int().min(0).max(3_600_000), 60_000, 'gateway: how long a request for a pod that no miner hosts waits for one to load it, in ms')
  },
  chain: {
    rpc: field(z.string().max(2048), '', 'EVM JSON-RPC URL; empty = the devnet in the home folder (devnet.json)'),
    deployment: field(z.string().max(4096), '', 'deployment file with chain id and contract addresses; empty = devnet.json')
  },
  gateway: {
    host: field(z.string().min(1).max(255), '127.0.0.1', 'address the gateway listens on'),
    port: field(port, 8080, 'HTTP port of the OpenAI-compatible gateway'),
    metricsPublic: field(z.boolean(), false, 'serve GET /metrics on the gateway\'s port to every client; false = only to clients on this host (127.0.0.1)'),
    maxPrice: field(z.string().regex(/^(0|[1-9][0-9]{0,77})$/, 'a price in wei (decimal integer)'), '1000000000000', 'highest price per compute unit the gateway pays, in wei: dearer miners are never routed to nor reserved for'),
    queueMax: field(z.number().int().min(1).max(1_000_000), 1024, 'requests that may wait for a miner per model; past it (or past what the deadline allows) requests get 429 with Retry-After'),
    queueMaxPerKey: field(z.number().int().min(1).max(1_000_000), 512, 'requests one API key may have waiting per model (keys are served round robin)'),
    connectionsPerIp: field(z.number().int().min(1).max(65_535), 256, 'HTTP connections one client IP may hold; a new one past it evicts that IP\'s oldest idle one'),
    settleThreshold: field(z.string().regex(/^\d{1,12}(\.\d{1,18})?$/, 'an amount of HEU such as 0.1'), '0.1', 'Pay-by-User: settle a user\'s session on chain once it owes this many HEU (and always before its authorization expires, and at stop); 0 = after every job')
  },
  metrics: {
    port: field(port, 0, 'Prometheus metrics port of mine and validate (GET /metrics); 0 = off (the gateway serves /metrics on its own port)'),
    host: field(z.string().min(1).max(255), '127.0.0.1', 'address the metrics port listens on (0.0.0.0 for a scraper on another machine)')
  },
  alerts: {
    webhook: field(z.string().max(2048).regex(/^(|https?:\/\/\S+)$/, 'an http(s):// URL, or empty for none'), '', 'URL that receives a JSON POST for each alert (slashed, claim failed, reachability lost, model failed to load, low gas, idle, part restarted); empty = off'),
    minEth: field(z.string().regex(/^\d{1,12}(\.\d{1,18})?$/, 'an amount of ETH such as 0.01'), '0.01', 'alert when the operator\'s gas balance falls below this many ETH; 0 = off'),
    idleMinutes: field(z.number().int().min(0).max(10_080), 60, 'alert when no job arrives for this many minutes while adverts are out; 0 = off')
  },
  update: {
    registry: field(z.string().max(2048).regex(/^https?:\/\/\S+$/, 'an http(s):// URL'), 'https://registry.npmjs.org', 'npm registry that `heurist update check` asks for the newest published version')
  }
} as const

type Spec = typeof configSpec
export type HeuristConfig = { -readonly [S in keyof Spec]: { -readonly [K in keyof Spec[S]]: Spec[S][K] extends Field<infer T> ? z.infer<T> : never } }
export type ConfigSource = 'default' | 'file' | 'env' | 'flag'

export interface ResolvedConfig {
  config: HeuristConfig
  /** Where each dotted key's value came from. */
  sources: Record<string, ConfigSource>
}

/** Overrides from command-line flags, keyed by dotted path (`log.level`). */
export type ConfigOverrides = Record<string, unknown>

interface Leaf { section: string, key: string, path: string, field: Field }

function leaves (): Leaf[] {
  const out: Leaf[] = []
  for (const [section, fields] of Object.entries(configSpec)) {
    for (const [key, f] of Object.entries(fields)) out.push({ section, key, path: `${section}.${key}`, field: f as Field })
  }
  return out
}

/** HEURIST_* variables that are not config keys: the home folder, the keystore password, stack traces. */
export const NON_CONFIG_ENV = ['HEURIST_HOME', 'HEURIST_PASSWORD', 'HEURIST_PASSWORD_FILE', 'HEURIST_DEBUG']
/** Variables of the test and bench harnesses, passed down to the CLI processes they start. */
const HARNESS_ENV_PREFIXES = ['HEURIST_E2E_', 'HEURIST_SKIP_', 'HEURIST_BENCH_', 'HEURIST_TEST_']

/** Levenshtein distance, for suggesting the variable that was meant (names are short). */
function editDistance (a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 4
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    prev = cur
  }
  return prev[b.length]!
}

/** `inference.maxQueue` → `HEURIST_INFERENCE_MAX_QUEUE`. */
export function envName (path: string): string {
  return 'HEURIST_' + path.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/\./g, '_').toUpperCase()
}

export function defaultConfig (): HeuristConfig {
  const out: Record<string, Record<string, unknown>> = {}
  for (const l of leaves()) (out[l.section] ??= {})[l.key] = structuredClone(l.field.default)
  return out as HeuristConfig
}

function badKey (path: string, source: ConfigSource, origin: string, expected: string, got: unknown): HeuristError {
  const where = source === 'env' ? `env ${envName(path)}` : source === 'flag' ? 'flag' : source === 'file' ? origin : 'default'
  return usageError('CONFIG_BAD_VALUE', `config key ${path} (from ${where}): ${expected}; got ${JSON.stringify(got)}`, { key: path, source })
}

/** Env values are strings: turn them into the type of the key's default. */
function parseEnvValue (leaf: Leaf, raw: string): unknown {
  const d = leaf.field.default
  if (typeof d === 'number') return raw.trim() === '' ? NaN : Number(raw)
  if (typeof d === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true
    if (/^(0|false|no|off)$/i.test(raw)) return false
    return raw
  }
  if (Array.isArray(d)) return raw.split(',').map(s => s.trim()).filter(s => s !== '')
  return raw
}

export async function readConfigFile (path: string): Promise<Record<string, unknown> | null> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new HeuristError('CONFIG_UNREADABLE', `cannot read ${path}: ${(e as Error).message}`)
  }
  if (text.length > 1_000_000) throw usageError('CONFIG_TOO_LARGE', `${path} is over 1 MB`)
  try {
    return parseToml(text) as Record<string, unknown>
  } catch (e) {
    const msg = e instanceof TomlError ? e.message.split('\n')[0] : String(e)
    throw usageError('CONFIG_BAD_TOML', `${path} is not valid TOML: ${msg}`)
  }
}

/**
 * Merges defaults, the file's values, env and flags, and validates every key. An unknown
 * key or a bad value throws a usage error (exit 2) that names the key and what was expected.
 */
export function resolveConfig (input: { file?: Record<string, unknown> | null, filePath?: string, env?: NodeJS.ProcessEnv, flags?: ConfigOverrides }): ResolvedConfig {
  const all = leaves()
  const byPath = new Map(all.map(l => [l.path, l]))
  const origin = input.filePath ?? 'config.toml'
  const raw = new Map<string, { value: unknown, source: ConfigSource }>()
  for (const l of all) raw.set(l.path, { value: structuredClone(l.field.default), source: 'default' })

  const file = input.file ?? {}
  for (const [section, body] of Object.entries(file)) {
    if (!(section in configSpec)) throw usageError('CONFIG_UNKNOWN_KEY', `unknown config key ${section} in ${origin}; known sections: ${Object.keys(configSpec).join(', ')}`, { key: section })
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badKey(section, 'file', origin, 'expected a [section] table', body)
    for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
      const path = `${section}.${key}`
      if (!byPath.has(path)) throw usageError('CONFIG_UNKNOWN_KEY', `unknown config key ${path} in ${origin}`, { key: path })
      raw.set(path, { value, source: 'file' })
    }
  }
  const env = input.env ?? {}
  const known = new Set(all.map(l => envName(l.path)))
  for (const name of Object.keys(env)) {
    if (!name.startsWith('HEURIST_') || known.has(name) || NON_CONFIG_ENV.includes(name) || HARNESS_ENV_PREFIXES.some(p => name.startsWith(p))) continue
    // a misspelled variable would otherwise be ignored in silence (a misspelled key exits 2 too)
    const near = [...known, ...NON_CONFIG_ENV].filter(k => editDistance(k, name) <= 3)
    throw usageError('CONFIG_UNKNOWN_ENV', `unknown environment variable ${name}${near.length > 0 ? `; did you mean ${near.slice(0, 3).join(' or ')}?` : ''} (every HEURIST_* variable is a config key: heurist config show lists them)`, { key: name })
  }
  for (const l of all) {
    const v = env[envName(l.path)]
    if (v !== undefined) raw.set(l.path, { value: parseEnvValue(l, v), source: 'env' })
  }
  for (const [path, value] of Object.entries(input.flags ?? {})) {
    if (value === undefined) continue
    if (!byPath.has(path)) throw usageError('CONFIG_UNKNOWN_KEY', `unknown config key ${path}`, { key: path })
    raw.set(path, { value, source: 'flag' })
  }

  const config: Record<string, Record<string, unknown>> = {}
  const sources: Record<string, ConfigSource> = {}
  for (const l of all) {
    const { value, source } = raw.get(l.path)!
    const parsed = l.field.schema.safeParse(value)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      throw badKey(l.path, source, origin, issue?.message ?? 'invalid value', value)
    }
    ;(config[l.section] ??= {})[l.key] = parsed.data
    sources[l.path] = source
  }
  return { config: config as HeuristConfig, sources }
}

/** The commented `config.toml` that `heurist init` writes: every key, commented out at its default. */
export function defaultConfigToml (): string {
  const lines = [
    '# heurist node configuration.',
    '# Precedence: command-line flags > HEURIST_* environment variables > this file > defaults.',
    '# Every key is shown commented out at its default; uncomment to change it.',
    '# Each key also has an environment variable, e.g. log.level is HEURIST_LOG_LEVEL.',
    ''
  ]
  for (const [section, fields] of Object.entries(configSpec)) {
    lines.push(`[${section}]`)
    for (const [key, f] of Object.entries(fields)) {
      lines.push(`# ${(f as Field).doc}`)
      lines.push(`# ${key} = ${JSON.stringify((f as Field).default)}`)
    }
    lines.push('')
  }
  return lines.join('\n')
}
