/**
 * ethers providers for the chain commands. On an automining chain ethers' default 250 ms
 * cache returns stale block numbers, so caching is off (`cacheTimeout: -1`); the network is
 * pinned (`staticNetwork`) after one bounded eth_chainId probe, so an unreachable endpoint
 * fails at once with one line instead of ethers retrying forever. Reads issued together (in
 * one tick) go as one JSON-RPC batch of up to MAX_RPC_BATCH; a lone request goes at once, as
 * before (`batchStallTime: 0`): an epoch close reads a few facts per miner, and 8,001 miners'
 * reads one HTTP request each took tens of seconds on the devnet (docs/scale.md).
 */
import { JsonRpcProvider, Network } from 'ethers'
import { HeuristError } from '../core/errors.js'

export interface ProbeOptions {
  /** How long the first eth_chainId may take. Default 5 s. */
  timeoutMs: number
}

export const defaultProbeOptions: ProbeOptions = { timeoutMs: 5_000 }

/** Asks `rpcUrl` for its chain id; CHAIN_RPC_UNREACHABLE when it does not answer. */
export async function probeChainId (rpcUrl: string, options: ProbeOptions = defaultProbeOptions): Promise<number> {
  let url: URL
  try { url = new URL(rpcUrl) } catch { throw new HeuristError('CHAIN_BAD_RPC', `not a URL: ${JSON.stringify(rpcUrl)}`, { usage: true }) }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HeuristError('CHAIN_BAD_RPC', `the RPC URL must be http(s), got ${url.protocol}`, { usage: true })
  let text: string
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: AbortSignal.timeout(options.timeoutMs)
    })
    text = (await res.text()).slice(0, 4096)
  } catch (e) {
    const c = (e as { cause?: { code?: string, message?: string, errors?: Array<{ code?: string }> } }).cause
    const cause = c?.code ?? c?.errors?.[0]?.code ?? (c as Error | undefined)?.message ?? ((e as Error).name === 'TimeoutError' ? 'timed out' : (e as Error).message)
    throw new HeuristError('CHAIN_RPC_UNREACHABLE', `cannot reach the RPC endpoint ${rpcUrl} (${cause})`, { cause: e })
  }
  let id: unknown
  try { id = (JSON.parse(text) as { result?: unknown }).result } catch {}
  if (typeof id !== 'string' || !/^0x[0-9a-fA-F]{1,16}$/.test(id)) throw new HeuristError('CHAIN_RPC_UNREACHABLE', `${rpcUrl} did not answer eth_chainId like an EVM node`)
  return Number(BigInt(id))
}

/** Most requests in one JSON-RPC batch (the devnet's server takes 100; public endpoints commonly 50 or more). */
export const MAX_RPC_BATCH = 50

/** A provider pinned to `chainId`, with the response cache off. */
export function makeProvider (rpcUrl: string, chainId: number): JsonRpcProvider {
  return new JsonRpcProvider(rpcUrl, Network.from(chainId), { staticNetwork: true, cacheTimeout: -1, batchMaxCount: MAX_RPC_BATCH, batchStallTime: 0 })
}
