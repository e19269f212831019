#!/usr/bin/env bash
# Every test: the Rust workspace's (`cargo test`: unit, cross-process, CLI, loom models,
# hostile segments, memcheck, doctests) and the Python package's (scripts/test-python.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test
scripts/test-python.sh
