"""Character-level GPT on tiny-shakespeare at nanoGPT's CPU configuration, trained by ``recipes/train_causal_lm.py``.

    python benchmarks/bench_char_gpt.py --data ../shared/data/tinyshakespeare/input.txt

nanoGPT's README trains this model on a laptop CPU with ``--device=cpu --compile=False --eval_iters=20
--block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000
--dropout=0.0`` on top of ``config/train_shakespeare_char.py`` (lr 1e-3, betas (0.9, 0.99), weight decay 0.1, 100
warmup steps, cosine to 1e-4, clip 1.0) and reports a validation loss of about 1.88. This runs the recipe's defaults,
which are exactly those settings (the ``gpt-char`` preset, 0.8M parameters, the first 90 % of the characters for
training and the last 10 % for validation), and checks the validation loss against :data:`VAL_LOSS_TARGET`.

One difference: labels are the inputs shifted inside the model, so a 64-token window gives 63 predictions where
nanoGPT's ``get_batch`` (65 tokens read) gives 64. Each evaluation reads the same 20 batches per split (nanoGPT draws
new ones each time).

Writes ``benchmarks/results/char_gpt.json``: validation and training loss, wall time, milliseconds per step (the
training steps alone, without evaluations and samples), the final sample, and the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "recipes"))

import train_causal_lm as recipe  # noqa: E402

#: nanoGPT's README: "validation loss of 1.88" for this configuration on CPU.
VAL_LOSS_TARGET = 1.88


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"))
    parser.add_argument("--seed", type=int, default=1337, help="nanoGPT's seed")
    parser.add_argument("--max_steps", type=int, default=2000)
    parser.add_argument("--eval_iters", type=int, default=20, help="nanoGPT's CPU run: 20 batches per split")
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results" / "char_gpt.json"))
    parser.add_argument("--output_dir", help="Keep the run here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    return parser.parse_args()


@torch.no_grad()
def full_validation_loss(model_dir: Path, text: str, block_size: int = 64) -> float:
    """The saved model's mean loss over the whole validation text, cut into consecutive windows of ``block_size``
    characters (every character but each window's first is predicted once): the 20-batch estimate's exact value."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = recipe.encode(AutoTokenizer.from_pretrained(model_dir), text, "validation")
    windows = ids[: len(ids) // block_size * block_size].view(-1, block_size)
    total, count = 0.0, 0
    for batch in windows.split(256):
        loss = model(input_ids=batch, labels=batch).loss.item()
        total += loss * batch.shape[0] * (block_size - 1)
        count += batch.shape[0] * (block_size - 1)
    return total / count


def main() -> dict:
    args = parse_args()
    if not Path(args.data).is_file():
        raise SystemExit(f"tiny-shakespeare not found at {args.data}; pass --data (karpathy/char-rnn's input.txt).")
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        output_dir = args.output_dir or str(Path(scratch) / "char-gpt")
        argv = ["--dataset", args.data, "--model", "gpt-char", "--tokenizer", "char", "--batch_size", "12"]
        argv += [
            "--max_steps",
            str(args.max_steps),
            "--eval_steps",
            "250",
            "--eval_iters",
            "20",
            "--seed",
            str(args.seed),
        ]
        argv += ["--output_dir", output_dir, "--report_to", "none", "--overwrite_output_dir"]
        start = time.perf_counter()
        results = recipe.main(argv)
        wall = time.perf_counter() - start
        log = [json.loads(line) for line in (Path(output_dir) / "train_log.jsonl").read_text().splitlines()]
        validation = recipe.load_text_corpus(args.data).validation
        full_val_loss = full_validation_loss(Path(output_dir) / "best", validation)
    evals = [
        {"step": e["step"], "train_loss": round(e["eval_train_loss"], 4), "val_loss": round(e["eval_loss"], 4)}
        for e in log
        if "eval_loss" in e
    ]
    report = {
        "what": "char-level GPT (gpt-char: 4 layers, 4 heads, 128 wide, context 64, dropout 0, no bias) on "
        "tiny-shakespeare, nanoGPT's CPU configuration: batch 12, 2,000 steps, AdamW 1e-3 (0.9, 0.99), weight "
        "decay 0.1, 100 warmup steps, cosine to 1e-4, clip 1.0; first 90 % of the characters train, last 10 % "
        "validation",
        "command": "python benchmarks/bench_char_gpt.py",
        "recipe_argv": argv[:-5],
        "target": {"val_loss_at_most": VAL_LOSS_TARGET, "source": "nanoGPT README, CPU run"},
        "val_loss": results["eval_loss"],
        "train_loss_estimate": results["eval_train_loss"],
        "best_val_loss": results["best_eval_loss"],
        "full_validation_loss_of_best": round(full_val_loss, 4),
        "val_next_char_accuracy": results["eval_accuracy"],
        "reached_target": results["eval_loss"] <= VAL_LOSS_TARGET,
        "wall_seconds": round(wall, 1),
        "train_seconds": round(results["train_seconds"], 1),
        "ms_per_step": round(results["ms_per_step"], 2),
        "num_parameters": results["num_parameters"],
        "evaluations": evals,
        "sample": results.get("sample"),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"val loss {report['val_loss']:.4f} (target <= {VAL_LOSS_TARGET}; whole validation text "
        f"{report['full_validation_loss_of_best']}), {report['wall_seconds']} s wall, "
        f"{report['ms_per_step']} ms/step; wrote {args.output}"
    )
    return report


if __name__ == "__main__":
    main()
