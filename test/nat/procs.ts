import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const PEER = fileURLToPath(new URL('./peer.mjs', import.meta.url))
export const BIN = fileURLToPath(new URL('../../bin/heurist', import.meta.url))

/** A process inside a namespace whose stdout (peer.mjs) or stderr (heurist logs) is JSON lines. */
export class NsProc {
  readonly lines: Array<Record<string, unknown>> = []
  readonly raw: string[] = []
  private readonly waiters = new Set<() => void>()
  private nextId = 1
  exited: number | null = null

  constructor (readonly name: string, readonly child: ChildProcess) {
    const take = (stream: NodeJS.ReadableStream | null): void => {
      if (stream === null) return
      createInterface({ input: stream }).on('line', line => {
        this.raw.push(line)
        if (this.raw.length > 2000) this.raw.shift()
        try { this.lines.push(JSON.parse(line) as Record<string, unknown>) } catch { /* not JSON */ }
        for (const w of [...this.waiters]) w()
      })
    }
    take(child.stdout)
    take(child.stderr)
    child.on('exit', code => { this.exited = code ?? -1; for (const w of [...this.waiters]) w() })
  }

  /** Waits for a JSON line matching `pred`, bounded by `timeoutMs`. */
  async waitLine (pred: (l: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    const found = (): Record<string, unknown> | undefined => this.lines.find(pred)
    const now = found()
    if (now !== undefined) return now
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiters.delete(check); reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; last output:\n${this.raw.slice(-15).join('\n')}`)) }, timeoutMs)
      const check = (): void => {
        const l = found()
        if (l !== undefined) { clearTimeout(timer); this.waiters.delete(check); resolve(l); return }
        if (this.exited !== null) { clearTimeout(timer); this.waiters.delete(check); reject(new Error(`${this.name} exited (${this.exited}) before ${what}; last output:\n${this.raw.slice(-15).join('\n')}`)) }
      }
      this.waiters.add(check)
    })
  }

  /** Sends a command to peer.mjs and waits for its answer. */
  async request (cmd: Record<string, unknown>, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const id = this.nextId++
    this.child.stdin?.write(JSON.stringify({ ...cmd, id }) + '\n')
    return await this.waitLine(l => l.id === id, timeoutMs, `answer to ${String(cmd.cmd)}`)
  }

  async stop (): Promise<void> {
    if (this.exited !== null) return
    this.child.stdin?.end()
    this.child.kill('SIGTERM')
    const done = new Promise<void>(resolve => { this.child.once('exit', () => { resolve() }) })
    const t = setTimeout(() => { this.child.kill('SIGKILL') }, 5000)
    await done
    clearTimeout(t)
  }
}

/** Starts `cmd args` inside namespace `ns` (a heurist process or peer.mjs). */
export function spawnIn (ns: string, name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): NsProc {
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  return new NsProc(name, child)
}

export async function peerIn (ns: string, role: 'relay' | 'client', options: Record<string, unknown>, name: string = role): Promise<{ proc: NsProc, peerId: string }> {
  const proc = spawnIn(ns, name, process.execPath, [PEER, role, JSON.stringify(options)])
  const ready = await proc.waitLine(l => l.ready === true, 30_000, 'ready line')
  return { proc, peerId: String(ready.peerId) }
}

/** Polls `check` until it returns a value, bounded. */
export async function poll<T> (check: () => Promise<T | undefined>, timeoutMs: number, everyMs = 250): Promise<T | undefined> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined || Date.now() > end) return v
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
}
