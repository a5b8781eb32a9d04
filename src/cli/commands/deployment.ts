import type { Command } from 'commander'
import { writeFile, rename } from 'node:fs/promises'
import { ensureHome } from '../../core/home.js'
import { usageError } from '../../core/errors.js'
import { checkDeployment, fetchDeployment, parseDeployment, readDeployment, shareableDeployment, writeDeployment } from '../../chain/index.js'
import { loadContext } from '../context.js'
import { resolveDeployment, withChainFlags, type ChainFlags } from '../chain.js'

/**
 * Moving a chain's deployment between hosts: `export` prints (or writes) the chain id and
 * contract addresses without this host's RPC URL; `import` stores a deployment in another
 * host's home as deployment.json with the RPC URL that host reaches the chain by, after
 * checking that the RPC is that chain. Every chain command then finds it with no flags.
 */
export function registerDeployment (program: Command): void {
  const dep = program.command('deployment').description('share a chain\'s deployment (chain id, contract addresses) between hosts')

  withChainFlags(dep.command('export')
    .description('print the deployment this home uses without its RPC URL (to copy to other hosts), or write it with --out')
    .option('--out <file>', 'write it to this file instead of stdout'))
    .action(async (opts: ChainFlags & { out?: string }, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const { deployment } = await resolveDeployment(ctx, opts)
      const text = JSON.stringify(shareableDeployment(deployment), null, 2) + '\n'
      if (opts.out === undefined) { process.stdout.write(text); return }
      const tmp = `${opts.out}.${process.pid}.tmp`
      await writeFile(tmp, text)
      await rename(tmp, opts.out)
      ctx.print({ written: opts.out, chainId: deployment.chainId }, r => `deployment of chain ${String(r.chainId)} written to ${String(r.written)}`)
    })

  dep.command('import')
    .description('store a chain\'s deployment in this home (deployment.json) with the RPC URL this host reaches it by; without FILE it is fetched from a devnet at GET <rpc>/deployment.json')
    .argument('[file]', 'deployment file from `heurist deployment export` (default: fetch it from the devnet at --rpc)')
    .requiredOption('--rpc <url>', 'the chain\'s JSON-RPC URL as this host reaches it, e.g. http://10.0.0.1:8545')
    .option('--no-check', 'store it without checking that the RPC answers with that chain id and contracts')
    .action(async (file: string | undefined, opts: { rpc: string, check: boolean }, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const d = file === undefined ? parseDeployment(await fetchDeployment(opts.rpc), `${opts.rpc}/deployment.json`) : await readDeployment(file)
      let url: URL
      try { url = new URL(opts.rpc) } catch { throw usageError('CHAIN_BAD_RPC', `--rpc: not a URL: ${JSON.stringify(opts.rpc)}`) }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError('CHAIN_BAD_RPC', `--rpc: must be http(s), got ${url.protocol}`)
      const checked = opts.check ? await checkDeployment(opts.rpc, d) : null
      await ensureHome(ctx.paths)
      await writeDeployment(ctx.paths.deployment, { ...shareableDeployment(d), rpcUrl: opts.rpc })
      ctx.print({ deploymentFile: ctx.paths.deployment, rpcUrl: opts.rpc, chainId: d.chainId, checked: checked !== null, blockNumber: checked?.blockNumber ?? null, contracts: d.contracts }, r =>
        `chain ${String(r.chainId)} at ${String(r.rpcUrl)}${checked === null ? ' (not checked)' : `: ${checked.contracts} contracts found, block ${checked.blockNumber}`}\nwritten to ${String(r.deploymentFile)}; chain commands on this host use it with no flags`)
    })
}
