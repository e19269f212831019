#!/usr/bin/env bash
# Same-run A/B of the cross-process rate: crates/bench/ab/cross_rate.rs built against the
# library of commit BASE and against the working tree (or commit HEAD), then run
# alternately, ROUNDS times each, the order rotating every round so that neither side
# always runs first. Prints every run, each side's median, and the median of the paired
# ratios B/A. Rates are the consumer's, in millions of u64 per second.
#
#   scripts/ab.sh BASE [--head COMMIT] [--rounds N] [CASE...]
#   CASE is MODE:BATCH (MODE blocking or async); default blocking:4096 blocking:8192 async:4096
#   ITEMS in the environment sets the items per run (default 200 000 000).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
base=${1:?usage: scripts/ab.sh BASE [--head COMMIT] [--rounds N] [CASE...]}; shift
head="" rounds=7
while [ $# -gt 0 ]; do
  case $1 in
    --head) head=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || set -- blocking:4096 blocking:8192 async:4096
items=${ITEMS:-200000000}
work=${AB_DIR:-$root/target/ab}
mkdir -p "$work"

# $1 side (a or b), $2 commit or empty for the working tree: builds $work/$1/bin.
build() {
  local dir=$work/$1 src
  rm -rf "$dir" "$work/lib-$1" && mkdir -p "$dir/src"
  if [ -n "$2" ]; then
    # The whole tree of that commit (the library's manifest may take its version and
    # dependencies from its workspace), beside the program's directory, not in it: one
    # workspace may not hold another.
    src=$work/lib-$1
    mkdir -p "$src" && git -C "$root" archive "$2" | tar -x -C "$src"
  else
    src=$root
  fi
  cp "$root/crates/bench/ab/cross_rate.rs" "$dir/src/main.rs"
  cat >"$dir/Cargo.toml" <<TOML
[package]
name = "ab-$1"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
shmchan = { path = "$src" }
libc = "0.2"
tokio = { version = "1", features = ["rt"] }
[profile.release]
debug = 1
[workspace]
TOML
  cargo build --release --quiet --manifest-path "$dir/Cargo.toml" --target-dir "$work/target"
  cp "$work/target/release/ab-$1" "$dir/bin"
}
build a "$base"
build b "$head"
echo "# A = $(git rev-parse --short "$base"), B = ${head:-working tree of $(git rev-parse --short HEAD)}; $rounds rounds, $items items, $(nproc) CPUs"

for case in "$@"; do
  mode=${case%%:*} batch=${case#*:}
  ra=() rb=()
  for ((i = 0; i < rounds; i++)); do
    if (( i % 2 == 0 )); then order="a b"; else order="b a"; fi
    for side in $order; do
      r=$("$work/$side/bin" "$mode" "$batch" "$items")
      if [ "$side" = a ]; then ra+=("$r"); else rb+=("$r"); fi
    done
  done
  python3 - "$case" "${ra[*]}" "${rb[*]}" <<'PY'
import statistics, sys
case, a, b = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
ratios = [y / x for x, y in zip(a, b)]
print(f"{case:>15}  A {' '.join(f'{x:7.1f}' for x in a)}")
print(f"{'':>15}  B {' '.join(f'{x:7.1f}' for x in b)}")
print(f"{'':>15}  median A {statistics.median(a):.1f}, B {statistics.median(b):.1f} M items/s;"
      f" B/A per round: median {statistics.median(ratios):.3f}, range {min(ratios):.3f}..{max(ratios):.3f}")
PY
done
