/**
 * A small JSON-RPC 2.0 server (127.0.0.1 by default) in front of an in-process request handler (the
 * EDR provider), so other processes (`heurist stake`, miners, gateways) reach the devnet.
 * Bodies are bounded; batches are answered in order; POST is JSON-RPC, GET serves only the
 * read-only documents given (the devnet's shareable deployment).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export type JsonRpcHandler = (request: string) => Promise<string>

export interface RpcServerOptions {
  host: string
  /** 0 = any free port. */
  port: number
  /** Largest request body accepted. Default 8 MiB (a contract deploy is well under 100 KiB). */
  maxBodyBytes: number
  /** Most requests in one batch. */
  maxBatch: number
  /** Read-only documents served on GET (path → JSON text); may be filled after start. */
  documents?: Map<string, string>
}

export const defaultRpcServerOptions: RpcServerOptions = { host: '127.0.0.1', port: 0, maxBodyBytes: 8 * 1024 * 1024, maxBatch: 100 }

export interface RpcServer { url: string, port: number, close: () => Promise<void> }

function rpcError (id: unknown, code: number, message: string): Record<string, unknown> {
  return { jsonrpc: '2.0', id: id ?? null, error: { code, message } }
}

export async function startRpcServer (handle: JsonRpcHandler, init: Partial<RpcServerOptions> = {}): Promise<RpcServer> {
  const o = { ...defaultRpcServerOptions, ...init }
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'access-control-allow-origin': '*' })
      res.end(body)
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-origin': '*', 'access-control-allow-headers': 'content-type', 'access-control-allow-methods': 'POST' })
      res.end()
      return
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      const doc = o.documents?.get((req.url ?? '').split('?')[0] ?? '')
      if (doc === undefined) { reply(404, JSON.stringify({ error: 'not found' })); return }
      reply(200, doc)
      return
    }
    if (req.method !== 'POST') { reply(405, JSON.stringify(rpcError(null, -32600, 'POST a JSON-RPC request'))); return }
    const chunks: Buffer[] = []
    let size = 0
    let tooLarge = false
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > o.maxBodyBytes) {
        if (!tooLarge) { tooLarge = true; res.setHeader('connection', 'close'); reply(413, JSON.stringify(rpcError(null, -32600, 'body too large'))) }
        return
      }
      chunks.push(c)
    })
    req.on('end', () => {
      if (tooLarge) return
      void (async () => {
        let body: unknown
        try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')) } catch { reply(200, JSON.stringify(rpcError(null, -32700, 'parse error'))); return }
        const one = async (r: unknown): Promise<unknown> => {
          if (r === null || typeof r !== 'object' || Array.isArray(r)) return rpcError(null, -32600, 'invalid request')
          const id = (r as { id?: unknown }).id
          try {
            const out = JSON.parse(await handle(JSON.stringify(r))) as Record<string, unknown>
            return { ...out, jsonrpc: '2.0', id: id ?? null }
          } catch (e) {
            return rpcError(id, -32603, (e as Error).message)
          }
        }
        if (Array.isArray(body)) {
          if (body.length > o.maxBatch) { reply(200, JSON.stringify(rpcError(null, -32600, `batch over ${o.maxBatch}`))); return }
          const out: unknown[] = []
          for (const r of body) out.push(await one(r))
          reply(200, JSON.stringify(out))
        } else {
          reply(200, JSON.stringify(await one(body)))
        }
      })()
    })
  })
  server.keepAliveTimeout = 5_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, o.host, () => { server.off('error', reject); resolve() })
  })
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://${localHost(o.host)}:${port}`,
    port,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

/** The address a process on this host dials to reach a server listening on `host` (a wildcard listen is reached on loopback). */
export function localHost (host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1'
  if (host === '::' || host === '[::]') return '[::1]'
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}
