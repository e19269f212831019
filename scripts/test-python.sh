#!/usr/bin/env bash
# The Python package's tests and checks, against the wheel as users install it:
#   ruff (lint and format), mypy --strict on the package and its stub, and pytest
#   (one process, asyncio, zero-copy views, and across processes with Python and Rust peers,
#   kill -9 and Ctrl-C included; every test under a watchdog).
# Makes (once) and uses a virtual environment, target/py-venv unless SHMCHAN_VENV says
# otherwise, with crates/shmchan-py/requirements-dev.txt.
#
#   scripts/test-python.sh [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=python-env.sh
source scripts/python-env.sh

# The Rust ends of the cross-language tests.
cargo build --release --quiet -p shmchan-peers -p shmchan-arrow-example --bin python_peer --bin arrow_ipc

cd crates/shmchan-py
echo "ruff check, ruff format --check"
"$venv/bin/ruff" check python tests examples ../bench/python
"$venv/bin/ruff" format --check python tests examples ../bench/python
echo "mypy --strict (the package and its stub; the examples, as user code of the installed package)"
"$venv/bin/mypy" --strict python/shmchan
"$venv/bin/mypy" --strict --ignore-missing-imports examples
echo "pytest"
SHMCHAN_RUST_PEER=$root/target/release/python_peer SHMCHAN_ARROW_PEER=$root/target/release/arrow_ipc \
  "$py" -m pytest -q -p no:cacheprovider --timeout 300 "$@" tests
