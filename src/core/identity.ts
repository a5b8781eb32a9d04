import { Wallet, computeAddress, getAddress, encryptKeystoreJson, decryptKeystoreJson, isKeystoreJson, hexlify, getBytes } from 'ethers'
import { privateKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey, PeerId } from '@libp2p/interface'
import { readFile, writeFile, rename } from 'node:fs/promises'
import { HeuristError } from './errors.js'

/**
 * A node's identity is one secp256k1 key: its EVM address is the on-chain identity and its
 * libp2p PeerId is derived from the same key, so a peer's address is read off its PeerId.
 */
export interface Identity {
  wallet: Wallet
  address: string
  peerId: PeerId
  libp2pKey: PrivateKey
}

export function identityFromPrivateKey (privateKeyHex: string): Identity {
  const wallet = new Wallet(privateKeyHex)
  const libp2pKey = privateKeyFromRaw(getBytes(wallet.privateKey))
  return { wallet, address: wallet.address, peerId: peerIdFromPrivateKey(libp2pKey), libp2pKey }
}

/** The EVM address behind a secp256k1 PeerId; null for other key types. */
export function addressFromPeerId (peerId: PeerId | string): string | null {
  let id: PeerId
  try {
    id = typeof peerId === 'string' ? peerIdFromString(peerId) : peerId
  } catch {
    return null
  }
  if (id.type !== 'secp256k1' || id.publicKey === undefined) return null
  return computeAddress(hexlify(id.publicKey.raw))
}

export interface KeystoreOptions {
  /** log2 of scrypt's N. Default 17 (ethers' default, about a second). Tests use less. */
  scryptLogN: number
}

export const defaultKeystoreOptions: KeystoreOptions = { scryptLogN: 17 }

export async function encryptKey (wallet: Wallet, password: string, options: KeystoreOptions = defaultKeystoreOptions): Promise<string> {
  return await encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey }, password, { scrypt: { N: 2 ** options.scryptLogN } })
}

/** Writes the keystore atomically (temp file + rename) with owner-only permissions. */
export async function writeKeystore (path: string, json: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, json, { mode: 0o600 })
  await rename(tmp, path)
}

export async function readKeystore (path: string, password: string): Promise<Identity> {
  let json: string
  try {
    json = await readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new HeuristError('KEY_NOT_FOUND', `no operator key at ${path}: run \`heurist init\` first`, { usage: true })
    }
    throw new HeuristError('KEY_UNREADABLE', `cannot read the keystore ${path}: ${(e as Error).message}`)
  }
  if (!isKeystoreJson(json)) throw new HeuristError('KEY_CORRUPT', `${path} is not an encrypted JSON keystore`)
  try {
    const account = await decryptKeystoreJson(json, password)
    return identityFromPrivateKey(account.privateKey)
  } catch (e) {
    if ((e as { code?: string }).code === 'INVALID_ARGUMENT' && /password/i.test((e as Error).message)) {
      throw new HeuristError('KEY_WRONG_PASSWORD', 'wrong password for the operator keystore')
    }
    throw new HeuristError('KEY_CORRUPT', `cannot decrypt ${path}: ${(e as Error).message}`)
  }
}

/**
 * The address recorded in a keystore file, read without the password (the keystore stores it in
 * clear); undefined when there is no readable keystore. Used to fund or name the operator.
 */
export async function keystoreAddress (path: string): Promise<string | undefined> {
  try {
    const ks = JSON.parse(await readFile(path, 'utf8')) as { address?: unknown }
    if (typeof ks.address === 'string' && /^(0x)?[0-9a-fA-F]{40}$/.test(ks.address)) return getAddress(ks.address.startsWith('0x') ? ks.address : `0x${ks.address}`)
  } catch {}
  return undefined
}
