import type { Command } from 'commander'
import { readFile, stat } from 'node:fs/promises'
import { z } from 'zod'
import { parseAddress, parseAmount, runAction, withChainFlags, openChain, type ChainFlags } from '../chain.js'
import { parseIntFlag } from '../flags.js'
import { usageError } from '../../core/errors.js'
import type { RegistrationConsent } from '../../chain/index.js'

interface RegisterFlags extends ChainFlags {
  collateral?: string
  owner?: string
  validator?: boolean
  consentFor?: string
  validFor?: string
  consent?: string
}

const MAX_CONSENT_BYTES = 4096
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/)
const consentSchema = z.object({
  operator: address,
  owner: address,
  nonce: z.string().regex(/^\d{1,78}$/),
  deadline: z.string().regex(/^\d{1,20}$/),
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/)
}).strict()

/** The consent from `--consent`: inline JSON, or a file holding it (what `--consent-for --json` printed). */
async function readConsent (raw: string): Promise<RegistrationConsent> {
  let text = raw
  if (!raw.trimStart().startsWith('{')) {
    try {
      if ((await stat(raw)).size > MAX_CONSENT_BYTES) throw usageError('CLI_BAD_CONSENT', `--consent: ${raw} is over ${MAX_CONSENT_BYTES} bytes`)
      text = await readFile(raw, 'utf8')
    } catch (e) {
      if ((e as { code?: string }).code === 'CLI_BAD_CONSENT') throw e
      throw usageError('CLI_BAD_CONSENT', `--consent: cannot read ${raw}: ${(e as Error).message}`)
    }
  }
  let json: unknown
  try { json = JSON.parse(text) } catch { throw usageError('CLI_BAD_CONSENT', '--consent: not JSON') }
  const r = consentSchema.safeParse(json)
  if (!r.success) { const i = r.error.issues[0]; throw usageError('CLI_BAD_CONSENT', `--consent: ${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'}`) }
  return { ...r.data, nonce: BigInt(r.data.nonce), deadline: BigInt(r.data.deadline) }
}

export function registerRegister (program: Command): void {
  withChainFlags(program.command('register')
    .description('register a miner with HEU collateral (returned to the owner on exit); the operator must consent')
    .option('--collateral <amount>', 'collateral in HEU (at least the minimum from the security model)')
    .option('--owner <address>', 'the wallet that owns the collateral and payouts (default: the operator)')
    .option('--consent-for <owner>', 'operator key: sign a consent for <owner> to register this operator (prints it; sends nothing)')
    .option('--valid-for <seconds>', 'with --consent-for: how long the consent holds (default 86400)')
    .option('--consent <json|file>', 'owner key: register the operator named in this consent, paying --collateral')
    .option('--validator', 'register as a validator instead, with --collateral as the validator stake'))
    .action(async (opts: RegisterFlags, cmd: Command) => {
      if (opts.consentFor !== undefined) {
        if (opts.collateral !== undefined || opts.consent !== undefined || opts.validator === true) throw usageError('CLI_BAD_FLAG', '--consent-for only signs a consent: no --collateral, --consent or --validator')
        const owner = parseAddress('--consent-for', opts.consentFor)
        const validFor = BigInt(opts.validFor === undefined ? 86_400 : parseIntFlag('--valid-for', opts.validFor, 60, 365 * 86_400))
        const { ctx, chain } = await openChain(cmd, opts)
        try {
          const now = BigInt((await chain.provider.getBlock('latest'))?.timestamp ?? Math.floor(Date.now() / 1000))
          const c = await chain.signRegistrationConsent(owner, now + validFor)
          const out = { operator: c.operator, owner: c.owner, nonce: c.nonce.toString(), deadline: c.deadline.toString(), signature: c.signature }
          ctx.print(out, () => `consent for ${c.owner} to register operator ${c.operator}, until ${new Date(Number(c.deadline) * 1000).toISOString()}:\n${JSON.stringify(out)}\nthe owner runs: heurist register --collateral AMOUNT --consent '<that JSON>'`)
        } finally {
          chain.close()
        }
        return
      }
      if (opts.validFor !== undefined) throw usageError('CLI_BAD_FLAG', '--valid-for goes with --consent-for')
      if (opts.collateral === undefined) throw usageError('CLI_MISSING_FLAG', 'register needs --collateral <amount>')
      const wei = parseAmount('--collateral', opts.collateral)
      if (opts.validator === true) {
        if (opts.owner !== undefined || opts.consent !== undefined) throw usageError('CLI_BAD_FLAG', '--owner and --consent do not apply to --validator (a validator stakes from its own key)')
        await runAction(cmd, opts, async c => await c.registerValidator(wei), { action: 'register-validator', stake: wei })
        return
      }
      if (opts.consent !== undefined) {
        if (opts.owner !== undefined) throw usageError('CLI_BAD_FLAG', '--owner does not go with --consent: the owner is this key, as the consent names')
        const consent = await readConsent(opts.consent)
        await runAction(cmd, opts, async c => await c.register(wei, undefined, consent), { action: 'register', collateral: wei, operator: consent.operator, owner: consent.owner })
        return
      }
      const owner = opts.owner === undefined ? undefined : parseAddress('--owner', opts.owner)
      await runAction(cmd, opts, async c => await c.register(wei, owner), { action: 'register', collateral: wei, owner })
    })
}
