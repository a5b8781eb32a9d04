import type { Server, IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/**
 * Bounds on the gateway's TCP connections: at most `perIp` from one address and `total` in
 * all. A connection over a bound first evicts the oldest connection of that address (or any,
 * for the total) that is not serving a request — an idle keep-alive or a client still dribbling
 * its headers — and is refused only when every one is busy. So a slow client holds at most
 * `perIp` sockets, cannot exhaust file descriptors, and cannot lock out `/health` or honest
 * requests arriving behind it (Node's headersTimeout ends the dribblers meanwhile).
 */
export interface ConnectionLimits {
  /** Connections one IP may hold. Default 256. */
  perIp: number
  /** Connections in all. Default 4096 (well under a typical 65k fd limit). */
  total: number
}

export const defaultConnectionLimits: ConnectionLimits = { perIp: 256, total: 4096 }

interface Conn { socket: Socket, ip: string, busy: number, openedAt: number }

export class ConnectionGuard {
  private readonly byIp = new Map<string, Set<Conn>>()
  private readonly all = new Map<Socket, Conn>()
  readonly stats = { evicted: 0, refused: 0 }

  constructor (private readonly limits: ConnectionLimits) {}

  get open (): number { return this.all.size }

  attach (server: Server): void {
    server.on('connection', (socket: Socket) => { this.onConnection(socket) })
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const c = this.all.get(req.socket)
      if (c === undefined) return
      c.busy++
      let done = false
      const end = (): void => { if (!done) { done = true; c.busy--; c.openedAt = Date.now() } }
      res.once('finish', end)
      res.once('close', end)
    })
  }

  private onConnection (socket: Socket): void {
    const ip = socket.remoteAddress ?? 'unknown'
    const mine = this.byIp.get(ip)
    if (mine !== undefined && mine.size >= this.limits.perIp && !this.evict(mine.values())) { this.refuse(socket); return }
    if (this.all.size >= this.limits.total && !this.evict(this.all.values())) { this.refuse(socket); return }
    const c: Conn = { socket, ip, busy: 0, openedAt: Date.now() }
    this.all.set(socket, c)
    let set = this.byIp.get(ip)
    if (set === undefined) { set = new Set(); this.byIp.set(ip, set) }
    set.add(c)
    socket.once('close', () => {
      this.all.delete(socket)
      const s = this.byIp.get(ip)
      s?.delete(c)
      if (s?.size === 0) this.byIp.delete(ip)
    })
  }

  /** Closes the longest-idle connection among `conns` that serves no request; false when all are busy. */
  private evict (conns: Iterable<Conn>): boolean {
    let victim: Conn | null = null
    for (const c of conns) if (c.busy === 0 && (victim === null || c.openedAt < victim.openedAt)) victim = c
    if (victim === null) return false
    this.stats.evicted++
    victim.socket.destroy()
    // forget it now: its 'close' event comes later, and the new connection needs the room
    this.all.delete(victim.socket)
    const s = this.byIp.get(victim.ip)
    s?.delete(victim)
    if (s?.size === 0) this.byIp.delete(victim.ip)
    return true
  }

  private refuse (socket: Socket): void {
    this.stats.refused++
    socket.destroy()
  }
}
