import type { Command } from 'commander'
import { cpus, totalmem, freemem, availableParallelism } from 'node:os'
import { statfs, mkdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { loadContext, type CommandContext } from '../context.js'
import { CUDA_INSTALL_HINT, probeCudaProvider, probeHardware } from '../../inference/index.js'
import { checkDeployment, edrAvailable } from '../../chain/index.js'
import { findDeployment, rpcFor, withChainFlags, type ChainFlags } from '../chain.js'
import { collectList } from '../flags.js'
import { reachabilityCheck } from '../reachability.js'

export type CheckStatus = 'ok' | 'warn' | 'fail'
export interface CheckResult { name: string, status: CheckStatus, detail: string, data?: Record<string, unknown> }
export type Check = (ctx: CommandContext) => Promise<CheckResult>

const GiB = 1024 ** 3

const nodeVersion: Check = async () => {
  const major = Number(process.versions.node.split('.')[0])
  return { name: 'node', status: major >= 20 ? 'ok' : 'fail', detail: `Node ${process.versions.node}${major >= 20 ? '' : ' (20 or newer is needed)'}`, data: { version: process.versions.node } }
}

const cpu: Check = async () => {
  const cores = availableParallelism()
  return { name: 'cpu', status: cores >= 2 ? 'ok' : 'warn', detail: `${cores} cores available (${cpus()[0]?.model ?? 'unknown'})`, data: { cores } }
}

const memory: Check = async () => {
  const total = totalmem()
  const free = freemem()
  return { name: 'ram', status: total >= 4 * GiB ? 'ok' : 'warn', detail: `${(free / GiB).toFixed(1)} GiB free of ${(total / GiB).toFixed(1)} GiB`, data: { totalBytes: total, freeBytes: free } }
}

const disk: Check = async (ctx) => {
  await mkdir(ctx.paths.root, { recursive: true })
  const s = await statfs(ctx.paths.root)
  const free = s.bavail * s.bsize
  const status: CheckStatus = free >= 10 * GiB ? 'ok' : free >= GiB ? 'warn' : 'fail'
  return { name: 'disk', status, detail: `${(free / GiB).toFixed(1)} GiB free in ${ctx.paths.root}`, data: { freeBytes: free } }
}

async function portFree (host: string, port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const srv = createServer()
    srv.once('error', () => { resolve(false) })
    srv.listen(port, host, () => { srv.close(() => { resolve(true) }) })
  })
}

/** The TCP ports this node's config asks for: p2p listen ports and the gateway. */
const ports: Check = async (ctx) => {
  const wanted: Array<{ what: string, host: string, port: number }> = []
  for (const ma of ctx.config.p2p.listen) {
    const m = /^\/ip[46]\/([^/]+)\/tcp\/(\d+)/.exec(ma)
    if (m !== null && Number(m[2]) !== 0) wanted.push({ what: 'p2p', host: m[1]!, port: Number(m[2]) })
  }
  wanted.push({ what: 'gateway', host: ctx.config.gateway.host, port: ctx.config.gateway.port })
  const busy: string[] = []
  for (const w of wanted) if (!await portFree(w.host, w.port)) busy.push(`${w.what} ${w.host}:${w.port}`)
  return {
    name: 'ports',
    status: busy.length === 0 ? 'ok' : 'warn',
    detail: busy.length === 0 ? `free: ${wanted.map(w => `${w.what} ${w.port}`).join(', ')}` : `in use: ${busy.join(', ')}`,
    data: { checked: wanted, busy }
  }
}

/** The inference backend node-llama-cpp finds (prebuilt binaries only): GPU type and names, VRAM, threads. */
const gpu: Check = async (ctx) => {
  try {
    const hw = await probeHardware({ gpu: ctx.config.inference.gpu, threads: ctx.config.inference.threads })
    const onGpu = hw.gpu !== 'cpu'
    const detail = onGpu
      ? `${hw.gpu}: ${hw.gpuNames.join(', ') || 'unnamed device'}, ${(hw.vramFreeBytes / GiB).toFixed(1)} GiB VRAM free of ${(hw.vramTotalBytes / GiB).toFixed(1)} GiB; ${hw.threads} CPU threads`
      : `no GPU backend (inference.gpu = ${ctx.config.inference.gpu}): CPU inference on ${hw.threads} threads, ${(hw.ramFreeBytes / GiB).toFixed(1)} GiB RAM free`
    return { name: 'gpu', status: onGpu ? 'ok' : 'warn', detail, data: { ...hw } }
  } catch (e) {
    return { name: 'gpu', status: 'fail', detail: (e as Error).message }
  }
}

