import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'

/** Reads a line from the terminal without echoing it. */
export async function readPassword (question: string): Promise<string> {
  process.stderr.write(question)
  let muted = true
  const output = new Writable({ write (chunk, _enc, cb) { if (!muted) process.stderr.write(chunk); cb() } })
  const rl = createInterface({ input: process.stdin, output, terminal: true })
  try {
    return await new Promise<string>(resolve => rl.question('', answer => { resolve(answer) }))
  } finally {
    muted = false
    rl.close()
    process.stderr.write('\n')
  }
}
