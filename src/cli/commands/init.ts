import type { Command } from 'commander'
import { Wallet } from 'ethers'
import { access, writeFile } from 'node:fs/promises'
import { loadContext, passwordFor } from '../context.js'
import { ensureHome } from '../../core/home.js'
import { encryptKey, identityFromPrivateKey, writeKeystore, defaultKeystoreOptions } from '../../core/identity.js'
import { defaultConfigToml } from '../../core/config.js'
import { usageError } from '../../core/errors.js'
import { parseIntFlag } from '../flags.js'

async function exists (path: string): Promise<boolean> {
  try { await access(path); return true } catch { return false }
}

export function registerInit (program: Command): void {
  program.command('init')
    .description('create the home folder, the operator key (encrypted keystore) and a commented config.toml')
    .option('--force', 'replace an existing operator key (the old key is lost)')
    .option('--kdf-cost <log2n>', 'scrypt cost as log2(N) for the keystore (lower is faster and weaker)', String(defaultKeystoreOptions.scryptLogN))
    .action(async (opts: { force?: boolean, kdfCost: string }, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const scryptLogN = parseIntFlag('--kdf-cost', opts.kdfCost, 10, 20)
      if (opts.force !== true && await exists(ctx.paths.keystore)) {
        throw usageError('KEY_EXISTS', `an operator key already exists at ${ctx.paths.keystore}; use --force to replace it`)
      }
      await ensureHome(ctx.paths)
      const password = await passwordFor('the new operator keystore', process.env, true)
      const wallet = Wallet.createRandom()
      await writeKeystore(ctx.paths.keystore, await encryptKey(new Wallet(wallet.privateKey), password, { scryptLogN }))
      if (!await exists(ctx.paths.config)) await writeFile(ctx.paths.config, defaultConfigToml(), { mode: 0o600 })
      const id = identityFromPrivateKey(wallet.privateKey)
      ctx.logger.debug({ address: id.address }, 'operator key created')
      ctx.print({ address: id.address, peerId: id.peerId.toString(), home: ctx.paths.root }, r =>
        `Created the operator key in ${r.home}\n  address  ${r.address}\n  peerId   ${r.peerId}`)
    })
}
