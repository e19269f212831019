#!/usr/bin/env bash
# The benchmark suite in one run, all from the `shmchan-bench` package (crates/bench, built
# only here and kept out of the library's build): `shmchan-bench suite` (shmchan next to
# pipes, a Unix socket, memcpy, rtrb and tokio's mpsc; latency; idle CPU; system calls), its
# plot, and `shmchan-bench iceoryx2` (the comparison with iceoryx2). Results go to stdout and
# to target/bench/ (JSON and plot of the suite). Last, `shmchan-bench bridge`: the zenoh bridge
# on loopback against raw zenoh and TCP.
#
#   scripts/bench.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
quick=${1:-}
mkdir -p target/bench
cargo build --release --quiet -p shmchan-bench -p shmchan-zenoh
bench=target/release/shmchan-bench
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -r), $(rustc --version)"
grep -m1 'model name' /proc/cpuinfo || true
$bench suite $quick --json target/bench/shmchan-bench.json
$bench plot target/bench/shmchan-bench.json target/bench/throughput.svg
echo "(plot: target/bench/throughput.svg)"
echo
$bench iceoryx2 $quick
echo
$bench bridge $quick
echo
if command -v valgrind >/dev/null; then $bench instructions; else echo "(no valgrind: instructions per pair skipped)"; fi
