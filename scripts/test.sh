#!/usr/bin/env bash
# Every test: the Rust workspace's (`cargo test`: unit, cross-process, CLI, loom models,
# hostile segments, memcheck, doctests), the zenoh bridge's (two bridge processes on
# loopback; release build, which builds zenoh once for all its tests), and the Python
# package's (scripts/test-python.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test
cargo test --release -p shmchan-zenoh
scripts/test-python.sh
