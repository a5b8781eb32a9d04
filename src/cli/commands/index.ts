import type { Command } from 'commander'
import { registerInit } from './init.js'
import { registerConfig } from './config.js'
import { registerDoctor } from './doctor.js'
import { registerWhoami } from './whoami.js'
import { registerModels } from './models.js'
import { registerInfer } from './infer.js'
import { registerEconomics } from './economics.js'
import { registerGateway } from './gateway.js'
import { registerMine } from './mine.js'
import { registerPeers } from './peers.js'

/** Every command, in the order `heurist --help` lists them. One file per command. */
export const commands: Array<(program: Command) => void> = [
  registerInit,
  registerWhoami,
  registerConfig,
  registerDoctor,
  registerModels,
  registerInfer,
  registerEconomics,
  registerMine,
  registerPeers
]
