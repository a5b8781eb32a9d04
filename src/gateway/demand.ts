import { z } from 'zod'
import { decodeMessage } from '../p2p/index.js'

/**
 * Demand adverts on `heurist/1/demand`: each gateway publishes how many jobs it has waiting
 * or running per model, every few seconds. Miners with spare capacity load a model in
 * demand and unload one nobody asked for in a while (scale to zero).
 */
export const MAX_DEMAND_BYTES = 8 * 1024

export const demandSchema = z.object({
  v: z.literal(1),
  type: z.literal('demand'),
  /** The gateway's operator address (the gossip message is signed by the same key). */
  gateway: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
  ts: z.number().int().min(0),
  models: z.array(z.object({ id: z.string().regex(/^[0-9a-f]{64}$/), pending: z.number().int().min(0).max(1_000_000) }).strict()).max(64)
}).strict()
export type DemandMessage = z.infer<typeof demandSchema>

export function buildDemand (gateway: string, pending: Record<string, number>, now = Date.now()): DemandMessage {
  const models = Object.entries(pending).filter(([id, n]) => /^[0-9a-f]{64}$/.test(id) && n > 0).slice(0, 64).map(([id, n]) => ({ id, pending: Math.min(n, 1_000_000) }))
  return { v: 1, type: 'demand', gateway, ts: now, models }
}

/** Total decoder: any bytes give a DemandMessage or a P2P_* HeuristError. */
export function decodeDemand (bytes: Uint8Array): DemandMessage {
  return decodeMessage(bytes, demandSchema, MAX_DEMAND_BYTES, 'demand message')
}