/**
 * onnxruntime's CUDA execution provider (image jobs on NVIDIA GPUs): whether its libraries are
 * installed (an opt-in download at install time, see scripts/preinstall.cjs), whether it loads,
 * and how to install it.
 */
const onnxCuda: Check = async (ctx) => {
  const p = await probeCudaProvider()
  const cpuOnly = ctx.config.inference.gpu === 'cpu'
  if (p.loads) return { name: 'onnx-cuda', status: 'ok', detail: 'onnxruntime CUDA provider loads: image models run on the GPU', data: { ...p } }
  if (!p.installed) {
    return {
      name: 'onnx-cuda',
      status: cpuOnly ? 'ok' : 'warn',
      detail: `onnxruntime CUDA provider not installed: image models run on the CPU; to use an NVIDIA GPU, ${CUDA_INSTALL_HINT}, e.g. ONNXRUNTIME_NODE_INSTALL=cuda12 npm install -g heurist`,
      data: { ...p, install: 'ONNXRUNTIME_NODE_INSTALL=cuda12' }
    }
  }
  return { name: 'onnx-cuda', status: 'warn', detail: `onnxruntime CUDA provider is installed but does not load (${p.error ?? 'unknown error'}): image models run on the CPU; it needs an NVIDIA driver, CUDA 12 and cuDNN 9 on the library path`, data: { ...p, install: 'ONNXRUNTIME_NODE_INSTALL=cuda12' } }
}

/** The embedded devnet needs EDR's native binary for this platform (an optional dependency). */
const chain: Check = async () => {
  const r = await edrAvailable()
  return { name: 'chain', status: r.ok ? 'ok' : 'warn', detail: r.ok ? r.detail : `no embedded chain (${r.detail}); use --rpc with any EVM node` }
}

/**
 * The chain this node is configured for (flags, config, the home's deployment.json or
 * devnet.json): its RPC answers with the deployment's chain id and genesis, and every
 * contract has code.
 */
const chainRpc: Check = async (ctx) => {
  const name = 'chain-rpc'
  const d = await findDeployment(ctx)
  if (d === null) return { name, status: 'warn', detail: 'no chain configured (no --deployment, chain.deployment, deployment.json or devnet.json): nodes would run unpaid; see docs/multi-host.md' }
  const rpc = rpcFor(ctx) ?? d.rpcUrl
  if (rpc === undefined || rpc === '') return { name, status: 'fail', detail: 'the deployment has no RPC URL: set chain.rpc or pass --rpc' }
  try {
    const c = await checkDeployment(rpc, d)
    return { name, status: 'ok', detail: `chain ${c.chainId} at ${rpc}: ${c.contracts} contracts found, block ${c.blockNumber}`, data: { rpc, ...c } }
  } catch (e) {
    return { name, status: 'fail', detail: (e as Error).message, data: { rpc } }
  }
}

/** Checks run in this order. */
export const checks: Check[] = [nodeVersion, cpu, memory, disk, ports, gpu, onnxCuda, chain, chainRpc, reachabilityCheck]

export function registerDoctor (program: Command): void {
  withChainFlags(program.command('doctor')
    .description('check this machine: Node, CPU, RAM, disk, ports, GPU, the configured chain (RPC, chain id, contracts) and reachability through the bootstrap peers')
    .option('--bootstrap <multiaddr>', 'peer to check reachability through, with /p2p/<peerId> (repeatable; default p2p.bootstrap)', collectList))
    .action(async (opts: ChainFlags & { bootstrap?: string[] }, cmd: Command) => {
      const ctx = await loadContext(cmd, { 'p2p.bootstrap': opts.bootstrap, 'chain.rpc': opts.rpc, 'chain.deployment': opts.deployment })
      const results: CheckResult[] = []
      for (const check of checks) {
        try {
          results.push(await check(ctx))
        } catch (e) {
          results.push({ name: check.name, status: 'fail', detail: (e as Error).message })
        }
      }
      const ok = !results.some(r => r.status === 'fail')
      ctx.print({ ok, checks: results }, r => (r.checks as CheckResult[]).map(c => `${c.status.padEnd(4)}  ${c.name.padEnd(9)} ${c.detail}`).join('\n'))
      if (!ok) process.exitCode = 1
    })
}
