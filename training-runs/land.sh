#!/usr/bin/env bash
# Land the long run as it stands in the tree, so that a lost machine costs one session's
# training, not all of it (long.sh continues from what is landed). Run from the repository
# root with its vqzip on PATH, then run the tests and commit:
#
#   training-runs/land.sh          # RUN=~/vqzip-runs/long/L3, DATA=../shared/data/train
#
# Phase I under way: its last saved state becomes training-runs/L3/, after bench/run_curve.py
# measures it on the validation split (compare with the curve in the card before committing).
# Phase II under way or done: the priors as of their last save become training-runs/L3-priors/,
# with network.sha256 naming the network they belong to (long.sh goes on from their step only
# for that network), and the finished network becomes training-runs/L3/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUN=${RUN:-$HOME/vqzip-runs/long/L3}
DATA=${DATA:-$here/../../shared/data/train}
SNAP=${SNAP:-$HOME/vqzip-runs/snap}
rm -rf "$SNAP"
if [ ! -f "$RUN/vqvae.safetensors" ]; then
    vqzip train snapshot --run "$RUN" --out "$SNAP"
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} python "$here/../bench/run_curve.py" "$DATA" "$SNAP"
    cp "$SNAP/vqvae.safetensors" "$SNAP/vqvae.json" "$here/L3/"
    exit
fi
cp "$RUN/vqvae.safetensors" "$RUN/vqvae.json" "$here/L3/"
if [ -f "$RUN/prior.safetensors" ]; then
    cp "$RUN/prior.safetensors" "$RUN/prior.json" "$here/L3-priors/"
else
    vqzip train snapshot --run "$RUN" --phase prior --out "$SNAP"
    cp "$SNAP/prior.safetensors" "$SNAP/prior.json" "$here/L3-priors/"
fi
sha256sum < "$RUN/vqvae.safetensors" | cut -c1-64 > "$here/L3-priors/network.sha256"
echo "landed $(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['steps_done'])" "$here/L3-priors/prior.json") prior steps"
