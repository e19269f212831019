#!/usr/bin/env bash
# Moves one file through `shmchan send | shmchan recv` (two processes, one channel) and through
# `cat FILE | cat` (a pipe), back to back, several times, and prints the median of each and
# their ratio — twice: into /dev/null (the transport alone) and into a file on the same
# memory file system (transport plus allocating the copy). Every shmchan copy into a file is
# checked with cmp.
#
#   scripts/cli_vs_pipe.sh [SIZE_MIB] [RUNS]     (defaults: 1024 MiB, 5 runs)
#
# Input and outputs live in $SHMCHAN_BENCH_DIR (default /dev/shm: memory, so the disk is not
# what is measured); it needs about 3 × SIZE free.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
runs=${2:-5}
dir=${SHMCHAN_BENCH_DIR:-/dev/shm}
cargo build --release --quiet --bin shmchan
bin=target/release/shmchan
input=$(mktemp "$dir/shmchan-bench-in.XXXXXX")
out=$(mktemp "$dir/shmchan-bench-out.XXXXXX")
trap 'rm -f "$input" "$out"' EXIT
head -c $((size_mib << 20)) /dev/urandom > "$input"
name="bench-$$"

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { echo "$2 - $1" | bc -l; }

measure() { # $1: destination (a path, or /dev/null)
  local dest=$1 pipe_t=() chan_t=() t0 t1 p c
  for i in $(seq "$runs"); do
    [ "$dest" = /dev/null ] || rm -f "$dest"
    t0=$(now); cat "$input" | cat > "$dest"; t1=$(now)
    pipe_t+=("$(secs "$t0" "$t1")")
    [ "$dest" = /dev/null ] || rm -f "$dest"
    t0=$(now)
    "$bin" recv "$name" "$dest" --quiet &
    "$bin" send "$name" "$input" --quiet
    wait
    t1=$(now)
    chan_t+=("$(secs "$t0" "$t1")")
    if [ "$dest" != /dev/null ]; then
      cmp -s "$input" "$dest" || { echo "run $i: shmchan's copy differs from the input" >&2; exit 1; }
    fi
  done
  p=$(median "${pipe_t[@]}"); c=$(median "${chan_t[@]}")
  echo "into $dest: $size_mib MiB, $runs runs each, medians"
  printf '  cat FILE | cat          %6.3f s  %5.2f GB/s   runs: %s\n' "$p" "$(echo "$size_mib*1048576/$p/1000000000" | bc -l)" "${pipe_t[*]}"
  printf '  shmchan send | recv     %6.3f s  %5.2f GB/s   runs: %s\n' "$c" "$(echo "$size_mib*1048576/$c/1000000000" | bc -l)" "${chan_t[*]}"
  printf '  ratio (pipe time / shmchan time): %.2f\n' "$(echo "$p / $c" | bc -l)"
}

measure /dev/null
measure "$out"
