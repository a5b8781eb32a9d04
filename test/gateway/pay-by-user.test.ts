import { describe, it, expect, afterEach } from 'vitest'
import { createServer, type Server } from 'node:http'
import { Wallet } from 'ethers'
import { decodePaymentHeader, encodePaymentHeader, MAX_PAYMENT_HEADER_BYTES } from '../../src/gateway/index.js'
import { paidPost, readPaySessions } from '../../src/cli/pay-client.js'
import { tempDir } from '../helpers.js'

/**
 * The X-PAYMENT decoder is total (every malformed header is a 402 `payment_malformed`, never a
 * throw of another kind), and the paying client refuses what a hostile gateway asks: a contract
 * or chain other than its deployment's, a quote above --max-price, a charge above the quote.
 * The client talks to a real HTTP server that plays the hostile gateway.
 */
const auth = { payer: '0x' + '11'.repeat(20), frontend: '0x' + '22'.repeat(20), session: '0x' + '33'.repeat(32), maxAmount: 5n, expiry: 100n }
const sig = '0x' + 'ab'.repeat(65)

describe('X-PAYMENT header', () => {
  it('round-trips, and every malformed header is a 402 payment_malformed', () => {
    const h = encodePaymentHeader(31337, { authorization: auth, signature: sig })
    expect(decodePaymentHeader(h)).toEqual({ network: 'eip155:31337', authorization: auth, signature: sig })
    const bad = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64')
    const good = JSON.parse(Buffer.from(h, 'base64').toString()) as Record<string, any>
    const cases = [
      'not base64 json!!',
      bad({ ...good, x402Version: 2 }),
      bad({ ...good, scheme: 'exact' }),
      bad({ ...good, payload: { ...good.payload, signature: '0x12' } }),
      bad({ ...good, payload: { ...good.payload, authorization: { ...good.payload.authorization, maxAmount: '-1' } } }),
      bad({ ...good, payload: { ...good.payload, authorization: { ...good.payload.authorization, maxAmount: '1'.repeat(79) } } }),
      bad({ ...good, payload: { ...good.payload, authorization: { ...good.payload.authorization, extra: 1 } } }),
      'A'.repeat(MAX_PAYMENT_HEADER_BYTES + 1)
    ]
    for (const c of cases) {
      let err: unknown
      try { decodePaymentHeader(c) } catch (e) { err = e }
      expect(err, c.slice(0, 40)).toMatchObject({ status: 402, code: 'payment_malformed' })
    }
  })
})

describe('the paying client against a hostile gateway', () => {
  let server: Server | null = null
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    await new Promise(resolve => server === null ? resolve(null) : server.close(resolve))
    server = null
    for (const c of cleanups.splice(0)) await c()
  })

  /** A gateway answering 402 with `payments`/`quote`, then 200 with `charged` to a paid retry; counts paid requests. */
  async function hostile (o: { payments: string, quote: bigint, charged: bigint }): Promise<{ url: string, paid: () => number }> {
    let paid = 0
    server = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        if (req.headers['x-payment'] === undefined) {
          res.writeHead(402, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ error: { message: 'pay', code: 'payment_required' }, x402Version: 1, accepts: [{ scheme: 'heurist-deposit', network: 'eip155:31337', maxAmountRequired: o.quote.toString(), payTo: '0x' + '22'.repeat(20), maxTimeoutSeconds: 86400, extra: { payments: o.payments, chainId: 31337, expiryAtMost: Math.floor(Date.now() / 1000) + 86400, settleMarginSeconds: 120 } }] }))
          return
        }
        paid++
        res.writeHead(200, { 'content-type': 'application/json', 'x-payment-response': Buffer.from(JSON.stringify({ charged: o.charged.toString() })).toString('base64') })
        res.end(JSON.stringify({ choices: [{ message: { content: 'ok' } }] }))
      })
    })
    await new Promise<void>(resolve => server!.listen(0, '127.0.0.1', resolve))
    const a = server.address() as { port: number }
    return { url: `http://127.0.0.1:${a.port}`, paid: () => paid }
  }

  async function home (): Promise<string> {
    const t = await tempDir('heurist-pay-client-')
    cleanups.push(t.cleanup)
    return t.dir
  }

  const mine = '0x' + '44'.repeat(20)
  const wallet = Wallet.createRandom()

  it('refuses to sign for a Payments contract other than its deployment\'s', async () => {
    const g = await hostile({ payments: '0x' + '55'.repeat(20), quote: 10n, charged: 10n })
    const h = await home()
    await expect(paidPost({ home: h, wallet, gateway: g.url, maxPrice: null, expect: { chainId: 31337, payments: mine } }, '/v1/chat/completions', {})).rejects.toMatchObject({ code: 'PAY_WRONG_CHAIN' })
    expect(g.paid()).toBe(0)
    expect(await readPaySessions(h)).toEqual([])
  })

  it('refuses a quote above --max-price before signing', async () => {
    const g = await hostile({ payments: mine, quote: 11n, charged: 11n })
    const h = await home()
    await expect(paidPost({ home: h, wallet, gateway: g.url, maxPrice: 10n, expect: { chainId: 31337, payments: mine } }, '/v1/chat/completions', {})).rejects.toMatchObject({ code: 'PAY_PRICE_TOO_HIGH' })
    expect(g.paid()).toBe(0)
    expect(await readPaySessions(h)).toEqual([])
  })

  it('records what it authorized before paying, and calls out a charge above the quote', async () => {
    const g = await hostile({ payments: mine, quote: 10n, charged: 10n })
    const h = await home()
    const o = { home: h, wallet, gateway: g.url, maxPrice: 10n, expect: { chainId: 31337, payments: mine } }
    const r = await paidPost(o, '/v1/chat/completions', {})
    expect(r.charged).toBe(10n)
    await paidPost(o, '/v1/chat/completions', {})
    const [s] = await readPaySessions(h)
    expect({ authorized: s!.authorized, spent: s!.spent, requests: s!.requests }).toEqual({ authorized: '20', spent: '20', requests: 2 })
    await new Promise(resolve => server!.close(resolve))
    server = null
    const g2 = await hostile({ payments: mine, quote: 10n, charged: 11n })
    const h2 = await home()
    await expect(paidPost({ ...o, home: h2, gateway: g2.url }, '/v1/chat/completions', {})).rejects.toMatchObject({ code: 'PAY_OVERCHARGED' })
    // what it signed is on record even though the answer was refused
    expect((await readPaySessions(h2))[0]!.authorized).toBe('10')
  })
})
