import type { Command } from 'commander'
import { join } from 'node:path'
import { deployContracts, writeDeployment, connectChain, probeChainId, makeProvider, type DeployParams } from '../../chain/index.js'
import { ensureHome } from '../../core/home.js'
import { usageError } from '../../core/errors.js'
import { loadContext } from '../context.js'
import { parseIntFlag } from '../flags.js'
import { parseAddress } from '../chain.js'

export interface DeployParamFlags { epochSeconds?: string, lockupSeconds?: string, schedule: string }

/** The chain parameters `deploy` and `devnet` both take: epoch length, unstake lockup, emission schedule. */
export function withDeployParamFlags (cmd: Command): Command {
  return cmd
    .option('--epoch-seconds <n>', 'epoch length in seconds (default a week)')
    .option('--lockup-seconds <n>', 'stHEU unstake lockup in seconds (default 365 days)')
    .option('--schedule <name>', 'emission schedule: whitepaper or season2', 'whitepaper')
}

export function deployParamsFromFlags (opts: DeployParamFlags): Partial<DeployParams> {
  if (opts.schedule !== 'whitepaper' && opts.schedule !== 'season2') throw usageError('CLI_BAD_FLAG', `--schedule: whitepaper or season2, got ${JSON.stringify(opts.schedule)}`)
  const params: Partial<DeployParams> = { schedule: opts.schedule }
  if (opts.epochSeconds !== undefined) params.epochSeconds = BigInt(parseIntFlag('--epoch-seconds', opts.epochSeconds, 1, 10 * 31_536_000))
  if (opts.lockupSeconds !== undefined) params.lockupSeconds = BigInt(parseIntFlag('--lockup-seconds', opts.lockupSeconds, 0, 10 * 31_536_000))
  return params
}

export function registerDeploy (program: Command): void {
  withDeployParamFlags(program.command('deploy')
    .description('deploy the contracts to any EVM chain from the operator key, and write the deployment file')
    .requiredOption('--rpc <url>', 'EVM JSON-RPC URL')
    .option('--out <file>', 'where to write the deployment file (default <home>/deployment.json)'))
    .option('--reservoir <address>', 'compute reservoir address (default: the deployer)')
    .action(async (opts: DeployParamFlags & { rpc: string, out?: string, reservoir?: string }, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const params = deployParamsFromFlags(opts)
      if (opts.reservoir !== undefined) params.reservoir = parseAddress('--reservoir', opts.reservoir)
      const chainId = await probeChainId(opts.rpc)
      const provider = makeProvider(opts.rpc, chainId)
      try {
        const signer = (await ctx.identity()).wallet.connect(provider)
        const deployment = await deployContracts(signer, params, { onProgress: (name, address) => ctx.logger.info({ address }, `deployed ${name}`) })
        deployment.rpcUrl = opts.rpc
        await ensureHome(ctx.paths)
        const out = opts.out ?? join(ctx.paths.root, 'deployment.json')
        await writeDeployment(out, deployment)
        // read it back through the client: proves the file, chain id and addresses work together
        const check = await connectChain({ deployment, rpc: opts.rpc })
        check.close()
        ctx.print({ chainId, deploymentFile: out, contracts: deployment.contracts },
          r => [`deployed on chain ${String(r.chainId)}; deployment written to ${String(r.deploymentFile)}`,
            ...Object.entries(deployment.contracts).map(([k, v]) => `  ${k.padEnd(14)} ${v}`)].join('\n'))
      } finally {
        provider.destroy()
      }
    })
}
