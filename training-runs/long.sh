#!/usr/bin/env bash
# Issue 12's long run, L3: the exact commands, resumable across sessions and machines.
# To train vqz-l3 again, run its recipe instead: `vqzip train run recipes/vqz-l3.toml --data DIR
# --out RUN` (every phase, the export and the ladder; docs/training.md#recipes). This script is
# kept as the record of how the shipped run was driven across sessions, and for what a recipe
# does not do: landing the weights in the tree (land.sh) to go on from them on another machine,
# and phase III's control.
#
#   nohup training-runs/long.sh >> ~/vqzip-runs/long.log 2>&1 &
#
# The run folder lives outside the tree (~/vqzip-runs/long/L3; a session kills what it started,
# each phase resumes from its state, saved every 250 steps). Run it with the vqzip of a snapshot
# of the code (a worktree and its own venv: VQZIP=...), so that work on the tree does not change
# a run under way. The phases:
#   I    the network, 62,000 steps. Each session lands it as it stands in training-runs/L3/
#        (`vqzip train snapshot`), so on a new machine without the folder this continues from
#        those weights at the step they reached (a new warm-up: Adam's moments are lost).
#   II   one prior per map on the network's nearest codes, 12,000 steps, from the priors landed
#        in training-runs/L3-priors/. Landed priors whose network.sha256 is the sha256 of this
#        network's vqvae.safetensors are this phase's own, and it goes on from their step;
#        others (trained on an earlier network) are only its starting point.
#   III  the priors fine-tuned on the codes RDO chooses under phase II's (`train rdo-codes`),
#        in $RUN-rdo, and a control fine-tuned as long on the nearest codes, in $RUN-control:
#        phase III ships only if it beats the control on the validation split
#        (bench/validate_rd.py, at the ladder's multipliers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUN=${RUN:-$HOME/vqzip-runs/long/L3}
DATA=${DATA:-$here/../../shared/data/train}
VQZIP=${VQZIP:-vqzip}
LANDED=$here/L3
PRIORS=$here/L3-priors
PHASE1_STEPS=62000
PHASE1=(--steps "$PHASE1_STEPS" --fine-stages 1 --padding zeros --rate 0.1)
PHASE2_STEPS=12000
PRIOR_SHAPE=(--fine-channels 64)
PHASE3=(--steps 2000 --lr 3e-4 "${PRIOR_SHAPE[@]}")
LAMBDAS=0,0.01,0.02,0.04

steps_done() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['steps_done'])" "$1"; }

# Phase I
mkdir -p "$RUN"
if [ ! -f "$RUN/vqvae.safetensors" ]; then
    if [ ! -f "$RUN/vqvae-state.pt" ] && [ ! -d "$RUN/init" ] && [ -f "$LANDED/vqvae.json" ]; then
        mkdir -p "$RUN/init" && cp "$LANDED/vqvae.safetensors" "$LANDED/vqvae.json" "$RUN/init/"
    fi
    if [ -f "$RUN/init/vqvae.json" ]; then
        start=$(steps_done "$RUN/init/vqvae.json")
        if [ "$start" -ge "$PHASE1_STEPS" ]; then  # the landed weights are the finished network
            cp "$RUN/init/vqvae.safetensors" "$RUN/init/vqvae.json" "$RUN/"
        else
            # Continued from landed weights: new crops, and a longer warm-up for Adam's lost moments
            # (after 100 steps, L3 continued at step 6500 was 1.3 dB down at step 7000).
            "$VQZIP" train vqvae --data "$DATA" --out "$RUN" "${PHASE1[@]}" --init "$RUN/init" --start-step "$start" --seed "$start" --warmup 1000
        fi
    else
        "$VQZIP" train vqvae --data "$DATA" --out "$RUN" "${PHASE1[@]}"
    fi
fi

# Phase II
if [ ! -f "$RUN/prior.safetensors" ]; then
    start=0
    if [ -f "$PRIORS/network.sha256" ] && [ "$(cat "$PRIORS/network.sha256")" = "$(sha256sum < "$RUN/vqvae.safetensors" | cut -c1-64)" ]; then
        start=$(steps_done "$PRIORS/prior.json")
    fi
    if [ "$start" -ge "$PHASE2_STEPS" ] && [ ! -f "$RUN/prior-state.pt" ]; then  # landed finished
        cp "$PRIORS/prior.safetensors" "$PRIORS/prior.json" "$RUN/"
        # the code maps phase III and export read, as phase II would have written them
        "$(dirname "$(command -v "$VQZIP")")/python3" -c "import sys; from pathlib import Path; from vqzip import data, training
from vqzip.training.priors import cached_codes
run = Path(sys.argv[1]); cached_codes(run, training.load_net(run), data.split(data.list_images(sys.argv[2]), 'train'))" "$RUN" "$DATA"
    elif [ "$start" -gt 0 ]; then
        "$VQZIP" train prior --data "$DATA" --out "$RUN" --steps "$PHASE2_STEPS" "${PRIOR_SHAPE[@]}" --init "$PRIORS" --start-step "$start" --seed "$start" --warmup 500
    else
        init=(); [ -f "$PRIORS/prior.json" ] && init=(--init "$PRIORS")  # a saved state, once there is one, wins over it
        "$VQZIP" train prior --data "$DATA" --out "$RUN" --steps "$PHASE2_STEPS" "${PRIOR_SHAPE[@]}" "${init[@]}"
    fi
fi

# Phase III and its control
if [ ! -f "$RUN-rdo/prior.safetensors" ]; then
    "$VQZIP" train rdo-codes --run "$RUN" --out "$RUN-rdo" --data "$DATA" --lambdas "$LAMBDAS" --jobs "${JOBS:-2}"
    "$VQZIP" train prior --data "$DATA" --out "$RUN-rdo" --init "$RUN" "${PHASE3[@]}"
fi
if [ ! -f "$RUN-control/prior.safetensors" ]; then
    mkdir -p "$RUN-control" && cp "$RUN/vqvae.safetensors" "$RUN/vqvae.json" "$RUN/codes.npz" "$RUN-control/"
    "$VQZIP" train prior --data "$DATA" --out "$RUN-control" --init "$RUN" "${PHASE3[@]}"
fi
