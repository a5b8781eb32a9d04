import type { Command } from 'commander'
import { rm } from 'node:fs/promises'
import { ensureHome } from '../../core/home.js'
import { startDevnet, writeDeployment } from '../../chain/index.js'
import { loadContext } from '../context.js'
import { collectList, parseIntFlag } from '../flags.js'
import { parseAddress } from '../chain.js'
import { untilSignal } from '../lifecycle.js'
import { usageError } from '../../core/errors.js'
import { isIP } from 'node:net'
import { keystoreAddress } from '../../core/identity.js'
import { deployParamsFromFlags, withDeployParamFlags, type DeployParamFlags } from './deploy.js'

export function registerDevnet (program: Command): void {
  withDeployParamFlags(program.command('devnet')
    .description('run a chain (in-process EDR) with the contracts deployed; writes devnet.json in the home folder, funds the operator, and serves the shareable deployment at GET /deployment.json')
    .option('--port <port>', 'JSON-RPC port', '8545')
    .option('--host <address>', 'address the JSON-RPC listens on: 127.0.0.1 (this host only), 0.0.0.0 (every interface) or one interface\'s address', '127.0.0.1')
    .option('--block-seconds <s>', 'mine an empty block after this many idle seconds, so epochs follow the clock (0 = only on transactions)', '2')
    .option('--keep', 'keep devnet.json when the devnet stops (by default it is removed: the chain is gone)'))
    .option('--fund <address>', 'also fund this address with HEU and ETH, e.g. the operator keys of other home folders (repeatable or comma-separated)', collectList)
    .action(async (opts: DeployParamFlags & { port: string, host: string, blockSeconds: string, keep?: boolean, fund?: string[] }, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const port = parseIntFlag('--port', opts.port, 0, 65535)
      const blockSeconds = parseIntFlag('--block-seconds', opts.blockSeconds, 0, 3600)
      const host = parseHost('--host', opts.host)
      const extra = (opts.fund ?? []).map(a => parseAddress('--fund', a))
      if (extra.length > 64) throw usageError('CLI_BAD_FLAG', '--fund: at most 64 addresses')
      const deploy = deployParamsFromFlags(opts)
      await ensureHome(ctx.paths)
      const operator = await keystoreAddress(ctx.paths.keystore)
      const devnet = await startDevnet({
        port,
        host,
        blockIntervalMs: blockSeconds * 1000,
        deploy,
        fund: [...new Set([...(operator === undefined ? [] : [operator]), ...extra])],
        onProgress: step => ctx.logger.info(step)
      })
      await writeDeployment(ctx.paths.devnet, devnet.deployment)
      ctx.print({
        rpcUrl: devnet.rpcUrl,
        listen: `${host}:${new URL(devnet.rpcUrl).port}`,
        chainId: devnet.chainId,
        deploymentFile: ctx.paths.devnet,
        operator: operator ?? null,
        funded: extra,
        contracts: devnet.deployment.contracts,
        accounts: devnet.accounts.map(a => a.address)
      }, r => [
        `devnet running at ${String(r.rpcUrl)} (chain ${String(r.chainId)})`,
        `deployment written to ${String(r.deploymentFile)}${opts.keep === true ? ' (kept after exit: --keep)' : ' (removed on exit; --keep keeps it)'}`,
        isLoopback(host)
          ? 'listening on loopback only: other hosts cannot reach it (--host 0.0.0.0 lets them in)'
          : `other hosts: heurist deployment import --rpc http://<this host's address>:${new URL(devnet.rpcUrl).port}`,
        operator === undefined ? 'no operator key in the home folder (run `heurist init` to get one funded)' : `funded the operator ${operator} with HEU and ETH`,
        ...(extra.length === 0 ? [] : [`funded ${extra.join(', ')} with HEU and ETH`]),
        ...Object.entries(devnet.deployment.contracts).map(([k, v]) => `  ${k.padEnd(14)} ${v}`),
        'press Ctrl-C to stop'
      ].join('\n'))
      await untilSignal(ctx.logger, async () => {
        await devnet.stop()
        if (opts.keep !== true) await rm(ctx.paths.devnet, { force: true })
      })
    })
}

/** A listen address: an IPv4/IPv6 literal or a host name (no scheme, no port). */
export function parseHost (name: string, raw: string): string {
  const h = raw.trim()
  if (isIP(h) !== 0 || /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}))*$/.test(h)) return h
  throw usageError('CLI_BAD_FLAG', `${name}: expected an IP address or host name (e.g. 0.0.0.0), got ${JSON.stringify(raw)}`)
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host)
}
