#!/usr/bin/env bash
# Moving from etcd: Debian's etcd loads N keys (etcdbench, built by ../shared/bench/compare-go.sh) and stops; then, three
# rounds on fresh copies of its data dir, etcd restarts on one and detcd starts on another (importing etcd's bbolt
# backend), then restarts on its own files. Prints the seconds from exec to the first answered get of each start.
# usage: scripts/migrate_bench.sh [N keys, default 100000]
set -euo pipefail
N=${1:-100000}
ETCDBENCH=/tmp/etcdbench-build/etcdbench
[[ -x $ETCDBENCH ]] || { echo "$ETCDBENCH is missing; run ../shared/bench/compare-go.sh once to build it" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
flags=(--name m --listen-client-urls http://127.0.0.1:24891 --advertise-client-urls http://127.0.0.1:24891
  --listen-peer-urls http://127.0.0.1:24892 --initial-advertise-peer-urls http://127.0.0.1:24892
  --initial-cluster m=http://127.0.0.1:24892)
ctl() { ETCDCTL_API=3 etcdctl --endpoints 127.0.0.1:24891 --command-timeout=1s "$@"; }

etcd --data-dir "$work/src" "${flags[@]}" >"$work/src.log" 2>&1 &
pids=($!)
until ctl put probe x >/dev/null 2>&1; do sleep 0.1; done
"$ETCDBENCH" load -quiet -endpoints 127.0.0.1:24891 -keys "$N" -batch 100 >/dev/null
kill "${pids[0]}"; wait "${pids[0]}" || true
echo "etcd's data dir: $(du -sh "$work/src/member/snap/db" | cut -f1) backend, $(du -sh "$work/src/member/wal" | cut -f1) WAL"

first() { # name cmd...: seconds from exec to the first answered get
  local name=$1; shift
  local s e
  s=$(date +%s.%N)
  "$@" >"$work/$name.log" 2>&1 &
  pids=($!)
  until ctl get load/ --prefix --limit=1 >/dev/null 2>&1; do sleep 0.02; done
  e=$(date +%s.%N)
  printf '%-14s %6.2f s  %s\n' "$name" "$(echo "$e - $s" | bc)" "$(ctl get load/ --prefix --limit=1 -w json | grep -o '"count":[0-9]*')"
  kill "${pids[0]}"; wait "${pids[0]}" || true
}
for _ in 1 2 3; do
  rm -rf "$work/a" "$work/b"; cp -a "$work/src" "$work/a"; cp -a "$work/src" "$work/b"
  first "etcd restart" etcd --data-dir "$work/a" "${flags[@]}"
  first "detcd import" deno run -A "$root/main.ts" --data-dir "$work/b" "${flags[@]}"
  first "detcd restart" deno run -A "$root/main.ts" --data-dir "$work/b" "${flags[@]}"
done
