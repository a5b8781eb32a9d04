import { describe, it, expect } from 'vitest'
import { Wallet } from 'ethers'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { identityFromPrivateKey, addressFromPeerId, encryptKey, writeKeystore, readKeystore } from '../../src/core/identity.js'
import { isHeuristError } from '../../src/core/errors.js'
import { tempDir } from '../helpers.js'

describe('one secp256k1 key gives both identities', () => {
  it('the EVM address read off the PeerId is the wallet address', () => {
    for (let i = 0; i < 5; i++) {
      const w = Wallet.createRandom()
      const id = identityFromPrivateKey(w.privateKey)
      expect(id.peerId.type).toBe('secp256k1')
      expect(addressFromPeerId(id.peerId)).toBe(w.address)
      expect(addressFromPeerId(id.peerId.toString())).toBe(w.address)
    }
  })

  it('a known key maps to its known address (ethers test vector)', () => {
    // private key 1 → the well-known address of the secp256k1 generator point
    const id = identityFromPrivateKey('0x' + '00'.repeat(31) + '01')
    expect(id.address).toBe('0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf')
    expect(addressFromPeerId(id.peerId)).toBe('0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf')
  })

  it('returns null for a string that is no PeerId', () => {
    expect(addressFromPeerId('not-a-peer-id')).toBeNull()
  })
})

describe('encrypted keystore', () => {
  it('round-trips and holds no plaintext key', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      const w = Wallet.createRandom()
      const path = join(dir, 'keystore.json')
      await writeKeystore(path, await encryptKey(new Wallet(w.privateKey), 'pw', { scryptLogN: 10 }))
      const text = await readFile(path, 'utf8')
      expect(text).not.toContain(w.privateKey.slice(2))
      const id = await readKeystore(path, 'pw')
      expect(id.address).toBe(w.address)
    } finally { await cleanup() }
  })

  it('a wrong password is a KEY_WRONG_PASSWORD runtime error', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      const path = join(dir, 'keystore.json')
      await writeKeystore(path, await encryptKey(Wallet.createRandom() as unknown as Wallet, 'right', { scryptLogN: 10 }))
      const err = await readKeystore(path, 'wrong').catch((e: unknown) => e)
      expect(isHeuristError(err, 'KEY_WRONG_PASSWORD')).toBe(true)
      expect((err as { usage: boolean }).usage).toBe(false)
    } finally { await cleanup() }
  })

  it('a missing keystore says to run init', async () => {
    const err = await readKeystore('/nonexistent/keystore.json', 'x').catch((e: unknown) => e)
    expect(isHeuristError(err, 'KEY_NOT_FOUND')).toBe(true)
    expect((err as Error).message).toContain('heurist init')
  })
})
