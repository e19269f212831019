# Sourced by scripts/test-python.sh and scripts/bench-python.sh: makes (once) the virtual
# environment (target/py-venv, or SHMCHAN_VENV), installs crates/shmchan-py/requirements-dev.txt,
# builds the wheel and installs it as a user gets it (not an editable install). Sets $py.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${SHMCHAN_VENV:-$root/target/py-venv}
py=$venv/bin/python
if [ ! -x "$py" ]; then
  python3 -m venv "$venv"
fi
"$py" -m pip install --quiet --disable-pip-version-check -r "$root/crates/shmchan-py/requirements-dev.txt"
wheels=$root/target/wheels/python
rm -rf "$wheels"
"$venv/bin/maturin" build --release --quiet -m "$root/crates/shmchan-py/Cargo.toml" -o "$wheels"
"$py" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/shmchan-*.whl
