#!/usr/bin/env bash
# Coverage-guided fuzzing, for a bounded time each, from the corpora kept in the repo (copied,
# so a run does not change the checkout; --keep adds what it finds to fuzz/corpus/):
#   segment: hostile segment files (fuzz/fuzz_targets/segment.rs);
#   text:    the CLI's text parser (fuzz/fuzz_targets/text.rs).
# Needs the nightly toolchain; installs cargo-fuzz if it is missing. A crash, a panic or a
# hang (-timeout per input) fails the run and leaves the input in fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [--keep]     (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
keep=${2:-}
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
work=$(mktemp -d /tmp/shmchan-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd fuzz
status=0
for target in segment text; do
  mkdir -p "$work/$target"
  cp corpus/"$target"/* "$work/$target"/
  cargo +nightly fuzz build -O "$target"
  s=0
  cargo +nightly fuzz run -O "$target" "$work/$target" -- -max_total_time="$secs" \
    -timeout=10 -rss_limit_mb=4096 >"$work/$target.log" 2>&1 || s=$?
  echo "$target: $(grep -E '^Done' "$work/$target.log" || echo 'no summary')"
  if [ "$s" != 0 ]; then
    grep -E 'ERROR|panicked' "$work/$target.log" || tail -20 "$work/$target.log"
    status=$s
  fi
  if [ "$keep" = --keep ]; then cp -n "$work/$target"/* corpus/"$target"/ 2>/dev/null || true; fi
done
exit "$status"
