import { main } from './program.js'

const code = await main(process.argv)
process.exitCode = code
// Long-running commands return only after their graceful shutdown; anything left open
// (a lingering socket) must not keep a finished command alive.
setTimeout(() => process.exit(code), 1000).unref()
