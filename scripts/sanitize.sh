#!/usr/bin/env bash
# Runs the tests under AddressSanitizer with the nightly toolchain, if this machine has one.
# (ThreadSanitizer needs an instrumented std, i.e. `-Zbuild-std` and the rust-src component,
# which the nightly here lacks; without it TSan reports races inside std's own atomics.)
#
#   scripts/sanitize.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustc +nightly --version >/dev/null 2>&1; then
  echo "no nightly toolchain: skipping sanitizers"; exit 0
fi
target=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export CARGO_TARGET_DIR=target/asan
# Doc tests are left out (rustdoc would need the sanitizer too), and so are the loom models:
# loom switches stacks, which ASan cannot follow (it warns, then reports loom's own state).
cargo +nightly test --target "$target" -p shmchan --lib --test process --test hostile "$@"
cargo +nightly test --target "$target" -p shmchan-cli --test cli "$@"
