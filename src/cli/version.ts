import { readFileSync } from 'node:fs'

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string, version: string }

/** The package version, read once from package.json next to dist/ and src/. */
export const VERSION: string = pkg.version

/** The package name as published (what `heurist update check` asks the registry for). */
export const PACKAGE_NAME: string = pkg.name
