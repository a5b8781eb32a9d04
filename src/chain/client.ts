/**
 * Typed access to a deployment: `connectChain` checks the endpoint and chain id, and returns
 * the eight contracts plus the token holder's actions. Every action first checks locally
 * what would make it fail (balance, minimum, maturity) and sends nothing when it would; a
 * revert that still happens comes back as a one-line HeuristError decoded from its data.
 */
import { Contract, type JsonRpcProvider, type Signer, type ContractTransactionResponse, type EventLog } from 'ethers'
import { HeuristError } from '../core/errors.js'
import type { Voucher, Receipt, Verdict, PaymentAuthorization, Allocation } from '../core/typed-data.js'
import { signRegistration } from './signing.js'
import { formatHeu } from '../economics/index.js'
import { loadArtifacts, type Artifacts, type ContractName } from './compile.js'
import { chainError } from './errors.js'
import type { Deployment } from './deployment.js'
import { makeProvider, probeChainId, type ProbeOptions, defaultProbeOptions } from './provider.js'

export interface TxResult {
  /** What the transaction did, e.g. "approve", "stake". */
  step: string
  hash: string
  gasUsed: bigint
  blockNumber: number
}

export interface Balances {
  address: string
  /** HEU in the wallet (wei). */
  heu: bigint
  /** stHEU shares in the wallet (not counting those escrowed as votes). */
  stheu: bigint
  /** What those shares are worth in HEU today. */
  stheuValue: bigint
  /** Collateral when the address is a registered operator. */
  collateral: bigint
  /** When the miner registration's exit cooldown ends (unix s, chain time); 0 = not exiting. */
  collateralExitAt: bigint
  /** HEU staked as a validator (wei). */
  validatorStake: bigint
  /** When the validator exit's cooldown ends; 0 = not exiting. */
  validatorExitAt: bigint
  /** stHEU escrowed in votes. */
  votes: bigint
  /** Deposit (compute credits) in Payments. */
  deposit: bigint
  eth: bigint
  vesting: { total: bigint, matured: bigint, nextUnlockAt: bigint }
}

export type Contracts = Record<'token' | 'stheu' | 'nodes' | 'pods' | 'voting' | 'payments' | 'slashing' | 'emission', Contract>

