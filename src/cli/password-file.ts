import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { HeuristError, usageError } from '../core/errors.js'

/** The systemd credential name `heurist service install` loads the password under (LoadCredential=). */
export const PASSWORD_CREDENTIAL = 'heurist-password'
const MAX_PASSWORD_FILE = 4096

/**
 * The keystore password from a file, for headless servers: HEURIST_PASSWORD_FILE, else the
 * systemd credential `heurist-password` ($CREDENTIALS_DIRECTORY). One trailing newline is
 * dropped. undefined when neither is set.
 */
export async function passwordFromFile (env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const path = env.HEURIST_PASSWORD_FILE !== undefined && env.HEURIST_PASSWORD_FILE !== ''
    ? env.HEURIST_PASSWORD_FILE
    : env.CREDENTIALS_DIRECTORY !== undefined && env.CREDENTIALS_DIRECTORY !== '' ? join(env.CREDENTIALS_DIRECTORY, PASSWORD_CREDENTIAL) : undefined
  if (path === undefined) return undefined
  let text: string
  try {
    if ((await stat(path)).size > MAX_PASSWORD_FILE) throw usageError('KEY_BAD_PASSWORD_FILE', `password file ${path} is over ${MAX_PASSWORD_FILE} bytes`)
    text = await readFile(path, 'utf8')
  } catch (e) {
    if (e instanceof HeuristError) throw e
    // a credentials directory without our credential: fall through to the other sources
    if (env.HEURIST_PASSWORD_FILE === undefined || env.HEURIST_PASSWORD_FILE === '') return undefined
    throw usageError('KEY_BAD_PASSWORD_FILE', `cannot read the password file ${path} (HEURIST_PASSWORD_FILE): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
  const pw = text.replace(/\r?\n$/, '')
  if (pw === '') throw usageError('KEY_BAD_PASSWORD_FILE', `password file ${path} is empty`)
  return pw
}
