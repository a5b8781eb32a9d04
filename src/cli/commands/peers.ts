import type { Command } from 'commander'
import { loadContext } from '../context.js'
import { collectList, parseIntFlag } from '../flags.js'
import { joinMesh } from '../mesh.js'

interface PeersOptions { bootstrap?: string[], waitMs: string, min?: string }

export function registerPeers (program: Command): void {
  program.command('peers')
    .description('join the mesh briefly and list the miners whose capacity adverts it hears')
    .option('--bootstrap <multiaddr>', 'peer to join through, with /p2p/<peerId> (repeatable; default p2p.bootstrap)', collectList)
    .option('--wait-ms <ms>', 'how long to listen for adverts', '7000')
    .option('--min <n>', 'stop listening early once this many miners are heard')
    .action(async (opts: PeersOptions, cmd: Command) => {
      const ctx = await loadContext(cmd, { 'p2p.bootstrap': opts.bootstrap })
      const waitMs = parseIntFlag('--wait-ms', opts.waitMs, 0, 600_000)
      const min = opts.min === undefined ? Infinity : parseIntFlag('--min', opts.min, 1, 10_000)
      // a listener only: a throwaway key, and no port to open
      const node = await joinMesh(ctx, { ephemeral: true, listen: [], needs: { capacity: true } })
      try {
        const end = Date.now() + waitMs
        while (Date.now() < end && node.peerTable.miners().length < min) await new Promise(resolve => setTimeout(resolve, 100))
        const miners = node.peerTable.miners().map(m => ({
          address: m.address,
          peerId: m.peerId,
          models: m.advert.models,
          queueDepth: m.advert.queueDepth,
          maxJobs: m.advert.maxJobs,
          tokensPerSecond: m.advert.tokensPerSecond,
          imagesPerSecond: m.advert.imagesPerSecond,
          price: m.advert.price,
          paid: m.advert.paid,
          version: m.advert.version,
          hardware: m.advert.hardware,
          addrs: m.advert.addrs,
          lastSeen: new Date(m.lastSeen).toISOString()
        }))
        ctx.print({ miners }, r => {
          const list = r.miners as typeof miners
          if (list.length === 0) return 'no miners heard'
          return list.map(m => `${m.address}  ${m.peerId}\n  models: ${m.models.map(x => `${x.name} (${x.kind}, ${x.id.slice(0, 12)})`).join(', ')}\n  queue ${m.queueDepth}/${m.maxJobs} · ${m.tokensPerSecond.toFixed(1)} tok/s · price ${m.price} wei per compute unit${m.paid ? '' : ' (unpaid)'} · last seen ${m.lastSeen}`).join('\n')
        })
      } finally {
        await node.stop()
      }
    })
}
