#!/usr/bin/env bash
# Every chapter notebook under nbval (step 2 of tests/run.sh), in two lanes at one thread each.
#
# Why two lanes: on the course's 2-core CPU two one-thread processes get through the notebooks' work
# faster than one two-thread process (small convolutions and Inception batches use a second thread
# poorly; benchmarks/notebook_lanes.py measures it), so the nine notebooks finish minutes sooner. Each
# lane runs its chapters in order; a chapter that loads a model of the other lane waits until that
# chapter has finished (passed or failed: a failure is reported, and the waiting chapter then trains
# what it misses itself, as a reader's run would). The lanes share the run's course cache, whose
# writes are atomic per process.
#
#   lane A: 03 -> 04 -> 05 -> 08
#   lane B: 01 -> 02 -> 06 (waits for 03: chapter 3's U-Net) -> 09 -> 07 (waits for 05: its classifier)
#
# The order within a lane is the course's order wherever a chapter needs an earlier one of its lane.
# Arguments are passed to every pytest call. Exits non-zero when any notebook failed.
# Serially, as an instructor's CI may prefer: pytest chapters --nbval-lax ... (book/instructors.md).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

LANE_A=(03_ddpm 04_ddim 05_cfg 08_flow_matching)
LANE_B=(01_swiss_roll 02_vae "06_latent_diffusion:03_ddpm" 09_lcm "07_dit:05_cfg")
all=("${LANE_A[@]%%:*}" "${LANE_B[@]%%:*}")
missing=$(comm -3 <(ls -d chapters/[0-9][0-9]_*/ | xargs -n1 basename | sort) \
                  <(printf '%s\n' "${all[@]}" | sort))
if [ -n "$missing" ]; then
  echo "tests/run_notebooks.sh: the lanes and chapters/ disagree on: $missing" >&2
  echo "(every chapter folder must be in exactly one lane)" >&2
  exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/course-lanes.XXXXXX")"
trap 'rm -rf "$work"' EXIT
start=$SECONDS
clock() { echo "$(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s"; }  # since the start

lane() {  # lane NAME CHAPTER[:WAITS_FOR] ...
  local name=$1; shift
  local entry chapter dep status
  for entry in "$@"; do
    chapter=${entry%%:*}; dep=${entry#*:}
    if [ "$dep" != "$entry" ]; then
      while [ ! -e "$work/$dep.done" ]; do sleep 2; done
    fi
    echo "[$(clock)] lane $name: $chapter"
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m pytest "chapters/$chapter" -p no:cacheprovider \
      "${PYTEST_ARGS[@]}" > "$work/$chapter.log" 2>&1
    status=$?
    echo "$status" > "$work/$chapter.done"
    echo "[$(clock)] lane $name: $chapter" \
         "$([ "$status" = 0 ] && echo passed || echo "FAILED (exit $status)")"
  done
}

PYTEST_ARGS=("$@")
lane A "${LANE_A[@]}" &
pid_a=$!
lane B "${LANE_B[@]}" &
pid_b=$!
wait "$pid_a" "$pid_b"

failed=0
for chapter in $(printf '%s\n' "${all[@]}" | sort); do  # the logs in the course's order
  echo; echo "--- chapters/$chapter"
  cat "$work/$chapter.log"
  [ "$(cat "$work/$chapter.done" 2>/dev/null)" = 0 ] || failed=1
done
echo
echo "${#all[@]} notebooks in two lanes: $(clock)," \
     "$([ $failed = 0 ] && echo "all passed" || echo "SOME FAILED (see above)")"
exit $failed
