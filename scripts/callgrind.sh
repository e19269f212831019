#!/usr/bin/env bash
# Instructions per put+get pair on one thread, which repeat exactly on a noisy VM:
# callgrind on the put_get_loop example, the difference between two iteration counts.
#
#   scripts/callgrind.sh [BATCH...]        (default: 1 64)
#   scripts/callgrind.sh --bin PATH 1 64   (measure another build of put_get_loop)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/examples/put_get_loop
if [ "${1:-}" = --bin ]; then bin=$2; shift 2; else
  cargo build --release --quiet -p shmchan-bench --example put_get_loop
fi
[ $# -gt 0 ] || set -- 1 64
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # $1 iterations, $2 batch: instructions of the whole run
  ITERS=$1 valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" "$2" \
    >/dev/null 2>"$out/err"
  grep -o 'Collected : [0-9]*' "$out/err" | grep -o '[0-9]*'
}
for k in "$@"; do
  a=$(count 1000 "$k"); b=$(count 2000 "$k")
  echo "batch $k: $(( (b - a) / 1000 )) instructions per put+get"
done