export interface ChainClient {
  deployment: Deployment
  provider: JsonRpcProvider
  signer: Signer | undefined
  artifacts: Artifacts
  contracts: Contracts
  /** Sends `contract.fn(args)` and waits for it; failures become one-line HeuristErrors. */
  send: (step: string, contract: Contract, fn: string, args: unknown[]) => Promise<TxResult>
  /** Runs a view call; failures become one-line HeuristErrors. */
  read: <T = unknown>(contract: Contract, fn: string, args?: unknown[]) => Promise<T>
  balances: (address: string) => Promise<Balances>
  stake: (amount: bigint) => Promise<TxResult[]>
  unstake: (shares: bigint) => Promise<TxResult[]>
  withdraw: () => Promise<TxResult[]>
  voteNode: (node: string, amount: bigint) => Promise<TxResult[]>
  votePod: (podId: string, amount: bigint) => Promise<TxResult[]>
  unvoteNode: (node: string, amount: bigint) => Promise<TxResult[]>
  unvotePod: (podId: string, amount: bigint) => Promise<TxResult[]>
  /**
   * Registers a miner. Without `consent` the signer is the operator (owned by `owner`, default
   * itself). With `consent` the signer is the owner, registering `consent.operator` with the
   * operator's signed consent (see `signRegistrationConsent`), and pays the collateral.
   */
  register: (collateral: bigint, owner?: string, consent?: RegistrationConsent) => Promise<TxResult[]>
  /** The operator's (this signer's) consent to be registered owned by `owner`, good until `deadline` (unix seconds). */
  signRegistrationConsent: (owner: string, deadline: bigint) => Promise<RegistrationConsent>
  registerValidator: (stake: bigint) => Promise<TxResult[]>
  /**
   * Leaving (NodeRegistry): `requestExit` starts the cooldown of this key's miner registration
   * (`validator`: its validator stake); `completeExit` after the cooldown returns the collateral
   * to the owner (the stake to this key). A node can still be slashed while exiting.
   */
  requestExit: (validator: boolean) => Promise<TxResult[]>
  completeExit: (validator: boolean) => Promise<TxResult[]>
  registerPod: (modelId: string, kind: number, minVramMb: number, revenueBps: number) => Promise<TxResult[]>
  deposit: (amount: bigint) => Promise<TxResult[]>
  /** Redeems a cumulative voucher (anyone may submit it); pays the difference to what was redeemed. */
  redeemVoucher: (voucher: Voucher, signature: string) => Promise<TxResult[]>
  /** What redeeming `voucher` would pay now (0 when it is not above what was redeemed). */
  redeemable: (voucher: Voucher) => Promise<bigint>
  /** The payer's deposit (compute credits) in Payments. */
  depositOf: (payer: string) => Promise<bigint>
  /** The payer's withdrawal request: amount and when it can complete (0: none). */
  withdrawalOf: (payer: string) => Promise<{ amount: bigint, at: bigint }>
  /** Asks to withdraw `amount` of this signer's deposit; it can complete after Payments' withdraw delay. */
  requestWithdrawal: (amount: bigint) => Promise<TxResult[]>
  /** Completes this signer's withdrawal request once its delay has passed. */
  withdrawDeposit: () => Promise<TxResult[]>
  /**
   * Pay-by-User: this signer (the frontend the authorization names) settles the session's
   * allocations out of the payer's deposit (Payments.settleAuthorized).
   */
  settleAuthorized: (authorization: PaymentAuthorization, signature: string, allocations: Allocation[]) => Promise<TxResult[]>
  /** What Payments has settled so far for the session (payer, frontend, session id). */
  sessionSpent: (payer: string, frontend: string, session: string) => Promise<bigint>
  postRewardRoot: (epoch: bigint, root: string, total: bigint, signatures: string[]) => Promise<TxResult[]>
  claim: (epoch: bigint, account: string, amount: bigint, proof: string[]) => Promise<TxResult[]>
  slash: (receipt: Receipt, minerSignature: string, verdicts: Verdict[], verdictSignatures: string[]) => Promise<TxResult[]>
  /** The current epoch by the chain's clock. */
  currentEpoch: () => Promise<bigint>
  /**
   * A contract's events in a block range, decoded. Use this, not `contract.on`: ethers'
   * polling subscriptions fire duplicates on an automining chain. Ranges over `maxRange`
   * blocks are queried in chunks.
   */
  events: (contract: keyof Contracts, event: string, fromBlock: number, toBlock?: number, maxRange?: number) => Promise<EventLog[]>
  /** The epoch's cap and reservoir part as Emission computes it. */
  epochCap: (epoch: bigint) => Promise<{ cap: bigint, reservoir: bigint }>
  close: () => void
}

/** An operator's signed consent to be registered owned by `owner` (NodeRegistry.registerWithConsent). */
export interface RegistrationConsent {
  operator: string
  owner: string
  nonce: bigint
  deadline: bigint
  signature: string
}

export interface ConnectOptions {
  /** JSON-RPC URL; defaults to the deployment's rpcUrl (a devnet). */
  rpc?: string
  deployment: Deployment
  /** Signs transactions; connected to the provider here. Views work without one. */
  signer?: Signer
  probe?: ProbeOptions
}

const KEYS: Record<keyof Contracts, ContractName> = {
  token: 'HeuristToken', stheu: 'StakedHeurist', nodes: 'NodeRegistry', pods: 'PodRegistry',
  voting: 'Voting', payments: 'Payments', slashing: 'Slashing', emission: 'Emission'
}

function fail (code: string, message: string): HeuristError {
  return new HeuristError(code, message)
}

