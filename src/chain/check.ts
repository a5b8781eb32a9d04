/**
 * Checks that an RPC endpoint is the chain a deployment file describes: the chain id it
 * answers matches, its genesis block is the file's (when recorded), and every contract
 * address holds code. `deployment import` and `doctor`
 * run it, so a wrong URL or a stale file is found before a node starts on it.
 */
import { HeuristError } from '../core/errors.js'
import type { Deployment } from './deployment.js'
import { probeChainId, makeProvider } from './provider.js'

export interface DeploymentCheck { chainId: number, contracts: number, blockNumber: number }

/** Throws CHAIN_WRONG_CHAIN_ID or CHAIN_NO_CONTRACT (or the probe's CHAIN_RPC_UNREACHABLE); bounded by `timeoutMs` per call. */
export async function checkDeployment (rpc: string, d: Deployment, timeoutMs = 5_000): Promise<DeploymentCheck> {
  const chainId = await probeChainId(rpc, { timeoutMs })
  if (chainId !== d.chainId) throw new HeuristError('CHAIN_WRONG_CHAIN_ID', `${rpc} is chain ${chainId} but the deployment is for chain ${d.chainId}`)
  const provider = makeProvider(rpc, chainId)
  try {
    const bounded = async <T>(p: Promise<T>): Promise<T> => await Promise.race([p, new Promise<never>((_resolve, reject) => { setTimeout(() => { reject(new HeuristError('CHAIN_RPC_UNREACHABLE', `${rpc} stopped answering`)) }, timeoutMs).unref() })])
    if (d.genesisHash !== undefined) {
      const genesis = await bounded(provider.getBlock(0))
      if (genesis?.hash?.toLowerCase() !== d.genesisHash.toLowerCase()) throw new HeuristError('CHAIN_WRONG_GENESIS', `${rpc} is another chain than the deployment's (genesis block ${genesis?.hash ?? 'unknown'}, the file says ${d.genesisHash}): a devnet restarted since the file was exported?`)
    }
    for (const [name, address] of Object.entries(d.contracts)) {
      const code = await bounded(provider.getCode(address))
      if (code === '0x') throw new HeuristError('CHAIN_NO_CONTRACT', `${rpc} has no contract ${name} at ${address}: the deployment file is for another chain (or a devnet that was restarted)`)
    }
    const blockNumber = await bounded(provider.getBlockNumber())
    return { chainId, contracts: Object.keys(d.contracts).length, blockNumber }
  } finally {
    provider.destroy()
  }
}

/** The shareable deployment a devnet serves read-only at GET <rpc>/deployment.json. */
export async function fetchDeployment (rpc: string, timeoutMs = 5_000): Promise<string> {
  let url: URL
  try { url = new URL('deployment.json', rpc.endsWith('/') ? rpc : rpc + '/') } catch { throw new HeuristError('CHAIN_BAD_RPC', `not a URL: ${JSON.stringify(rpc)}`, { usage: true }) }
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  } catch (e) {
    throw new HeuristError('CHAIN_RPC_UNREACHABLE', `cannot fetch ${url.toString()} (${(e as Error).message})`, { cause: e })
  }
  if (res.status !== 200) throw new HeuristError('CHAIN_NO_DEPLOYMENT', `${url.toString()} answered ${res.status}: this RPC does not serve a deployment (only \`heurist devnet\` does); copy the file from \`heurist deployment export\` instead`, { usage: true })
  const reader = res.body?.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  while (reader !== undefined) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.length
    if (size > 64 * 1024) { await reader.cancel(); throw new HeuristError('CHAIN_BAD_DEPLOYMENT', `${url.toString()} is over 64 KiB`) }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}
