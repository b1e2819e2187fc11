#!/usr/bin/env bash
# Measures the targets of docs/benchmarks.md ("Where they stand now", the
# latest session's), one run after another, each with the load average at
# its start and end:
#   make bench-targets            (OUT=DIR to keep the results elsewhere)
# Every run writes result.json and result.md under OUT/<name>. Takes about
# six minutes on two cores; run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${MPIM:-bin/mpim}
OUT=${OUT:-$(mktemp -d -t mpim-targets-XXXX)}
mkdir -p "$OUT"
echo "results in $OUT"
run() {
  local name=$1; shift
  echo "== $name: $B bench $* (load $(cut -d' ' -f1 /proc/loadavg))"
  "$B" bench "$@" --out "$OUT/$name" > "$OUT/$name.log" 2>&1
  echo "   load at the end $(cut -d' ' -f1 /proc/loadavg)"
  grep -E '^\| (raft|redis|centrifugo|[0-9] )' "$OUT/$name/result.md" | cut -c1-160 || true
}
run cp64peak --conns 64 --find-peak --reference raft --warmup 3s --duration 10s --direct
# "AP ≥ 0.6× Centrifugo" needs a centrifugo binary (make peers); without
# one the AP run goes without that reference.
cf=()
if [ -x "$(dirname "$B")/centrifugo" ] || command -v centrifugo >/dev/null; then cf=(--reference centrifugo); fi
run ap64peak --mode ap --conns 64 --find-peak "${cf[@]}" --warmup 3s --duration 10s --direct
run cp256 --conns 256 --reference raft --warmup 3s --duration 10s --direct
run ap256 --mode ap --conns 256 --warmup 3s --duration 10s --direct
run ap-at-500 --mode ap --conns 64 --rate 500 --warmup 3s --duration 10s --direct
run cp-at-500 --conns 64 --rate 500 --warmup 3s --duration 10s --direct
run cp-one-sender --conns 2 --senders 1 --duration 8s --direct --reference raft
run ap-one-sender --mode ap --conns 2 --senders 1 --duration 8s --direct
run group --conns 100 --group-size 100 --warmup 3s --duration 10s --direct
run failover --failover 10
grep -h 'median' "$OUT/failover/result.md" || true
run idle --idle --conns 19000 --procs 2 --gateways 1 --duration 15s
grep -h 'per connection' "$OUT/idle/result.md" || true
echo "== checker"
go test -run '^$' -bench Linearizable100k -benchtime 1x ./chaos/check | grep -E 'Benchmark|ok'
