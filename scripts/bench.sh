#!/usr/bin/env bash
# Side-by-side load against Debian's etcd 3.4 on loopback (../shared/bench): raw gRPC with
# h2load, then etcd's own Go client (quick mode). Prints ratios detcd / etcd.
# usage: deno task bench [--full]   (--full: compare-go.sh without -q, about 2.5 min)
set -euo pipefail
cd "$(dirname "$0")/.."
bench=../shared/bench
[[ -x $bench/compare.sh || -f $bench/compare.sh ]] || { echo "bench: $bench/compare.sh not found" >&2; exit 2; }
deno_bin=$(command -v deno || true)
[[ -n $deno_bin ]] || deno_bin=$(readlink -f "$(dirname "$0")/../node_modules/.bin/deno" 2>/dev/null || true)
[[ -n $deno_bin ]] || { echo "bench: deno not on PATH (run it as: npx -y deno@2.9.6 task bench)" >&2; exit 2; }
server=("$deno_bin" run -A "$PWD/main.ts" --log-level warn)

echo "== raw gRPC (h2load, 100 concurrent streams): compare.sh"
bash "$bench/compare.sh" -n 50000 -c 10 -m 10 -- "${server[@]}"
echo
echo "== etcd's Go client: compare-go.sh"
if [[ ${1:-} == --full ]]; then
  bash "$bench/compare-go.sh" -- "${server[@]}"
else
  bash "$bench/compare-go.sh" -q -- "${server[@]}"
fi
