import { Wallet } from 'ethers'
import { identityFromPrivateKey, type Identity } from '../../src/core/identity.js'
import { silentLogger } from '../../src/core/logger.js'
import { createHeuristNode, type HeuristNode, type HeuristNodeInit } from '../../src/p2p/index.js'

export function randomIdentity (): Identity {
  return identityFromPrivateKey(Wallet.createRandom().privateKey)
}

/** A node on 127.0.0.1 with devnet relaxations (many peers share one IP in tests). */
export async function testNode (init: Partial<HeuristNodeInit> = {}): Promise<HeuristNode> {
  return await createHeuristNode({ identity: randomIdentity(), logger: silentLogger(), listen: ['/ip4/127.0.0.1/tcp/0'], devnet: true, heartbeatMs: 200, ...init })
}

/** Polls `check` every `everyMs` until it is true or `timeoutMs` passes; returns whether it held. */
export async function until (check: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await check()) return true
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
  return await check()
}

export async function stopAll (nodes: HeuristNode[]): Promise<void> {
  await Promise.allSettled(nodes.map(async n => { await n.stop() }))
}
