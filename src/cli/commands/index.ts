import type { Command } from 'commander'

/**
 * Every command, in the order `heurist --help` lists them. One file per command, loaded only
 * when it runs: a command's heavy libraries (llama.cpp, onnxruntime, libp2p, solc) are not
 * loaded to run another one. To add a command: one entry here, named as on the command line.
 */
export interface CommandEntry {
  name: string
  load: () => Promise<(program: Command) => void>
}

export const commands: CommandEntry[] = [
  { name: 'init', load: async () => (await import('./init.js')).registerInit },
  { name: 'whoami', load: async () => (await import('./whoami.js')).registerWhoami },
  { name: 'config', load: async () => (await import('./config.js')).registerConfig },
  { name: 'doctor', load: async () => (await import('./doctor.js')).registerDoctor },
  { name: 'models', load: async () => (await import('./models.js')).registerModels },
  { name: 'infer', load: async () => (await import('./infer.js')).registerInfer },
  { name: 'economics', load: async () => (await import('./economics.js')).registerEconomics },
  { name: 'gateway', load: async () => (await import('./gateway.js')).registerGateway },
  { name: 'up', load: async () => (await import('./up.js')).registerUp },
  { name: 'mine', load: async () => (await import('./mine.js')).registerMine },
  { name: 'validate', load: async () => (await import('./validate.js')).registerValidate },
  { name: 'peers', load: async () => (await import('./peers.js')).registerPeers },
  { name: 'devnet', load: async () => (await import('./devnet.js')).registerDevnet },
  { name: 'deployment', load: async () => (await import('./deployment.js')).registerDeployment },
  { name: 'deploy', load: async () => (await import('./deploy.js')).registerDeploy },
  { name: 'status', load: async () => (await import('./status.js')).registerStatus },
  { name: 'stake', load: async () => (await import('./stake.js')).registerStake },
  { name: 'unstake', load: async () => (await import('./unstake.js')).registerUnstake },
  { name: 'withdraw', load: async () => (await import('./withdraw.js')).registerWithdraw },
  { name: 'vote', load: async () => (await import('./vote.js')).registerVote },
  { name: 'unvote', load: async () => (await import('./unvote.js')).registerUnvote },
  { name: 'register', load: async () => (await import('./register.js')).registerRegister },
  { name: 'exit', load: async () => (await import('./exit.js')).registerExit },
  { name: 'deposit', load: async () => (await import('./deposit.js')).registerDeposit },
  { name: 'claim', load: async () => (await import('./claim.js')).registerClaim },
  { name: 'earnings', load: async () => (await import('./earnings.js')).registerEarnings },
  { name: 'pod', load: async () => (await import('./pod.js')).registerPod },
  { name: 'service', load: async () => (await import('./service.js')).registerService },
  { name: 'update', load: async () => (await import('./update.js')).registerUpdate }
]
