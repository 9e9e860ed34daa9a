#!/usr/bin/env bash
# Seconds per epoch of each generative recipe, alone on the machine with 2 torch threads, on MNIST-10k's 8,000
# training images (the README's generative table). Run from the repository root on an otherwise idle machine:
#     bash benchmarks/time_generative_recipes.sh [DATA_DIR]
# Prints: name, the recipe's train_seconds_per_epoch (the median epoch), every epoch's seconds.
set -euo pipefail
DATA=${1:-../shared/data/mnist-10k}
PYTHON=${PYTHON:-.venv/bin/python}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
export OMP_NUM_THREADS=2
run() {
    local name=$1
    shift
    "$PYTHON" "$@" --dataset "$DATA" --seed 0 --report_to none --output_dir "$OUT/$name" > "$OUT/$name.log" 2>&1
    "$PYTHON" -c "import json, sys; r = json.load(open(sys.argv[2])); print(sys.argv[1], r['train_seconds_per_epoch'], r['train_epoch_seconds'])" "$name" "$OUT/$name/all_results.json"
}
run ae recipes/train_autoencoder.py --model ae-mnist --num_epochs 3
run vae recipes/train_autoencoder.py --model vae-mnist --num_epochs 3 --binarize dynamic
run vae2d recipes/train_autoencoder.py --model vae-mnist-2d --num_epochs 3 --binarize dynamic
run gan recipes/train_gan.py --model gan-mnist --num_epochs 2
run gan_sn recipes/train_gan.py --model gan-mnist --num_epochs 2 --spectral_norm
run dcgan recipes/train_gan.py --model dcgan-mnist --num_epochs 2
run cgan recipes/train_gan.py --model cgan-mnist --num_epochs 2
run ddpm recipes/train_ddpm.py --num_epochs 1 --ema_decay 0.999
