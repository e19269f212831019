#!/usr/bin/env bash
# The negative control of the wake protocol: build the crate with the sleeper's membarrier
# left out (`--cfg shmchan_control`, a deliberately broken protocol) and require the
# cross-process race test to catch it, by hanging (the test's watchdog then fails it). If the
# broken build passed, the race test could not see the bug it is there for, and this fails.
#
#   scripts/control.sh [attempts]   (default 3; the broken build must fail every time)
set -euo pipefail
cd "$(dirname "$0")/.."
attempts=${1:-3}
export SHMCHAN_TEST_TIMEOUT=${SHMCHAN_TEST_TIMEOUT:-15}
# The hung runs' channels go in a directory of their own, removed at the end.
SHMCHAN_DIR=$(mktemp -d /dev/shm/shmchan-control.XXXXXX)
export SHMCHAN_DIR
trap 'rm -rf "$SHMCHAN_DIR" /tmp/shmchan-control.$$' EXIT
# A cfg, not a feature: no dependent crate can switch it on. Its own target directory keeps
# the broken build apart from the real one.
export RUSTFLAGS="${RUSTFLAGS:-} --cfg shmchan_control"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}/control
cargo build --release --quiet --test process
for i in $(seq "$attempts"); do
  if cargo test --release --quiet --test process -- \
       pingpong_race_membarrier >/tmp/shmchan-control.$$ 2>&1; then
    cat /tmp/shmchan-control.$$
    echo "control $i: the broken protocol PASSED the race test: the test cannot see lost wakeups"
    exit 1
  fi
  if ! grep -q "hang" /tmp/shmchan-control.$$; then
    cat /tmp/shmchan-control.$$
    echo "control $i: the test failed, but not by a hang"
    exit 1
  fi
  echo "control $i: the broken protocol hung, as it must ($(grep -m1 -o '[a-z_]*: did not exit[^)]*)' /tmp/shmchan-control.$$))"
done
