#!/usr/bin/env bash
# Client-port gRPC throughput: h2load against detcd's transport (in-memory fake KV) and, when installed, against
# etcd itself. Usage: scripts/rpc_bench.sh [-n requests] [--cpu-prof]. Needs h2load (Debian nghttp2-client).
set -euo pipefail
cd "$(dirname "$0")/.."
N=50000
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N="$2"; shift 2 ;;
    *) echo "usage: $0 [-n requests]" >&2; exit 2 ;;
  esac
done
DENO="${DENO:-$(command -v deno || echo /tmp/denoinst/node_modules/.bin/deno)}"
command -v h2load >/dev/null || { echo "h2load not found (apt-get install nghttp2-client)" >&2; exit 1; }
WORK="$(mktemp -d /tmp/rpc_bench.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { "$DENO" eval 'const l = Deno.listen({hostname: "127.0.0.1", port: 0}); console.log(l.addr.port); l.close();'; }

wait_for() { # file, text
  for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timeout waiting for $2 in $1" >&2; cat "$1" >&2; exit 1
}

# One h2load run; prints req/s, fails unless every request succeeded.
load() { # port path payload requests
  h2load -n "$4" -c 10 -m 10 -H 'content-type: application/grpc' -H 'te: trailers' -d "$3" \
    "http://127.0.0.1:$1$2" >"$WORK/h2load.out" 2>&1 || return 1
  grep -q "succeeded, 0 failed" "$WORK/h2load.out" || return 1
  awk '/^finished in/ { gsub(",", "", $4); print $4 }' "$WORK/h2load.out"
}

# One server (rpc/h2) for both figures: warm-up run, then the measured runs; it must still be alive afterwards
# (node:http2 used to abort on client GOAWAYs, denoland/deno#36788).
DPORT=$(free_port)
"$DENO" run -A scripts/rpc_bench_server.ts "$DPORT" "$WORK" >"$WORK/detcd.log" 2>&1 &
DPID=$!
PIDS+=("$DPID")
wait_for "$WORK/detcd.log" ready
load "$DPORT" /etcdserverpb.KV/Range "$WORK/range.bin" $((N / 5)) >/dev/null
D_RANGE=$(load "$DPORT" /etcdserverpb.KV/Range "$WORK/range.bin" "$N")
D_PUT=$(load "$DPORT" /etcdserverpb.KV/Put "$WORK/put.bin" "$N")
kill -0 "$DPID" 2>/dev/null || { echo "detcd server died: $(head -3 "$WORK/detcd.log")" >&2; exit 1; }
printf 'detcd rpc  Range: %10.0f req/s   Put: %10.0f req/s   (h2load -n %s -c 10 -m 10)\n' "$D_RANGE" "$D_PUT" "$N"

if command -v etcd >/dev/null; then
  EPORT=$(free_port); PPORT=$(free_port)
  etcd --name bench --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$EPORT" \
    --advertise-client-urls "http://127.0.0.1:$EPORT" --listen-peer-urls "http://127.0.0.1:$PPORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$PPORT" --initial-cluster "bench=http://127.0.0.1:$PPORT" \
    --log-level error >"$WORK/etcd.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$EPORT/health" >/dev/null 2>&1 && break; sleep 0.1
  done
  curl -sf -XPOST "http://127.0.0.1:$EPORT/v3/kv/put" -d '{"key":"Zm9v","value":"YmFy"}' >/dev/null
  load "$EPORT" /etcdserverpb.KV/Range "$WORK/range.bin" $((N / 5)) >/dev/null
  E_RANGE=$(load "$EPORT" /etcdserverpb.KV/Range "$WORK/range.bin" "$N")
  E_PUT=$(load "$EPORT" /etcdserverpb.KV/Put "$WORK/put.bin" "$N")
  printf 'etcd %-5s Range: %10.0f req/s   Put: %10.0f req/s\n' "$(etcd --version | awk 'NR==1{print $3}')" "$E_RANGE" "$E_PUT"
  awk -v a="$D_RANGE" -v b="$E_RANGE" -v c="$D_PUT" -v d="$E_PUT" \
    'BEGIN { printf "detcd/etcd  Range: %.2fx   Put: %.2fx\n", a / b, c / d }'
else
  echo "etcd not installed: no comparison (apt-get install etcd-server)"
fi
