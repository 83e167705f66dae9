#!/usr/bin/env bash
# Restart the long run with N torch threads right after its next save (the resume is exact:
# weights, Adam's moments, the crop sampler's state). Measured on a 2-core AVX-512 machine, in
# seconds a phase I (L3) step: 2 threads 0.55-0.62 idle, 1.3-1.5 beside one thread of other work;
# 1 thread 1.06 idle, 0.9-1.1 beside it. So 1 while other work runs, 2 when the machine is free.
#
#   VQZIP=... DATA=... nohup training-runs/threads.sh 1 >/dev/null 2>&1 &
set -u
here=$(cd "$(dirname "$0")" && pwd)
N=$1
run=${RUN:-$HOME/vqzip-runs/long/L3}
# the phase training now saved last (not during `train rdo-codes`: its workers are processes, -j)
state=$(ls -t "$run"/*-state.pt "$run"-rdo/prior-state.pt "$run"-control/prior-state.pt 2>/dev/null | head -1)
[ -n "$state" ] || { echo "no saved state under $run" >&2; exit 1; }
saved=$(stat -c %Y "$state")
while [ "$(stat -c %Y "$state")" -eq "$saved" ]; do sleep 1; done
pkill -f training-runs/long.sh; pkill -f "vqzip train"
while pgrep -f "vqzip train" >/dev/null; do sleep 1; done
OMP_NUM_THREADS=$N nohup "$here/long.sh" >> "$HOME/vqzip-runs/long.log" 2>&1 &
echo "$(date +%T) restarted at $N threads after the save of $(date -d @"$(stat -c %Y "$state")" +%T)"
