#!/usr/bin/env bash
# The benchmark suite in one run: `shmchan bench` (shmchan next to pipes, a Unix socket,
# memcpy, rtrb and tokio's mpsc; latency; idle CPU; system calls) and the comparison with
# iceoryx2 (the bench/ package, built only here). Results go to stdout and to
# target/bench/ (JSON of the first part).
#
#   scripts/bench.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
quick=${1:-}
mkdir -p target/bench
cargo build --release --quiet --bin shmchan
cargo build --release --quiet -p shmchan-bench
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -r), $(rustc --version)"
grep -m1 'model name' /proc/cpuinfo || true
target/release/shmchan bench $quick --json target/bench/shmchan-bench.json
target/release/shmchan-bench plot target/bench/shmchan-bench.json target/bench/throughput.svg
echo "(plot: target/bench/throughput.svg)"
echo
target/release/shmchan-bench $quick
