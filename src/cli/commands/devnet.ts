import type { Command } from 'commander'
import { rm } from 'node:fs/promises'
import { ensureHome } from '../../core/home.js'
import { startDevnet, writeDeployment } from '../../chain/index.js'
import { loadContext } from '../context.js'
import { collectList, parseIntFlag } from '../flags.js'
import { parseAddress } from '../chain.js'
import { untilSignal } from '../lifecycle.js'
import { usageError } from '../../core/errors.js'
import { keystoreAddress } from '../../core/identity.js'
import { deployParamsFromFlags, withDeployParamFlags, type DeployParamFlags } from './deploy.js'

export function registerDevnet (program: Command): void {
  withDeployParamFlags(program.command('devnet')
    .description('run a local chain (in-process EDR) with the contracts deployed; writes devnet.json in the home folder and funds the operator')
    .option('--port <port>', 'JSON-RPC port on 127.0.0.1', '8545'))
    .option('--fund <address>', 'also fund this address with HEU and ETH, e.g. the operator keys of other home folders (repeatable or comma-separated)', collectList)
    .action(async (opts: DeployParamFlags & { port: string, fund?: string[] }, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const port = parseIntFlag('--port', opts.port, 0, 65535)
      const extra = (opts.fund ?? []).map(a => parseAddress('--fund', a))
      if (extra.length > 64) throw usageError('CLI_BAD_FLAG', '--fund: at most 64 addresses')
      const deploy = deployParamsFromFlags(opts)
      await ensureHome(ctx.paths)
      const operator = await keystoreAddress(ctx.paths.keystore)
      const devnet = await startDevnet({
        port,
        deploy,
        fund: [...new Set([...(operator === undefined ? [] : [operator]), ...extra])],
        onProgress: step => ctx.logger.info(step)
      })
      await writeDeployment(ctx.paths.devnet, devnet.deployment)
      ctx.print({
        rpcUrl: devnet.rpcUrl,
        chainId: devnet.chainId,
        deploymentFile: ctx.paths.devnet,
        operator: operator ?? null,
        funded: extra,
        contracts: devnet.deployment.contracts,
        accounts: devnet.accounts.map(a => a.address)
      }, r => [
        `devnet running at ${String(r.rpcUrl)} (chain ${String(r.chainId)})`,
        `deployment written to ${String(r.deploymentFile)}`,
        operator === undefined ? 'no operator key in the home folder (run `heurist init` to get one funded)' : `funded the operator ${operator} with HEU and ETH`,
        ...(extra.length === 0 ? [] : [`funded ${extra.join(', ')} with HEU and ETH`]),
        ...Object.entries(devnet.deployment.contracts).map(([k, v]) => `  ${k.padEnd(14)} ${v}`),
        'press Ctrl-C to stop'
      ].join('\n'))
      await untilSignal(ctx.logger, async () => {
        await devnet.stop()
        await rm(ctx.paths.devnet, { force: true })
      })
    })
}