export async function connectChain (options: ConnectOptions): Promise<ChainClient> {
  const d = options.deployment
  const rpc = options.rpc ?? d.rpcUrl
  if (rpc === undefined || rpc === '') throw new HeuristError('CHAIN_NO_RPC', 'no RPC URL: pass --rpc URL (the deployment file has none)', { usage: true })
  const chainId = await probeChainId(rpc, options.probe ?? defaultProbeOptions)
  if (chainId !== d.chainId) throw new HeuristError('CHAIN_WRONG_CHAIN_ID', `the RPC endpoint is chain ${chainId} but the deployment is for chain ${d.chainId}`)
  const artifacts = await loadArtifacts()
  const provider = makeProvider(rpc, chainId)
  const signer = options.signer === undefined ? undefined : (options.signer.provider === provider ? options.signer : options.signer.connect(provider))
  const contracts = Object.fromEntries(Object.entries(KEYS).map(([k, name]) =>
    [k, new Contract(d.contracts[name], artifacts.contracts[name].abi, signer ?? provider)])) as Contracts
  const { token, stheu, nodes, pods, voting, payments, slashing, emission } = contracts

  const me = async (): Promise<string> => {
    if (signer === undefined) throw new HeuristError('CHAIN_NO_SIGNER', 'this action needs a signing key')
    return await signer.getAddress()
  }

  const read = async <T>(c: Contract, fn: string, args: unknown[] = []): Promise<T> => {
    try {
      return await c.getFunction(fn).staticCall(...args) as T
    } catch (e) {
      throw chainError(e, artifacts, `${fn}`)
    }
  }

  const send = async (step: string, c: Contract, fn: string, args: unknown[]): Promise<TxResult> => {
    if (signer === undefined) throw new HeuristError('CHAIN_NO_SIGNER', `${step} needs a signing key`)
    let tx: ContractTransactionResponse
    try {
      // estimateGas runs the call first: a revert is caught here and nothing is sent
      tx = await c.getFunction(fn)(...args) as ContractTransactionResponse
    } catch (e) {
      throw chainError(e, artifacts, step)
    }
    try {
      const r = await tx.wait()
      if (r === null) throw fail('CHAIN_FAILED', `${step}: no receipt`)
      return { step, hash: r.hash, gasUsed: r.gasUsed, blockNumber: r.blockNumber }
    } catch (e) {
      throw chainError(e, artifacts, step)
    }
  }

  const needHeu = async (who: string, amount: bigint, what: string): Promise<void> => {
    const have = await read<bigint>(token, 'balanceOf', [who])
    if (have < amount) throw fail('CHAIN_INSUFFICIENT_BALANCE', `${what}: insufficient HEU balance: have ${formatHeu(have)} HEU, need ${formatHeu(amount)} HEU`)
  }

  const approveIfNeeded = async (owner: string, spender: Contract, amount: bigint, out: TxResult[], tokenContract: Contract = token): Promise<void> => {
    const to = await spender.getAddress()
    const allowance = await read<bigint>(tokenContract, 'allowance', [owner, to])
    if (allowance < amount) out.push(await send('approve', tokenContract, 'approve', [to, amount]))
  }

  const positive = (amount: bigint, what: string): void => {
    if (amount <= 0n) throw new HeuristError('CHAIN_ZERO_AMOUNT', `${what}: the amount must be above 0`, { usage: true })
  }

  /** Votes stHEU for a node or a pod: the balance is checked first, then Voting escrows it. */
  const vote = async (fn: 'voteNode' | 'votePod', target: string, amount: bigint): Promise<TxResult[]> => {
    positive(amount, 'vote')
    const a = await me()
    const have = await read<bigint>(stheu, 'balanceOf', [a])
    if (have < amount) throw fail('CHAIN_INSUFFICIENT_BALANCE', `vote: insufficient stHEU balance: have ${formatHeu(have)}, need ${formatHeu(amount)}`)
    const out: TxResult[] = []
    await approveIfNeeded(a, voting, amount, out, stheu)
    out.push(await send('vote', voting, fn, [target, amount]))
    return out
  }

  const unvote = async (fn: 'unvoteNode' | 'unvotePod', votesBy: 'nodeVotesBy' | 'podVotesBy', target: string, label: string, amount: bigint): Promise<TxResult[]> => {
    positive(amount, 'unvote')
    const a = await me()
    const have = await read<bigint>(voting, votesBy, [a, target])
    if (have < amount) throw fail('CHAIN_INSUFFICIENT_VOTES', `unvote: you have ${formatHeu(have)} stHEU on ${label}, asked for ${formatHeu(amount)}`)
    return [await send('unvote', voting, fn, [target, amount])]
  }

  const balances = async (address: string): Promise<Balances> => {
    const [heu, st, node, validator, votes, dep, eth, vest] = await Promise.all([
      read<bigint>(token, 'balanceOf', [address]),
      read<bigint>(stheu, 'balanceOf', [address]),
      read<[string, bigint, bigint]>(nodes, 'nodes', [address]),
      read<[bigint, bigint]>(nodes, 'validators', [address]),
      read<bigint>(voting, 'votesOf', [address]),
      read<bigint>(payments, 'deposits', [address]),
      provider.getBalance(address),
      read<[bigint, bigint, bigint]>(stheu, 'vestingOf', [address])
    ])
    const stheuValue = st === 0n ? 0n : await read<bigint>(stheu, 'convertToAssets', [st])
    return {
      address, heu, stheu: st, stheuValue, collateral: node[1], collateralExitAt: node[2], validatorStake: validator[0], validatorExitAt: validator[1], votes, deposit: dep, eth,
      vesting: { total: vest[0], matured: vest[1], nextUnlockAt: vest[2] }
    }
  }

  const client: ChainClient = {
    deployment: d,
    provider,
    signer,
    artifacts,
    contracts,
    send,
    read,
    balances,
    async stake (amount) {
      positive(amount, 'stake')
      const a = await me()
      await needHeu(a, amount, 'stake')
      const out: TxResult[] = []
      await approveIfNeeded(a, stheu, amount, out)
      out.push(await send('stake', stheu, 'deposit', [amount, a]))
      return out
    },
    async unstake (shares) {
      positive(shares, 'unstake')
      const a = await me()
      const have = await read<bigint>(stheu, 'balanceOf', [a])
      if (have < shares) throw fail('CHAIN_INSUFFICIENT_BALANCE', `unstake: insufficient stHEU balance: have ${formatHeu(have)}, need ${formatHeu(shares)}`)
      return [await send('unstake', stheu, 'unstake', [shares])]
    },
    async withdraw () {
      const a = await me()
      const [total, matured, next] = await read<[bigint, bigint, bigint]>(stheu, 'vestingOf', [a])
      if (matured === 0n) {
        throw fail('CHAIN_NOT_MATURED', total === 0n
          ? 'withdraw: nothing is vesting (unstake first)'
          : `withdraw: vesting not matured: ${formatHeu(total)} HEU unlocks from ${new Date(Number(next) * 1000).toISOString()}`)
      }
      return [await send('withdraw', stheu, 'withdraw()', [])]
    },
    async voteNode (node, amount) { return await vote('voteNode', node, amount) },
    async votePod (podId, amount) { return await vote('votePod', podId, amount) },
    async unvoteNode (node, amount) { return await unvote('unvoteNode', 'nodeVotesBy', node, node, amount) },
    async unvotePod (podId, amount) { return await unvote('unvotePod', 'podVotesBy', podId, `pod ${podId}`, amount) },
    async register (collateral, owner, consent) {
      const a = await me()
      const op = consent?.operator ?? a
      if (consent !== undefined) {
        if (owner !== undefined && owner.toLowerCase() !== a.toLowerCase()) throw fail('CHAIN_BAD_CONSENT', 'register: with a consent the owner is the sender; drop --owner or run from the owner key')
        if (consent.owner.toLowerCase() !== a.toLowerCase()) throw fail('CHAIN_BAD_CONSENT', `register: the consent names owner ${consent.owner}, not this key ${a}`)
      }
      const min = await read<bigint>(nodes, 'minCollateral')
      if (collateral < min) throw fail('CHAIN_INSUFFICIENT_STAKE', `register: collateral ${formatHeu(collateral)} HEU is under the minimum ${formatHeu(min)} HEU`)
      const existing = await read<[string, bigint, bigint]>(nodes, 'nodes', [op])
      if (existing[0] !== '0x0000000000000000000000000000000000000000') throw fail('CHAIN_ALREADY_REGISTERED', `register: ${op} is already registered (owner ${existing[0]})`)
      if (consent !== undefined) {
        const nonce = await read<bigint>(nodes, 'nonces', [op])
        if (nonce !== consent.nonce) throw fail('CHAIN_BAD_CONSENT', `register: the consent was for nonce ${consent.nonce}, the operator is at ${nonce} (already used: ask the operator for a new one)`)
        const now = BigInt((await provider.getBlock('latest'))?.timestamp ?? 0)
        if (now > consent.deadline) throw fail('CHAIN_BAD_CONSENT', `register: the consent expired at ${new Date(Number(consent.deadline) * 1000).toISOString()}`)
      }
      await needHeu(a, collateral, 'register')
      const out: TxResult[] = []
      await approveIfNeeded(a, nodes, collateral, out)
      out.push(consent === undefined
        ? await send('register', nodes, 'register', [owner ?? a, collateral])
        : await send('register', nodes, 'registerWithConsent', [op, collateral, consent.deadline, consent.signature]))
      return out
    },
    async signRegistrationConsent (owner, deadline) {
      if (signer === undefined) throw new HeuristError('CHAIN_NO_SIGNER', 'consent needs the operator key')
      const operator = await me()
      const nonce = await read<bigint>(nodes, 'nonces', [operator])
      const signature = await signRegistration(signer, d, { operator, owner, nonce, deadline })
      return { operator, owner, nonce, deadline, signature }
    },
    async registerValidator (amount) {
      positive(amount, 'register validator')
      const a = await me()
      const [min, mine] = await Promise.all([read<bigint>(nodes, 'minValidatorStake'), read<[bigint, bigint]>(nodes, 'validators', [a])])
      if (mine[0] + amount < min) throw fail('CHAIN_INSUFFICIENT_STAKE', `register validator: stake ${formatHeu(mine[0] + amount)} HEU is under the minimum ${formatHeu(min)} HEU`)
      await needHeu(a, amount, 'register validator')
      const out: TxResult[] = []
      await approveIfNeeded(a, nodes, amount, out)
      out.push(await send('register validator', nodes, 'registerValidator', [amount]))
      return out
    },
    async requestExit (validator) {
      const a = await me()
      return [validator ? await send('request validator exit', nodes, 'requestValidatorExit', []) : await send('request exit', nodes, 'requestExit', [a])]
    },
    async completeExit (validator) {
      const a = await me()
      const exitAt = validator ? (await read<[bigint, bigint]>(nodes, 'validators', [a]))[1] : (await read<[string, bigint, bigint]>(nodes, 'nodes', [a]))[2]
      if (exitAt === 0n) throw fail('CHAIN_NOT_EXITING', `exit --complete: ${a} has not asked to exit${validator ? ' as a validator' : ''} (run \`heurist exit${validator ? ' --validator' : ''}\` first)`)
      const now = BigInt((await provider.getBlock('latest'))?.timestamp ?? 0)
      if (now < exitAt) throw fail('CHAIN_COOLDOWN', `exit --complete: the cooldown ends at ${new Date(Number(exitAt) * 1000).toISOString()} (chain time), ${exitAt - now} s from now`)
      return [validator ? await send('complete validator exit', nodes, 'completeValidatorExit', []) : await send('complete exit', nodes, 'completeExit', [a])]
    },
    async registerPod (modelId, kind, minVramMb, revenueBps) {
      return [await send('register pod', pods, 'registerPod', [modelId, kind, minVramMb, revenueBps])]
    },
    async deposit (amount) {
      positive(amount, 'deposit')
      const a = await me()
      await needHeu(a, amount, 'deposit')
      const out: TxResult[] = []
      await approveIfNeeded(a, payments, amount, out)
      out.push(await send('deposit', payments, 'deposit', [amount]))
      return out
    },
    async redeemable (v) {
      const done = await read<bigint>(payments, 'redeemedOf', [v])
      return v.cumulativeAmount > done ? v.cumulativeAmount - done : 0n
    },
    async depositOf (payer) {
      return await read<bigint>(payments, 'deposits', [payer])
    },
    async withdrawalOf (payer) {
      const [amount, at] = await Promise.all([read<bigint>(payments, 'pendingWithdrawal', [payer]), read<bigint>(payments, 'withdrawableAt', [payer])])
      return { amount, at }
    },
    async requestWithdrawal (amount) {
      positive(amount, 'withdrawal')
      const a = await me()
      const have = await read<bigint>(payments, 'deposits', [a])
      if (have < amount) throw fail('CHAIN_INSUFFICIENT_DEPOSIT', `withdraw: your deposit is ${formatHeu(have)} HEU, asked for ${formatHeu(amount)}`)
      return [await send('request withdrawal', payments, 'requestWithdrawal', [amount])]
    },
    async withdrawDeposit () {
      const a = await me()
      const at = await read<bigint>(payments, 'withdrawableAt', [a])
      if (at === 0n) throw fail('CHAIN_NOTHING_TO_WITHDRAW', 'withdraw: no withdrawal was requested (heurist deposit --withdraw AMOUNT first)')
      const now = BigInt((await provider.getBlock('latest'))?.timestamp ?? 0)
      if (now < at) throw fail('CHAIN_WITHDRAWAL_NOT_READY', `withdraw: the deposit can be withdrawn from ${new Date(Number(at) * 1000).toISOString()} (the withdraw delay lets miners redeem first)`)
      return [await send('withdraw deposit', payments, 'withdrawDeposit', [])]
    },
    async settleAuthorized (authorization, signature, allocations) {
      return [await send('settle authorization', payments, 'settleAuthorized', [authorization, signature, allocations])]
    },
    async sessionSpent (payer, frontend, session) {
      const sid = await read<string>(payments, 'sessionOf', [payer, frontend, session])
      return await read<bigint>(payments, 'sessionSpent', [sid])
    },
    async redeemVoucher (v, signature) {
      return [await send('redeem', payments, 'redeem', [v, signature])]
    },
    async postRewardRoot (epoch, root, total, signatures) {
      return [await send('post reward root', emission, 'postRoot', [epoch, root, total, signatures])]
    },
    async claim (epoch, account, amount, proof) {
      if (!await read<boolean>(emission, 'posted', [epoch])) throw fail('CHAIN_NO_ROOT', `claim: no reward root posted for epoch ${epoch}`)
      if (await read<boolean>(emission, 'claimed', [epoch, account])) throw fail('CHAIN_ALREADY_CLAIMED', `claim: epoch ${epoch} already claimed for ${account}`)
      return [await send('claim', emission, 'claim', [epoch, account, amount, proof])]
    },
    async slash (receipt, minerSignature, verdicts, verdictSignatures) {
      return [await send('slash', slashing, 'slash', [receipt, minerSignature, verdicts, verdictSignatures])]
    },
    async currentEpoch () {
      return await read<bigint>(payments, 'currentEpoch')
    },
    async events (key, event, fromBlock, toBlock, maxRange = 10_000) {
      const c = contracts[key]
      const last = toBlock ?? await provider.getBlockNumber()
      const out: EventLog[] = []
      for (let from = fromBlock; from <= last; from += maxRange) {
        const to = Math.min(last, from + maxRange - 1)
        try {
          for (const log of await c.queryFilter(c.getEvent(event), from, to)) if ('args' in log) out.push(log)
        } catch (e) {
          throw chainError(e, artifacts, `reading ${event} events`)
        }
      }
      return out
    },
    async epochCap (epoch) {
      const [cap, reservoir] = await read<[bigint, bigint]>(emission, 'capOf', [epoch])
      return { cap, reservoir }
    },
    close () { provider.destroy() }
  }
  return client
}
