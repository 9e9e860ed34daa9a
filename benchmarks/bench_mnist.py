"""MNIST-10k benchmark of the image-classification recipe: accuracy, speed, and overhead over a plain loop.

    python benchmarks/bench_mnist.py --data_dir ../shared/data/mnist-10k

Data: the 10,000 MNIST *test* images (the 60k training set is not available offline), split by
:func:`hfdl.data.load_image_classification_dataset` into a stratified 8,000 train / 2,000 test split with seed 0.
So the numbers are not comparable with results on the official 60k/10k split.

What it measures, in one process so that every number shares the machine's state:

(a) LeNet-5 (preset ``lenet5-modern``, dropout 0.2) trained by ``recipes/train_image_classifier.py`` with its
    defaults (AdamW, one-cycle schedule, batch 64): test accuracy for each seed, seconds per epoch.
(b) The MLP (preset ``mlp-mnist``) trained by the recipe on the same split: test accuracy.
(c) The same LeNet-5 trained by :func:`plain_loop.train_plain` (Adam 1e-3, constant, batch 64, the same
    preprocessed tensors): its accuracy after 10 epochs, and its training seconds per epoch against the recipe's,
    from back-to-back pairs of short runs (see :func:`measure_overhead`).

Prints a markdown table and writes ``benchmarks/results/mnist.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # MNIST comes from --data_dir; nothing may reach the Hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "recipes"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_image_classifier as recipe  # noqa: E402
from plain_loop import train_plain  # noqa: E402

from hfdl.data import TensorDictDataset, load_image_classification_dataset, preprocess_for_model  # noqa: E402
from hfdl.registry import resolve_preset  # noqa: E402

LENET_OVERRIDES = {"dropout": 0.2}
ACCURACY_TARGET = 0.98
OVERHEAD_LIMIT = 1.5
TIMING_EPOCHS = 3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=str(REPO_ROOT.parent / "shared" / "data" / "mnist-10k"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="One LeNet-5 recipe run per seed")
    parser.add_argument("--lenet_epochs", type=int, default=15)
    parser.add_argument("--mlp_epochs", type=int, default=15)
    parser.add_argument("--plain_epochs", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--timing_rounds", type=int, default=3, help="Back-to-back plain/recipe pairs for the ratio")
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results" / "mnist.json"))
    return parser.parse_args()


def run_recipe(data_dir: str, model: str, epochs: int, seed: int, batch_size: int, overrides: dict | None) -> dict:
    """Run the recipe in this process and return its results plus its wall-clock time."""
    with tempfile.TemporaryDirectory() as output_dir:
        argv = [
            "--model", model, "--dataset", data_dir, "--num_epochs", str(epochs), "--seed", str(seed),
            "--batch_size", str(batch_size), "--output_dir", output_dir,
        ]  # fmt: skip
        if overrides:
            argv += ["--config_overrides", json.dumps(overrides)]
        start = time.perf_counter()
        results = recipe.main(argv)
        results["wall_seconds"] = time.perf_counter() - start
    return results


@functools.cache
def lenet_tensors(data_dir: str) -> tuple[dict, dict]:
    """The recipe's data as tensors: same split, same image processor (lenet5-modern's, 32x32)."""
    spec, preset = resolve_preset("lenet5-modern")
    processor = spec.make_image_processor(spec.make_config(preset, **LENET_OVERRIDES))
    splits = preprocess_for_model(load_image_classification_dataset(data_dir, seed=0), processor)
    return TensorDictDataset.from_dataset(splits["train"]).tensors, TensorDictDataset.from_dataset(
        splits["test"]
    ).tensors


def run_plain(data_dir: str, epochs: int, seed: int, batch_size: int) -> dict:
    """The plain loop on the recipe's data with the recipe's model config."""
    spec, preset = resolve_preset("lenet5-modern")
    train, test = lenet_tensors(data_dir)
    torch.manual_seed(seed)
    model = spec.task("image-classification").model_class(spec.make_config(preset, **LENET_OVERRIDES))
    return train_plain(model, train, test, num_epochs=epochs, batch_size=batch_size, seed=seed)


def measure_overhead(data_dir: str, rounds: int, batch_size: int) -> list[tuple[float, float]]:
    """(plain, recipe) seconds per epoch of the same LeNet-5, batch size and tensors, measured back to back.

    The machine is shared, so a slow patch of minutes can hit one measurement and not the other; pairing runs that
    follow each other and taking each run's fastest epoch keeps the ratio about the code, not the neighbours.
    """
    pairs = []
    for round_index in range(rounds):
        plain = run_plain(data_dir, TIMING_EPOCHS, seed=round_index, batch_size=batch_size)
        recipe_run = run_recipe(data_dir, "lenet5-modern", TIMING_EPOCHS, round_index, batch_size, LENET_OVERRIDES)
        pairs.append((min(plain["epoch_seconds"]), min(recipe_run["train_epoch_seconds"])))
    return pairs


def main() -> dict:
    args = parse_args()
    if not Path(args.data_dir).is_dir():
        raise SystemExit(f"MNIST-10k not found at {args.data_dir}; pass --data_dir (folder of t10k-*-ubyte.gz files).")
    started = time.perf_counter()

    # (c) first: the plain loop also warms up torch's kernels, so the recipe is not charged for it.
    plain = run_plain(args.data_dir, args.plain_epochs, seed=0, batch_size=args.batch_size)
    lenet_runs = [
        run_recipe(args.data_dir, "lenet5-modern", args.lenet_epochs, seed, args.batch_size, LENET_OVERRIDES)
        for seed in args.seeds
    ]
    mlp = run_recipe(args.data_dir, "mlp-mnist", args.mlp_epochs, args.seeds[0], args.batch_size, None)
    overhead_pairs = measure_overhead(args.data_dir, args.timing_rounds, args.batch_size)

    lenet_accuracies = [run["eval_accuracy"] for run in lenet_runs]
    recipe_epoch_seconds = statistics.median(s for run in lenet_runs for s in run["train_epoch_seconds"])
    plain_epoch_seconds = statistics.median(plain["epoch_seconds"])
    overhead = statistics.median(recipe / plain for plain, recipe in overhead_pairs)
    report = {
        "data": "MNIST t10k (10,000 images), stratified 8,000 train / 2,000 test, seed 0",
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_at_end": os.getloadavg(),
        },
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "command": "python benchmarks/bench_mnist.py " + " ".join(sys.argv[1:]),
        "lenet5": {
            "preset": "lenet5-modern",
            "config_overrides": LENET_OVERRIDES,
            "recipe_args": {"num_epochs": args.lenet_epochs, "batch_size": args.batch_size, **_recipe_defaults()},
            "seeds": args.seeds,
            "test_accuracy": dict(zip(map(str, args.seeds), lenet_accuracies)),
            "test_accuracy_median": statistics.median(lenet_accuracies),
            "test_accuracy_min": min(lenet_accuracies),
            "test_f1_macro": dict(zip(map(str, args.seeds), (run["eval_f1_macro"] for run in lenet_runs))),
            "train_seconds_per_epoch": recipe_epoch_seconds,
            "wall_seconds_per_run": [run["wall_seconds"] for run in lenet_runs],
            "target_accuracy": ACCURACY_TARGET,
            "meets_target": min(lenet_accuracies) >= ACCURACY_TARGET,
        },
        "mlp": {
            "preset": "mlp-mnist",
            "num_epochs": args.mlp_epochs,
            "test_accuracy": mlp["eval_accuracy"],
            "test_f1_macro": mlp["eval_f1_macro"],
            "train_seconds_per_epoch": mlp["train_seconds_per_epoch"],
        },
        "plain_loop": {
            "optimizer": "Adam 1e-3, constant, no augmentation",
            "num_epochs": args.plain_epochs,
            "test_accuracy": plain["accuracies"][-1],
            "train_epoch_seconds": plain["epoch_seconds"],
            "train_seconds_per_epoch": plain_epoch_seconds,
        },
        "recipe_over_plain_time_ratio": overhead,
        "overhead_method": (
            f"{args.timing_rounds} rounds, each a plain-loop run then a recipe run of {TIMING_EPOCHS} epochs, back to "
            "back; per run the fastest epoch (as timeit does, since other jobs share the CPU); ratio = median over "
            "rounds of recipe/plain"
        ),
        "overhead_pairs_seconds": [{"plain": plain, "recipe": recipe} for plain, recipe in overhead_pairs],
        "recipe_over_plain_median_epoch_ratio": recipe_epoch_seconds / plain_epoch_seconds,
        "overhead_limit": OVERHEAD_LIMIT,
        "meets_overhead_limit": overhead <= OVERHEAD_LIMIT,
        "total_seconds": time.perf_counter() - started,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(report))
    print(f"\nWrote {output}")
    return report


def _recipe_defaults() -> dict:
    defaults = recipe.parse_args([])
    names = ("optimizer", "learning_rate", "lr_scheduler", "weight_decay", "logging_steps", "report_to")
    return {name: getattr(defaults, name) for name in names}


def markdown_table(report: dict) -> str:
    lenet, mlp, plain = report["lenet5"], report["mlp"], report["plain_loop"]
    per_seed = ", ".join(f"{100 * value:.2f}" for value in lenet["test_accuracy"].values())
    rows = [
        ("LeNet-5 (lenet5-modern), recipe", f"{100 * lenet['test_accuracy_median']:.2f} (seeds: {per_seed})",
         f"{lenet['train_seconds_per_epoch']:.2f}", lenet["recipe_args"]["num_epochs"]),
        ("LeNet-5, plain PyTorch loop (Adam 1e-3)", f"{100 * plain['test_accuracy']:.2f}",
         f"{plain['train_seconds_per_epoch']:.2f}", plain["num_epochs"]),
        ("MLP (mlp-mnist), recipe", f"{100 * mlp['test_accuracy']:.2f}", f"{mlp['train_seconds_per_epoch']:.2f}",
         mlp["num_epochs"]),
    ]  # fmt: skip
    lines = [
        "| model | test accuracy % | train s/epoch | epochs |",
        "|---|---|---|---|",
        *(f"| {name} | {accuracy} | {seconds} | {epochs} |" for name, accuracy, seconds, epochs in rows),
        "",
        f"Recipe / plain loop time per epoch: **{report['recipe_over_plain_time_ratio']:.2f}x** "
        f"(limit {report['overhead_limit']}x). LeNet-5 target >= {100 * lenet['target_accuracy']:.1f} %: "
        f"{'met on every seed' if lenet['meets_target'] else 'MISSED on at least one seed'}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
