import { HeuristError, isHeuristError } from '../core/errors.js'
import type { JobExecutor } from '../p2p/index.js'

/** Errors that say the engine itself is gone, not that a request was bad. */
const ENGINE_GONE = new Set(['INFERENCE_DISPOSED', 'INFERENCE_UNLOADED', 'INFERENCE_INTERNAL', 'IMAGE_ENGINE_DISPOSED', 'IMAGE_MODEL_DISPOSED'])

/**
 * Whether a job's error means the engine crashed: one of the engines' "gone" codes, or an
 * error that is not ours at all (thrown by the native layer). Our other typed errors (bad
 * input, busy, unknown model) and aborts are the request's, never a reason to restart.
 */
export function engineCrashed (err: unknown): boolean {
  if (isHeuristError(err)) return ENGINE_GONE.has(err.code)
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return false
  return true
}

/** Anything that holds a job executor (the miner's loaded models). */
export interface EnginePart { executor: JobExecutor }

/** The side of a PartSupervisor the executor needs. */
export interface SupervisedEngine { current: () => EnginePart | null, failed: (err: Error) => void }

/**
 * A job executor over a supervised engine: jobs go to the current instance; a job that fails
 * because the engine crashed reports it, and the supervisor reloads the models with backoff.
 * While it reloads the miner advertises no model and answers jobs with INFERENCE_RESTARTING, so
 * gateways route to other miners.
 */
export function healingExecutor (engine: SupervisedEngine): JobExecutor {
  return {
    models: () => engine.current()?.executor.models() ?? [],
    async execute (job, o) {
      const part = engine.current()
      if (part === null) throw new HeuristError('INFERENCE_RESTARTING', 'the inference engine is restarting')
      try {
        return await part.executor.execute(job, o)
      } catch (e) {
        if (o.signal?.aborted !== true && engineCrashed(e)) engine.failed(e instanceof Error ? e : new Error(String(e)))
        throw e
      }
    }
  }
}
