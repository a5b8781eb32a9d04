#!/usr/bin/env bash
# bench/gpu.sh — one short run on a machine with a GPU: builds, then prints ONE JSON document
# with what `heurist doctor --json` finds (llama.cpp backend and VRAM, whether onnxruntime's
# CUDA provider loads), `bench:llm` on the GPU backend (BENCH_GPU=auto) and `bench:image` with
# the CUDA provider where it loads (PROVIDER=auto, else the CPU at 1 thread and at all cores),
# plus nvidia-smi's view when it is there. Each part that fails is recorded with its exit
# status and the tail of its stderr instead of stopping the run.
#
# Run from anywhere: bash bench/gpu.sh > gpu.json   (about 1–3 minutes with the tiny models)
# Env: SKIP_BUILD=1 (dist/ already built), BENCH_IMAGE_MODEL (a real SD 1.5 ONNX folder),
#      SIDES (image sizes, default 64,512), RUNS (image runs, default 5), BENCH_ROUNDS (LLM, default 10).
# The CUDA provider's libraries are an opt-in download at install time
# (ONNXRUNTIME_NODE_INSTALL=cuda12 npm install); without them the image part runs on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if [ "${SKIP_BUILD:-0}" != "1" ]; then
  if ! npm run build >"$TMP/build.out" 2>&1; then
    tail -c 4000 "$TMP/build.out" >&2
    echo '{"bench":"gpu","error":"build failed"}'
    exit 1
  fi
fi

# part NAME CMD...: runs CMD with a 10-minute bound, stdout to NAME.json, exit status to NAME.rc
part () {
  local name=$1; shift
  timeout 600 "$@" >"$TMP/$name.json" 2>"$TMP/$name.err"
  echo $? >"$TMP/$name.rc"
}

part doctor node "$ROOT/bin/heurist" --home "$TMP/home" --json doctor
part llm env BENCH_GPU="${BENCH_GPU:-auto}" BENCH_ROUNDS="${BENCH_ROUNDS:-10}" node "$ROOT/bench/llm.mjs"
part image env PROVIDER="${PROVIDER:-auto}" RUNS="${RUNS:-5}" SIDES="${SIDES:-64,512}" node "$ROOT/bench/image.mjs"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=index,name,driver_version,memory.total,memory.used,utilization.gpu --format=csv,noheader >"$TMP/smi.txt" 2>&1
else
  echo "nvidia-smi not found" >"$TMP/smi.txt"
fi

node --input-type=module - "$TMP" <<'JS'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { availableParallelism, cpus, totalmem } from 'node:os'
const dir = process.argv[2]
const read = (f) => { try { return readFileSync(join(dir, f), 'utf8') } catch { return '' } }
const part = (name) => {
  const rc = Number(read(`${name}.rc`).trim())
  const out = read(`${name}.json`)
  try {
    return { rc, result: JSON.parse(out) }
  } catch {
    return { rc, error: 'no JSON on stdout', stdoutTail: out.slice(-2000), stderrTail: read(`${name}.err`).slice(-2000) }
  }
}
process.stdout.write(JSON.stringify({
  bench: 'gpu',
  at: new Date().toISOString(),
  node: process.version,
  cpu: { model: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), ramBytes: totalmem() },
  nvidiaSmi: read('smi.txt').trim().split('\n').filter(Boolean),
  doctor: part('doctor'),
  llm: part('llm'),
  image: part('image')
}, null, 2) + '\n')
JS
