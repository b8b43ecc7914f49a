#!/usr/bin/env bash
# One numatree-bench process per NUMA node, each bound to its node with
# hwloc-bind (CPUs and memory) and told to use only that node
# (NUMATREE_NODES), each ingesting its node's share of the series; their JSON
# reports are merged into one (numatree-bench-merge).
#
# Usage: scripts/bench-per-node.sh [--quick] [--out DIR] [numatree-bench flags...]
#   --quick     the tiny CI profile (default: the default profile)
#   --out DIR   where the reports go (default: target/numatree-bench/per-node-<time>)
# Only the default shape is split by node (--shapes default; a later
# --shapes flag overrides it). Any other flag is passed to every
# numatree-bench process. Exit status is
# non-zero if any process fails its verification.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
profile=(--profile default)
series=1024
out=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) profile=(--quick); series=256 ;;
    --out) out="$2"; shift ;;
    --series) series="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) extra+=("$1") ;;
  esac
  shift
done

if ! command -v hwloc-bind >/dev/null || ! command -v hwloc-calc >/dev/null; then
  echo "hwloc-bind not found: install it with 'apt-get install -y hwloc' (or run 'cargo xtask deps')" >&2
  exit 2
fi
nodes=$(hwloc-calc --number-of numanode machine:0)
if [ "$nodes" -lt 1 ]; then
  echo "hwloc reports no NUMA node" >&2
  exit 2
fi
per_node=$(( series / nodes ))
if [ "$per_node" -lt 1 ]; then
  echo "$series series cannot be split over $nodes nodes" >&2
  exit 2
fi
out=${out:-target/numatree-bench/per-node-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"

bin=${NUMATREE_BENCH_BIN:-target/release}
if [ ! -x "$bin/numatree-bench" ] || [ ! -x "$bin/numatree-bench-merge" ]; then
  echo "+ cargo build --release -p numatree-bench --bins"
  cargo build --release -p numatree-bench --bins
fi

echo "per-node benchmark: $nodes NUMA node(s), $per_node series each, reports in $out"
pids=()
for node in $(seq 0 $(( nodes - 1 ))); do
  echo "+ NUMATREE_NODES=$node hwloc-bind --cpubind node:$node --membind node:$node -- numatree-bench ${profile[*]} --series $per_node --shapes default ${extra[*]:-} --json $out/node$node.json --no-plot"
  NUMATREE_NODES=$node hwloc-bind --cpubind "node:$node" --membind "node:$node" -- \
    "$bin/numatree-bench" "${profile[@]}" --series "$per_node" --shapes default "${extra[@]}" \
    --json "$out/node$node.json" --no-plot > "$out/node$node.txt" 2> "$out/node$node.err" &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "node $i: numatree-bench failed (see $out/node$i.txt and $out/node$i.err):" >&2
    tail -5 "$out/node$i.txt" >&2 || true
    failed=1
  fi
done
[ "$failed" -eq 0 ] || exit 1
"$bin/numatree-bench-merge" "$out/combined.json" "$out"/node*.json
