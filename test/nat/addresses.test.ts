import { describe, it, expect } from 'vitest'
import { advertOrder, hasPublicListenAddr, isPrivateIp } from '../../src/p2p/index.js'

describe('which addresses are public, which node relays, how adverts order addresses', () => {
  it('private, loopback, CGNAT, link-local and unspecified addresses are not public', () => {
    for (const ip of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.10', '127.0.0.1', '100.64.0.1', '169.254.1.1', '0.0.0.0', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:10.0.0.1', 'not-an-ip']) {
      expect(isPrivateIp(ip), ip).toBe(true)
    }
    for (const ip of ['8.8.8.8', '172.32.0.1', '100.128.0.1', '2a00:1450::1', '::ffff:8.8.8.8']) {
      expect(isPrivateIp(ip), ip).toBe(false)
    }
  })

  it('relays automatically on a public listen address, or on a wildcard when an interface is public', () => {
    expect(hasPublicListenAddr(['/ip4/8.8.4.4/tcp/4021'], [])).toBe(true)
    expect(hasPublicListenAddr(['/ip4/192.168.1.5/tcp/4021'], ['8.8.4.4'])).toBe(false)
    expect(hasPublicListenAddr(['/ip4/0.0.0.0/tcp/4021'], ['127.0.0.1', '192.168.1.5'])).toBe(false)
    expect(hasPublicListenAddr(['/ip4/0.0.0.0/tcp/4021'], ['127.0.0.1', '8.8.4.4'])).toBe(true)
    expect(hasPublicListenAddr(['/ip6/::/tcp/4021'], ['8.8.4.4', 'fe80::1'])).toBe(false)
    expect(hasPublicListenAddr(['/ip6/::/tcp/4021'], ['2a00:1450::1'])).toBe(true)
    expect(hasPublicListenAddr(['/p2p-circuit'], ['8.8.4.4'])).toBe(false)
  })

  it('adverts list public addresses, then relayed ones, then private ones', () => {
    const relayed = '/ip4/8.8.4.4/tcp/1/p2p/16Uiu2HAmRelay/p2p-circuit'
    expect(advertOrder(['/ip4/127.0.0.1/tcp/1', relayed, '/ip4/192.168.1.5/tcp/1', '/ip4/8.8.8.8/tcp/1']))
      .toEqual(['/ip4/8.8.8.8/tcp/1', relayed, '/ip4/127.0.0.1/tcp/1', '/ip4/192.168.1.5/tcp/1'])
  })
})
