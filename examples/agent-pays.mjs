// An agent that pays for its own chat completions from its own Payments deposit (Pay-by-User),
// with nothing but ethers and fetch: no API key, no heurist code.
//
//   GATEWAY=http://127.0.0.1:8080 AGENT_KEY=0x... [RPC=http://127.0.0.1:8545] [DEPOSIT=1] \
//     node examples/agent-pays.mjs "What is 2 + 2?" ["another prompt" ...]
//
// 1. POST the request with no key: the gateway answers 402 with what to sign (x402 shape).
// 2. With RPC set and a deposit below DEPOSIT HEU, top it up (approve + Payments.deposit).
// 3. Sign a PaymentAuthorization (EIP-712) for this gateway: one session, a cumulative
//    maxAmount = what this session authorized so far + the quote, an expiry within the limit.
// 4. Retry with the X-PAYMENT header; read the answer and X-PAYMENT-RESPONSE (what was charged).
// The gateway settles the session on chain: the agent's deposit pays the miner, the gateway and
// the protocol fee directly. It can never take more than the agent signed, nor after expiry.
import { Wallet, JsonRpcProvider, Contract, parseUnits, formatUnits, hexlify, randomBytes } from 'ethers'

const gateway = process.env.GATEWAY ?? 'http://127.0.0.1:8080'
const model = process.env.MODEL ?? 'tiny-llama'
const maxPrice = parseUnits(process.env.MAX_PRICE ?? '0.01', 18) // the most one request may be quoted
const prompts = process.argv.slice(2)
if (process.env.AGENT_KEY === undefined || prompts.length === 0) {
  console.error('usage: GATEWAY=URL AGENT_KEY=0xPRIVATEKEY [RPC=URL] [DEPOSIT=HEU] node examples/agent-pays.mjs PROMPT...')
  process.exit(2)
}
const provider = process.env.RPC === undefined ? null : new JsonRpcProvider(process.env.RPC, undefined, { cacheTimeout: -1 })
const agent = new Wallet(process.env.AGENT_KEY, provider)

let session = null // { id, expiry, authorized }
const results = []

async function post (body, payment) {
  return await fetch(`${gateway}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(payment === undefined ? {} : { 'x-payment': payment }) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(120_000)
  })
}

async function topUp (req) {
  const want = parseUnits(process.env.DEPOSIT ?? '1', 18)
  const payments = new Contract(req.extra.payments, ['function deposits(address) view returns (uint256)', 'function deposit(uint256)'], agent)
  const have = await payments.deposits(agent.address)
  if (have >= want) return
  const token = new Contract(req.asset, ['function approve(address,uint256) returns (bool)'], agent)
  // explicit nonces: a chain that mines at once can be ahead of a provider's cached count
  const nonce = await provider.getTransactionCount(agent.address, 'pending')
  await (await token.approve(req.extra.payments, want - have, { nonce })).wait()
  await (await payments.deposit(want - have, { nonce: nonce + 1 })).wait()
  console.error(`deposited ${formatUnits(want - have, 18)} HEU in Payments ${req.extra.payments}`)
}

for (const prompt of prompts) {
  const body = { model, messages: [{ role: 'user', content: prompt }], max_tokens: 16 }
  const first = await post(body)
  if (first.status !== 402) throw new Error(`expected 402 Payment Required, got ${first.status}: ${await first.text()}`)
  const req = (await first.json()).accepts.find(a => a.scheme === 'heurist-deposit')
  if (req === undefined) throw new Error('the gateway offers no heurist-deposit payment')
  const quote = BigInt(req.maxAmountRequired)
  if (quote > maxPrice) throw new Error(`quoted ${formatUnits(quote, 18)} HEU, above MAX_PRICE`)
  if (provider !== null) await topUp(req)

  const now = Math.floor(Date.now() / 1000)
  if (session === null || session.expiry < now + req.extra.settleMarginSeconds + 30) {
    session = { id: hexlify(randomBytes(32)), expiry: Math.min(now + 3600, req.extra.expiryAtMost - 60), authorized: 0n }
  }
  const authorization = { payer: agent.address, frontend: req.payTo, session: session.id, maxAmount: session.authorized + quote, expiry: session.expiry }
  const signature = await agent.signTypedData(req.extra.domain, req.extra.types, authorization)
  session.authorized = authorization.maxAmount
  const payment = Buffer.from(JSON.stringify({
    x402Version: 1,
    scheme: 'heurist-deposit',
    network: req.network,
    payload: { authorization: { ...authorization, maxAmount: authorization.maxAmount.toString(), expiry: String(authorization.expiry) }, signature }
  })).toString('base64')

  const paid = await post(body, payment)
  if (paid.status !== 200) throw new Error(`paid request refused: ${paid.status} ${await paid.text()}`)
  const answer = await paid.json()
  const receipt = JSON.parse(Buffer.from(paid.headers.get('x-payment-response'), 'base64').toString())
  results.push({ prompt, text: answer.choices[0].message.content, quote: quote.toString(), charged: receipt.charged, spent: receipt.spent, authorized: session.authorized.toString() })
  console.error(`${prompt} → paid ${formatUnits(BigInt(receipt.charged), 18)} HEU (quoted ${formatUnits(quote, 18)})`)
}
// one JSON line on stdout: what each request cost
console.log(JSON.stringify({ payer: agent.address, session: session.id, results }))
provider?.destroy()
