#!/usr/bin/env bash
# Coverage-guided fuzzing of hostile segment files (fuzz/fuzz_targets/segment.rs), for a
# bounded time, from the corpus kept in the repo (copied, so a run does not change the
# checkout; pass --keep to add what it finds to fuzz/corpus/). Needs the nightly toolchain;
# installs cargo-fuzz if it is missing.
#
#   scripts/fuzz.sh [SECONDS] [--keep]     (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
corpus=$(mktemp -d /tmp/shmchan-fuzz-corpus.XXXXXX)
trap 'rm -rf "$corpus" "$corpus.log"' EXIT
cp fuzz/corpus/segment/* "$corpus"/
cd fuzz
cargo +nightly fuzz build -O segment
# A crash, a panic or a hang (-timeout per input) fails the run and leaves the input in
# fuzz/artifacts/segment/.
log=$corpus.log
status=0
cargo +nightly fuzz run -O segment "$corpus" -- -max_total_time="$secs" -timeout=10 \
  -rss_limit_mb=4096 >"$log" 2>&1 || status=$?
grep -E '^(#[0-9]+ +DONE|Done)|ERROR|panicked' "$log" || tail -20 "$log"
if [ "${2:-}" = --keep ]; then cp -n "$corpus"/* corpus/segment/ 2>/dev/null || true; fi
rm -f "$log"
exit "$status"
