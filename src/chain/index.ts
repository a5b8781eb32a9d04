/**
 * The chain area's public surface (DESIGN.md §8): Solidity contracts compiled with solc-js,
 * deploy, the embedded EDR devnet, typed ethers wrappers and EIP-712 signing helpers.
 *
 *   const devnet = await startDevnet({ port: 0, deploy: { epochSeconds: 60n } })
 *   const chain = await connectChain({ deployment: devnet.deployment, signer: devnet.accounts[1] })
 *   await chain.stake(100n * 10n ** 18n)
 *   const sig = await signVoucher(payerWallet, chain.deployment, voucher)
 *   await chain.redeemVoucher(voucher, sig)
 */
export { startDevnet, devAccounts, defaultDevnetOptions, DEV_MNEMONIC, edrAvailable, type Devnet, type DevnetOptions } from './devnet.js'
export { deployContracts, defaultDeployParams, DEFAULT_MIN_COLLATERAL, DEAD_ADDRESS, type DeployParams, type DeployOptions, type EmissionSchedule } from './deploy.js'
export { connectChain, type ChainClient, type ConnectOptions, type TxResult, type Balances, type Contracts, type RegistrationConsent } from './client.js'
export {
  signVoucher, voucherDigest, signReceipt, receiptDigest, signVerdict, signRewardRoot, signRegistration,
  buildRewardTree, sortBySigner, type RewardEntry, type RewardClaim, type RewardTree
} from './signing.js'
export { standardRewardTree, rewardLeafHash, type StandardTree } from './merkle.js'
export { checkDeployment, fetchDeployment, type DeploymentCheck } from './check.js'
export { readDeployment, writeDeployment, parseDeployment, deploymentSchema, shareableDeployment, deploymentKey, type Deployment } from './deployment.js'
export { loadArtifacts, compileContracts, CONTRACT_NAMES, ARTIFACTS_PATH, type Artifacts, type Artifact, type ContractName } from './compile.js'
export { chainError, decodeRevert } from './errors.js'
export { probeChainId, makeProvider } from './provider.js'
export { startRpcServer, type RpcServer, type RpcServerOptions } from './rpc-server.js'
export { readRewardFiles, writeRewardFile, rewardFileSchema, type RewardFile } from './rewards.js'
export { minerEligibility, depositReader, defaultChainReadCacheOptions, type MinerEligibility, type ChainReadCacheOptions } from './eligibility.js'
