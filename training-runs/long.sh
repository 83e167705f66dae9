#!/usr/bin/env bash
# Issue 12's long run, L3: the exact commands, resumable across sessions and machines.
#
#   nohup training-runs/long.sh >> ~/vqzip-runs/long.log 2>&1 &
#
# The run folder lives outside the tree (~/vqzip-runs/long/L3; a session kills what it started,
# each phase resumes from its state, saved every 250 steps). Each session lands the network as
# it stands in training-runs/L3/ (vqvae.safetensors, vqvae.json: `vqzip train snapshot`), so on
# a new machine without the folder this continues from those weights at the step they reached.
# Run it with the vqzip of a snapshot of the code (a worktree and its own venv: VQZIP=...), so
# that work on the tree does not change a run under way. Phase II starts from the priors landed
# in training-runs/L3-priors/ (trained on an earlier snapshot of the network), when there are any.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUN=${RUN:-$HOME/vqzip-runs/long/L3}
DATA=${DATA:-$here/../../shared/data/train}
VQZIP=${VQZIP:-vqzip}
LANDED=$here/L3
PRIORS=$here/L3-priors
PHASE1=(--steps 62000 --fine-stages 1 --padding zeros --rate 0.1)
mkdir -p "$RUN"
if [ ! -f "$RUN/vqvae.safetensors" ]; then
    if [ ! -f "$RUN/vqvae-state.pt" ] && [ ! -d "$RUN/init" ] && [ -f "$LANDED/vqvae.json" ]; then
        mkdir -p "$RUN/init" && cp "$LANDED/vqvae.safetensors" "$LANDED/vqvae.json" "$RUN/init/"
    fi
    # Continued from landed weights: new crops, and a longer warm-up for Adam's lost moments (after
    # 100 steps, L3 continued at step 6500 was 1.3 dB down at step 7000, and ahead again by 13000).
    if [ -f "$RUN/init/vqvae.json" ]; then
        start=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['steps_done'])" "$RUN/init/vqvae.json")
        "$VQZIP" train vqvae --data "$DATA" --out "$RUN" "${PHASE1[@]}" --init "$RUN/init" --start-step "$start" --seed "$start" --warmup 1000
    else
        "$VQZIP" train vqvae --data "$DATA" --out "$RUN" "${PHASE1[@]}"
    fi
fi
PHASE2=(--steps 12000 --fine-channels 64)
[ -f "$PRIORS/prior.json" ] && PHASE2+=(--init "$PRIORS")  # a saved state, once there is one, wins over it
[ -f "$RUN/prior.safetensors" ] || "$VQZIP" train prior --data "$DATA" --out "$RUN" "${PHASE2[@]}"
