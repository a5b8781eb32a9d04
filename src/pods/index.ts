// Public surface of src/pods: pods on chain, the hosting policy, demand, and the miner's pod manager.
export {
  planHosting, podStates, desiredHosts, rendezvous, fits, defaultPolicyOptions,
  type PodView, type MinerView, type SelfView, type PolicyOptions, type PolicyInput, type Plan, type PodPlan, type PodState
} from './policy.js'
export { DemandBoard, createDemandValidator, defaultDemandBoardOptions, type DemandBoardOptions } from './demand.js'
export {
  PodDirectory, readPods, deployPod, retirePod, podRevenueThisEpoch, podIdHex, defaultPodDirectoryOptions, MAX_PODS, MAX_SHARE_BPS,
  type Pod, type DeployPodInput, type PodDirectoryOptions
} from './directory.js'
export { PodManager, advertVramMb, defaultPodManagerOptions, type PodBudget, type PodManagerOptions, type PodManagerComponents, type PodEvent, type PodSource, type DemandSource } from './manager.js'
export { startPodHost, podResolver, type PodHost, type PodHostOptions } from './host.js'
