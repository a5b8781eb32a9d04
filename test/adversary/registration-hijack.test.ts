import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { ZeroAddress, keccak256, toUtf8Bytes } from 'ethers'
import { signRegistration, signVoucher } from '../../src/chain/index.js'
import { addressFromPeerId, identityFromPrivateKey } from '../../src/core/identity.js'
import type { Voucher } from '../../src/core/typed-data.js'
import { startChainWorld, HEU, type ChainWorld } from './chain-fixture.js'

/**
 * Attack 2 (issue 15): the operator address of a miner is public (read off its PeerId). A
 * stranger registers it in NodeRegistry with itself as owner, so the victim's payouts go to
 * the stranger and the victim's own `register` fails. Every way in is tried: the plain call,
 * a consent the attacker signs itself, and the victim's real consent (seen on chain) replayed
 * for a different owner.
 */
let world: ChainWorld

beforeAll(async () => { world = await startChainWorld() })
afterAll(async () => { await world?.stop() })

describe('attack 2: registration hijack', () => {
  it('nobody registers an operator without its consent; the victim registers, and its payouts reach its own owner', async () => {
    const d = world.devnet.deployment
    const min = BigInt(d.params.minCollateral)
    const victim = await world.wallet(min)
    const victimOwner = await world.wallet(2n * min) // a cold wallet that funds the box
    const attacker = await world.wallet(2n * min)
    // what the attacker knows: the victim's PeerId, hence its operator address
    const peerId = identityFromPrivateKey(victim.privateKey).peerId
    const operator = addressFromPeerId(peerId)!
    expect(operator).toBe(victim.address)

    const att = await world.client(attacker)
    const attackerHeu = await world.heu(attacker.address)
    const registryHeu = await world.heu(d.contracts.NodeRegistry)

    // 1. the plain call registers the sender only: the attacker can register itself, never the victim
    //    (register(owner, collateral) has no operator argument). The attacker's consent path:
    const deadline = BigInt((await world.devnet.provider.getBlock('latest'))!.timestamp) + 3600n
    const forged = await signRegistration(attacker, d, { operator, owner: attacker.address, nonce: 0n, deadline })
    await expect(att.register(min, undefined, { operator, owner: attacker.address, nonce: 0n, deadline, signature: forged }))
      .rejects.toMatchObject({ code: 'CHAIN_BAD_CONSENT', message: 'register reverted: BadConsent' })
    // sent raw, past the client's checks: the contract refuses the same way
    await att.send('approve', att.contracts.token, 'approve', [d.contracts.NodeRegistry, min])
    await expect(att.send('register', att.contracts.nodes, 'registerWithConsent', [operator, min, deadline, forged]))
      .rejects.toMatchObject({ code: 'CHAIN_BAD_CONSENT', message: 'register reverted: BadConsent' })

    // 2. the victim consents for its own cold wallet; the attacker copies the signature first
    const vc = await world.client(victim)
    const consent = await vc.signRegistrationConsent(victimOwner.address, deadline)
    await expect(att.send('register', att.contracts.nodes, 'registerWithConsent', [operator, min, deadline, consent.signature]))
      .rejects.toMatchObject({ code: 'CHAIN_BAD_CONSENT' })
    await expect(att.register(min, undefined, consent)).rejects.toMatchObject({ code: 'CHAIN_BAD_CONSENT', message: `register: the consent names owner ${victimOwner.address}, not this key ${attacker.address}` })

    // nothing of the attacker's moved (only gas, which is ETH), and the victim is not registered
    expect(await world.heu(attacker.address)).toBe(attackerHeu)
    expect(await world.heu(d.contracts.NodeRegistry)).toBe(registryHeu)
    expect(await att.read(att.contracts.nodes, 'isActive', [operator])).toBe(false)

    // the owner registers the victim with its consent; payouts go to the owner
    const oc = await world.client(victimOwner)
    const ownerHeu = await world.heu(victimOwner.address)
    await oc.register(min, undefined, consent)
    expect(await world.heu(victimOwner.address)).toBe(ownerHeu - min)
    expect(await oc.read(oc.contracts.nodes, 'payoutOf', [operator])).toBe(victimOwner.address)
    expect(await oc.read(oc.contracts.nodes, 'isActive', [operator])).toBe(true)
    // a replay of the used consent (by anyone) is refused: it was good once
    await expect(oc.send('register', oc.contracts.nodes, 'registerWithConsent', [operator, min, deadline, consent.signature]))
      .rejects.toMatchObject({ code: 'CHAIN_BAD_CONSENT' })

    // a payment for the victim's work lands at its owner, and nothing at the attacker
    const payer = await world.wallet(10n * HEU)
    const pc = await world.client(payer)
    await pc.deposit(10n * HEU)
    const v: Voucher = { payer: payer.address, miner: operator, podId: keccak256(toUtf8Bytes('model')), podDeployer: ZeroAddress, podBps: 0, pool: 0, frontend: ZeroAddress, cumulativeAmount: 10n * HEU }
    const ownerBefore = await world.heu(victimOwner.address)
    await pc.redeemVoucher(v, await signVoucher(payer, d, v))
    expect(await world.heu(victimOwner.address)).toBe(ownerBefore + 10n * HEU - 10n * HEU * BigInt(d.params.protocolFeeBps) / 10_000n)
    expect(await world.heu(attacker.address)).toBe(attackerHeu)

    // the attacker can still register itself (its own consent as sender): that is no hijack
    await att.register(min)
    expect(await att.read(att.contracts.nodes, 'payoutOf', [attacker.address])).toBe(attacker.address)
  })
})
