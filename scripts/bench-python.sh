#!/usr/bin/env bash
# Python's cross-process rates in one run (crates/bench/python/python_rates.py): shmchan
# (blocking, asyncio, zero-copy) against multiprocessing's Pipe and Queue, alternating
# rounds, medians. Uses the environment of scripts/test-python.sh.
#
#   scripts/bench-python.sh [--rounds N] [--mib M] [--singles K]
#   scripts/bench-python.sh --values [--rounds N] [--images N] [--small N]
#     (Python values instead: crates/bench/python/python_values.py, the object channel
#     against multiprocessing.Queue and hand-framed pickles)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=python-env.sh
source scripts/python-env.sh
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $("$py" --version), numpy $("$py" -c 'import numpy; print(numpy.__version__)')"
if [ "${1:-}" = --values ]; then
  shift
  "$py" crates/bench/python/python_values.py "$@"
else
  "$py" crates/bench/python/python_rates.py "$@"
fi
