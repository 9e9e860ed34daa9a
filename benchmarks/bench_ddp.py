"""Data-parallel training on CPU: seconds per epoch of one process against two (DDP, gloo) at the same global batch.

    python benchmarks/bench_ddp.py                       # ViT (vit-mnist) on MNIST-10k, image recipe, 2 epochs
    python benchmarks/bench_ddp.py --recipe transfer -- --model MODEL_DIR --mode lora ...

Both runs go through ``accelerate launch`` with the same recipe, data and global batch (``--global_batch_size``,
split evenly over the processes), the same number of epochs and the same seed; every run gets the same two cores:
one process with two threads, or two processes with one thread each (``OMP_NUM_THREADS``), so the ratio is what
data parallelism itself costs or saves on this machine (all-reduce of the gradients every step, two smaller matrix
products instead of one larger one), not a difference in hardware. On GPUs, where each process has its own device,
the same command scales with the number of GPUs instead (see ``recipes/accelerate_configs/README.md``).

The figure is the recipe's own ``train_seconds_per_epoch`` (median over epochs, evaluation excluded), read from
``all_results.json``; the first epoch includes warm-up, so use two or more. Writes ``benchmarks/results/ddp.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"image": "recipes/train_image_classifier.py", "transfer": "recipes/transfer.py"}
DEFAULT_ARGS = {
    "image": ["--model", "vit-mnist", "--dataset", str(REPO_ROOT.parent / "shared" / "data" / "mnist-10k")],
    "transfer": [],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(recipe: str, processes: int, args: argparse.Namespace, extra: list[str], output_dir: Path) -> dict:
    """One ``accelerate launch`` of the recipe on ``processes`` CPU processes sharing the machine's two cores."""
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [str(accelerate), "launch", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    if processes > 1:
        command += ["--multi_gpu", "--num_processes", str(processes), "--main_process_port", str(free_port())]
    else:
        command += ["--num_processes", "1"]
    command += [str(REPO_ROOT / RECIPES[recipe]), *DEFAULT_ARGS[recipe], *extra]
    command += ["--batch_size", str(args.global_batch_size // processes), "--num_epochs", str(args.num_epochs)]
    command += ["--output_dir", str(output_dir), "--report_to", "none", "--seed", "0"]
    threads = max(1, args.cores // processes)
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "1",
        "OMP_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO_ROOT)
    wall = time.perf_counter() - start
    if completed.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr[-4000:]}")
    results = json.loads((output_dir / "all_results.json").read_text())
    return {
        "processes": processes,
        "threads_per_process": threads,
        "batch_size_per_process": args.global_batch_size // processes,
        "train_seconds_per_epoch": results["train_seconds_per_epoch"],
        "train_epoch_seconds": results.get("train_epoch_seconds"),
        "eval_accuracy": results.get("eval_accuracy"),
        "wall_seconds": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="image")
    parser.add_argument("--global_batch_size", type=int, default=64, help="Split evenly over the processes")
    parser.add_argument("--num_epochs", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2, help="Threads shared out among the processes")
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results" / "ddp.json"))
    args, extra = parser.parse_known_args()
    extra = [item for item in extra if item != "--"]
    if args.global_batch_size % args.processes:
        parser.error(f"--global_batch_size {args.global_batch_size} must divide by --processes {args.processes}")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for processes in (1, args.processes):
            runs.append(run(args.recipe, processes, args, extra, Path(tmp) / f"p{processes}"))
            print(json.dumps(runs[-1]))
    single, multi = runs
    report = {
        "benchmark": "ddp",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "recipe": RECIPES[args.recipe],
        "recipe_args": DEFAULT_ARGS[args.recipe] + extra,
        "global_batch_size": args.global_batch_size,
        "num_epochs": args.num_epochs,
        "runs": runs,
        "ratio_seconds_per_epoch": round(multi["train_seconds_per_epoch"] / single["train_seconds_per_epoch"], 3),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
    }
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(
        "| processes | threads each | batch each | s/epoch | accuracy |\n|---|---|---|---|---|\n"
        + "\n".join(
            f"| {r['processes']} | {r['threads_per_process']} | {r['batch_size_per_process']} | "
            f"{r['train_seconds_per_epoch']:.1f} | {r['eval_accuracy']} |"
            for r in runs
        )
        + f"\n{args.processes} processes / 1 process: {report['ratio_seconds_per_epoch']}x the time per epoch"
    )


if __name__ == "__main__":
    main()
