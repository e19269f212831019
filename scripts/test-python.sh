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
venv=${SHMCHAN_VENV:-$root/target/py-venv}
py=$venv/bin/python
if [ ! -x "$py" ]; then
  python3 -m venv "$venv"
fi
"$py" -m pip install --quiet --disable-pip-version-check -r crates/shmchan-py/requirements-dev.txt

# The Rust end of the cross-language tests.
cargo build --release --quiet --example python_peer

# The wheel, built and installed as a user gets it (not an editable install).
wheels=$root/target/wheels/python
rm -rf "$wheels"
"$venv/bin/maturin" build --release --quiet -m crates/shmchan-py/Cargo.toml -o "$wheels"
"$py" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/shmchan-*.whl

cd crates/shmchan-py
echo "ruff check, ruff format --check"
"$venv/bin/ruff" check python tests
"$venv/bin/ruff" format --check python tests
echo "mypy --strict (the package and its stub)"
"$venv/bin/mypy" --strict python/shmchan
echo "pytest"
SHMCHAN_RUST_PEER=$root/target/release/examples/python_peer \
  "$py" -m pytest -q -p no:cacheprovider --timeout 300 "$@" tests
