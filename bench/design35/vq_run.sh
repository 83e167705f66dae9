#!/usr/bin/env bash
# Issue 35's VQ design runs: each continues L3's network (training-runs/L3) for the same 3,000 steps of
# 16 crops of 128 px on one thread (equal CPU budget), resumable. The control is the same command with
# L3's own config (--fine-stages 1).
#   bench/design35/vq_run.sh control --fine-stages 1
#   bench/design35/vq_run.sh fine2 --fine-stages 2          # a second residual stage at the fine latent
# Run folders: $DESIGN (default ~/vqzip-runs/design), which also holds init/ (L3's network, copied once).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
DESIGN=${DESIGN:-$HOME/vqzip-runs/design}
name=$1; shift
mkdir -p "$DESIGN/init"
[ -f "$DESIGN/init/vqvae.json" ] || cp "$here/training-runs/L3/vqvae.safetensors" "$here/training-runs/L3/vqvae.json" "$DESIGN/init/"
cd "$DESIGN"
OMP_NUM_THREADS=1 exec vqzip train vqvae --data "$here/../shared/data/train" --out "$name" \
  --init init --padding zeros --rate 0.1 --steps 3000 --lr 3e-4 --warmup 200 --seed 35 --precision bf16 "$@" >> "$name.log" 2>&1
