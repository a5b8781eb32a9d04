import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { DEAD_ADDRESS } from '../../src/chain/index.js'
import { startChainWorld, HEU, type ChainWorld } from './chain-fixture.js'

/**
 * Attack 9a (issue 15): ERC4626 first-depositor donation. The attacker is the first staker
 * with 1 wei, then sends HEU straight to the vault so one share is worth a lot; the next
 * staker's deposit rounds down to few shares and the attacker's share takes the difference.
 * The deploy stakes 1 HEU of dead shares (held by 0x…dEaD), so the vault is never empty and
 * the donation lands mostly on shares nobody can redeem.
 */
let world: ChainWorld

beforeAll(async () => { world = await startChainWorld() })
afterAll(async () => { await world?.stop() })

describe('attack 9a: stHEU donation griefing', () => {
  it('a 1-wei stake plus a donation does not take from the next staker; the attacker loses the donation', async () => {
    const d = world.devnet.deployment
    const vault = d.contracts.StakedHeurist
    const seed = BigInt(d.params.vaultSeedStake)
    expect(seed).toBe(HEU)
    const attacker = await world.wallet(10n * HEU)
    const victim = await world.wallet(100n * HEU)
    const ac = await world.client(attacker)
    const vc = await world.client(victim)
    // the vault as the deploy left it: only the dead shares, worth exactly the seed
    expect(await ac.read<bigint>(ac.contracts.stheu, 'totalSupply')).toBe(seed)
    expect(await ac.read<bigint>(ac.contracts.stheu, 'balanceOf', [DEAD_ADDRESS])).toBe(seed)
    expect(await world.heu(vault)).toBe(seed)

    // the attack: stake 1 wei, then donate seed + 2 wei (the amount that makes one share worth
    // exactly 2 wei: (assets + 1) / (shares + 1) = (2·seed + 4) / (seed + 2))
    const attackerBefore = await world.heu(attacker.address)
    await ac.stake(1n)
    expect(await ac.read<bigint>(ac.contracts.stheu, 'balanceOf', [attacker.address])).toBe(1n)
    const donation = seed + 2n
    await ac.send('donate', ac.contracts.token, 'transfer', [vault, donation])

    // the victim stakes 100 HEU: it gets 50 HEU of shares at 2 wei each, worth exactly 100 HEU
    const deposit = 100n * HEU
    await vc.stake(deposit)
    const shares = await vc.read<bigint>(vc.contracts.stheu, 'balanceOf', [victim.address])
    expect(shares).toBe(deposit / 2n)
    expect((await vc.balances(victim.address)).stheuValue).toBe(deposit)

    // the attacker: its one share is worth 2 wei; it paid 1 wei + the donation
    expect((await ac.balances(attacker.address)).stheuValue).toBe(2n)
    expect(await world.heu(attacker.address)).toBe(attackerBefore - 1n - donation)
  })
})
