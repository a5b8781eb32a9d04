import type { Command } from 'commander'
import { registerInit } from './init.js'
import { registerConfig } from './config.js'
import { registerDoctor } from './doctor.js'
import { registerWhoami } from './whoami.js'
import { registerModels } from './models.js'
import { registerInfer } from './infer.js'
import { registerEconomics } from './economics.js'
import { registerGateway } from './gateway.js'
import { registerUp } from './up.js'
import { registerMine } from './mine.js'
import { registerPeers } from './peers.js'
import { registerDevnet } from './devnet.js'
import { registerDeploy } from './deploy.js'
import { registerStatus } from './status.js'
import { registerStake } from './stake.js'
import { registerUnstake } from './unstake.js'
import { registerWithdraw } from './withdraw.js'
import { registerVote } from './vote.js'
import { registerUnvote } from './unvote.js'
import { registerRegister } from './register.js'
import { registerDeposit } from './deposit.js'
import { registerClaim } from './claim.js'
import { registerPod } from './pod.js'
import { registerValidate } from './validate.js'

/** Every command, in the order `heurist --help` lists them. One file per command. */
export const commands: Array<(program: Command) => void> = [
  registerInit,
  registerWhoami,
  registerConfig,
  registerDoctor,
  registerModels,
  registerInfer,
  registerEconomics,
  registerGateway,
  registerUp,
  registerMine,
  registerValidate,
  registerPeers,
  registerDevnet,
  registerDeploy,
  registerStatus,
  registerStake,
  registerUnstake,
  registerWithdraw,
  registerVote,
  registerUnvote,
  registerRegister,
  registerDeposit,
  registerClaim,
  registerPod
]
