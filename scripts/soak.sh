#!/usr/bin/env bash
# Soak: 10^10 items (default) through two processes, the reader killed with SIGKILL and
# restarted at random moments (every 50 ms to 2 s), every item checked. Not part of CI.
#
#   scripts/soak.sh [ITEMS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
items=${1:-10000000000}
seed=${2:-$RANDOM}
cargo build --release --quiet -p shmchan-peers --bin soak
echo "soak: $items items, seed $seed"
stats=$(mktemp)
trap 'rm -f "$stats"' EXIT
/usr/bin/time -v -o "$stats" target/release/soak --items "$items" --seed "$seed"
grep -E "Elapsed|Maximum resident" "$stats"
