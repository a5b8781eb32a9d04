'use strict'
// heurist's npm `preinstall`: makes onnxruntime-node's CUDA download opt-in.
//
// Why: onnxruntime-node (>= 1.18) ships its CPU library inside the npm package, but its
// `postinstall` (script/install.js) downloads the CUDA provider libraries from api.nuget.org
// on linux/x64 whenever they are missing, and fails the whole install when it cannot reach
// that host. It skips only on ONNXRUNTIME_NODE_INSTALL=skip or the npm config
// onnxruntime-node-install=skip, and a package cannot set either for its dependencies: npm
// ignores the project's .npmrc in global mode (`npm i -g heurist-x.tgz`) and for a package
// installed as a dependency. What a package *can* do: npm (arborist, v7+) runs every
// package's `preinstall` before any package's `postinstall`, with all packages unpacked, so
// this script records "no extra files on this platform" in onnxruntime-node's install
// metadata (script/install-metadata.js, `requirements`), and its postinstall then finds
// nothing to fetch. The CPU binaries are untouched; the image pipeline checks for the CUDA
// libraries before asking for them (cudaProviderAvailable).
//
// Opt in to CUDA: set ONNXRUNTIME_NODE_INSTALL=cuda12 for the install; this script then
// changes nothing and onnxruntime-node downloads the libraries as usual.
// Never fails the install: on anything unexpected it says why and leaves onnxruntime-node alone.

const fs = require('node:fs')
const path = require('node:path')

const OPT_IN_VARS = ['ONNXRUNTIME_NODE_INSTALL', 'npm_config_onnxruntime_node_install', 'ONNXRUNTIME_NODE_INSTALL_CUDA', 'npm_config_onnxruntime_node_install_cuda']

function say (line) {
  process.stderr.write(`heurist preinstall: ${line}\n`)
}

function main () {
  const chosen = OPT_IN_VARS.find(v => process.env[v] !== undefined && process.env[v] !== '')
  if (chosen !== undefined) {
    say(`${chosen}=${process.env[chosen]} is set: onnxruntime-node's install script decides`)
    return
  }
  // `npm install` in a clone of heurist: the clone's .npmrc already skips the download, and
  // the dependencies' scripts ran before this one
  if (process.env.npm_config_local_prefix === path.join(__dirname, '..')) return
  let metadataPath
  try {
    const pkg = require.resolve('onnxruntime-node/package.json', { paths: [path.join(__dirname, '..')] })
    metadataPath = path.join(path.dirname(pkg), 'script', 'install-metadata.js')
  } catch {
    return // not unpacked beside us (or not installed at all): nothing to do
  }
  let text
  try {
    text = fs.readFileSync(metadataPath, 'utf8')
  } catch {
    return // an onnxruntime-node without the download step
  }
  const block = /requirements:\s*\{[^}]*\}/.exec(text)
  if (block === null) {
    say(`${metadataPath} has no requirements block this script knows; if the install fails fetching CUDA libraries, set ONNXRUNTIME_NODE_INSTALL=skip`)
    return
  }
  const cpuOnly = block[0].replace(/\[[^\]]*\]/g, '[]')
  if (cpuOnly === block[0]) return // already CPU-only
  fs.writeFileSync(metadataPath, text.slice(0, block.index) + cpuOnly + text.slice(block.index + block[0].length))
  say('onnxruntime-node will use its bundled CPU library; for the CUDA provider, install with ONNXRUNTIME_NODE_INSTALL=cuda12')
}

try {
  main()
} catch (e) {
  say(`left onnxruntime-node as it is (${e && e.message ? e.message : String(e)})`)
}
