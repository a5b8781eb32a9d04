import { availableParallelism, totalmem, freemem } from 'node:os'
import { getLlama, LlamaLogLevel, NoBinaryFoundError, type Llama } from 'node-llama-cpp'
import type { Logger } from '../core/logger.js'
import { HeuristError } from '../core/errors.js'

/** The compute backend, as config `inference.gpu` names it. */
export type GpuSetting = 'auto' | 'cpu' | 'cuda' | 'vulkan' | 'metal'

export interface LlamaRuntimeOptions {
  /** Backend. Default `auto`: the best one whose prebuilt binary is present and works. */
  gpu: GpuSetting
  /**
   * CPU threads. Default 0 = the cores actually available (`os.availableParallelism()`).
   * node-llama-cpp's own default is max(cores, 4), which on a 2-core machine oversubscribes
   * the CPU and made generation about 100x slower here.
   */
  threads: number
  logger?: Logger
}

export const defaultLlamaRuntimeOptions: LlamaRuntimeOptions = { gpu: 'auto', threads: 0 }

export function resolveThreads (threads: number): number {
  return threads > 0 ? threads : Math.max(1, availableParallelism())
}

const runtimes = new Map<string, Promise<Llama>>()

/**
 * The process-wide llama.cpp binding for a backend and thread count. Prebuilt binaries only
 * (`build: 'never'`, `skipDownload`): node-llama-cpp would otherwise silently download and
 * compile llama.cpp for minutes when no prebuilt binary fits. A missing binary becomes
 * `INFERENCE_NO_BINARY`.
 */
export async function getLlamaRuntime (options: Partial<LlamaRuntimeOptions> = {}): Promise<Llama> {
  const gpu = options.gpu ?? defaultLlamaRuntimeOptions.gpu
  const threads = resolveThreads(options.threads ?? 0)
  const key = `${gpu}/${threads}`
  let p = runtimes.get(key)
  if (p === undefined) {
    const logger = options.logger
    p = getLlama({
      gpu: gpu === 'cpu' ? false : gpu,
      build: 'never',
      usePrebuiltBinaries: true,
      skipDownload: true,
      progressLogs: false,
      maxThreads: threads,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim()
        if (logger === undefined || text === '') return
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) logger.error({ llama: true }, text)
        else logger.debug({ llama: true, level }, text)
      }
    }).then(llama => {
      // an explicit backend must be what runs (node-llama-cpp quietly falls back to the CPU for some)
      const got = llama.gpu === false ? 'cpu' : llama.gpu
      if (gpu !== 'auto' && got !== gpu) {
        void llama.dispose()
        throw new NoBinaryFoundError(`gpu=${gpu} was asked for, llama.cpp would run on ${got}`)
      }
      return llama
    }).catch((e: unknown) => {
      runtimes.delete(key)
      if (e instanceof NoBinaryFoundError) {
        throw new HeuristError('INFERENCE_NO_BINARY', `no prebuilt llama.cpp binary works on this machine for gpu=${gpu} (${process.platform}-${process.arch}); heurist never builds llama.cpp at run time: try inference.gpu = "cpu" or reinstall node-llama-cpp`, { cause: e })
      }
      throw new HeuristError('INFERENCE_RUNTIME', `cannot start llama.cpp (gpu=${gpu}): ${(e as Error).message}`, { cause: e })
    })
    runtimes.set(key, p)
  }
  return await p
}

export interface HardwareInfo {
  /** `cpu` when no GPU backend is in use. */
  gpu: string
  gpuNames: string[]
  vramTotalBytes: number
  vramFreeBytes: number
  ramTotalBytes: number
  ramFreeBytes: number
  cpuCores: number
  /** Threads inference will use. */
  threads: number
}

/** What this machine offers for inference, as node-llama-cpp sees it (GPU, VRAM, RAM, cores). */
export async function probeHardware (options: Partial<LlamaRuntimeOptions> = {}): Promise<HardwareInfo> {
  const llama = await getLlamaRuntime(options)
  const gpuNames = llama.gpu === false ? [] : await llama.getGpuDeviceNames()
  const vram = llama.gpu === false ? { total: 0, free: 0 } : await llama.getVramState()
  return {
    gpu: llama.gpu === false ? 'cpu' : llama.gpu,
    gpuNames,
    vramTotalBytes: vram.total,
    vramFreeBytes: vram.free,
    ramTotalBytes: totalmem(),
    ramFreeBytes: freemem(),
    cpuCores: availableParallelism(),
    threads: resolveThreads(options.threads ?? 0)
  }
}
