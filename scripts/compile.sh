#!/usr/bin/env bash
# Builds the single binary dist/detcd with deno compile. deno compile needs its denort
# runtime: it downloads one unless DENORT_BIN points at a local denort binary, which is
# how it works offline.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p dist
if [[ -n ${DENORT_BIN:-} ]]; then
  [[ -x $DENORT_BIN ]] || { echo "compile: DENORT_BIN=$DENORT_BIN is not an executable file" >&2; exit 1; }
  echo "compile: using denort from DENORT_BIN=$DENORT_BIN"
fi
if ! deno compile -A --output dist/detcd main.ts; then
  cat >&2 <<'MSG'
compile: deno compile failed. If the error above is about downloading denort, this machine
cannot reach Deno's download host: get a denort 2.9.6 binary for this platform some other way
and run again with DENORT_BIN=/path/to/denort.
MSG
  exit 1
fi
ls -l dist/detcd
dist/detcd --version
