"""Transformer train steps: hfdl's GPT and BERT against transformers' GPT2LMHeadModel and BertForMaskedLM.

Two settings, from issue 7:

* **GPT** at nanoGPT's CPU configuration: 4 layers, 4 heads, 128 wide, context 64, batch 12, vocabulary 65, no
  dropout. The reference is ``GPT2LMHeadModel`` at equal dims (sdpa attention, its ``gelu_new`` and biases). hfdl
  runs three ways: the ``gpt-char`` preset (nanoGPT's choices: exact GELU, no biases); with GPT-2's own function
  (biases and the tanh GELU), so that only the implementation differs; and, with ``--compile``, ``gpt-char`` under
  ``torch.compile``.
* **BERT masked LM**: 4 layers, 128 hidden, 4 heads, 512 intermediate, vocabulary 1,000, sequence 64, batch 16,
  15 % of the positions labelled (-100 elsewhere), dropout 0.1 in both (and again with dropout 0). The reference is
  ``BertForMaskedLM`` (sdpa).

One step is ``forward (the model's own loss) -> backward -> AdamW step -> zero_grad``, fp32, a fixed number of
threads, the same fused AdamW for everyone. The contenders run one step each in turn, round after round, so whatever
else the machine does falls on all alike; the figure is the median over the rounds and the ratio is each median over
the reference's. FLOPs per step are counted with ``torch.utils.flop_counter`` on hfdl's step; a 2048x2048 fp32
matmul measured in the same run gives the machine's practical peak.

    python benchmarks/bench_transformer_train_step.py --rounds 40
    python benchmarks/bench_transformer_train_step.py --rounds 40 --compile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import hfdl

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "transformer_train_step.json"

GPT = {"layers": 4, "heads": 4, "hidden": 128, "context": 64, "batch": 12, "vocab": 65}
BERT = {"layers": 4, "heads": 4, "hidden": 128, "intermediate": 512, "sequence": 64, "batch": 16, "vocab": 1000}


def gpt_contenders(compile_hfdl: bool) -> dict[str, torch.nn.Module]:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=GPT["vocab"],
        n_positions=GPT["context"],
        n_embd=GPT["hidden"],
        n_layer=GPT["layers"],
        n_head=GPT["heads"],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    config._attn_implementation = "sdpa"
    contenders = {"transformers GPT2LMHeadModel": GPT2LMHeadModel(config)}
    torch.manual_seed(0)
    contenders["hfdl gpt-char"] = hfdl.create_model("gpt-char")
    torch.manual_seed(0)
    contenders["hfdl, GPT-2's function (biases, tanh GELU)"] = hfdl.create_model(
        "gpt-char", bias=True, hidden_act="gelu_pytorch_tanh"
    )
    if compile_hfdl:
        torch.manual_seed(0)
        contenders["hfdl gpt-char, torch.compile"] = torch.compile(hfdl.create_model("gpt-char"))
    return contenders


def bert_contenders(compile_hfdl: bool, dropout: float = 0.1) -> dict[str, torch.nn.Module]:
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=BERT["vocab"],
        hidden_size=BERT["hidden"],
        num_hidden_layers=BERT["layers"],
        num_attention_heads=BERT["heads"],
        intermediate_size=BERT["intermediate"],
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    config._attn_implementation = "sdpa"
    contenders = {"transformers BertForMaskedLM": BertForMaskedLM(config)}
    torch.manual_seed(0)
    drop = {"hidden_dropout": dropout, "attention_dropout": dropout}
    contenders["hfdl bert-course"] = hfdl.create_model("bert-course", task="fill-mask", **drop)
    if compile_hfdl:
        torch.manual_seed(0)
        contenders["hfdl bert-course, torch.compile"] = torch.compile(
            hfdl.create_model("bert-course", task="fill-mask", **drop)
        )
    return contenders


def make_step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> Callable[[], None]:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)

    def step() -> None:
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def gpt_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, GPT["vocab"], (GPT["batch"], GPT["context"]), generator=generator)
    return {"input_ids": ids, "labels": ids}


def bert_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, BERT["vocab"], (BERT["batch"], BERT["sequence"]), generator=generator)
    masked = torch.rand(ids.shape, generator=generator) < 0.15
    labels = torch.where(masked, ids, torch.full_like(ids, -100))
    return {"input_ids": ids.masked_fill(masked, 4), "attention_mask": torch.ones_like(ids), "labels": labels}


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Practical fp32 matmul throughput of this machine with the current threads (best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    return 2 * size**3 / min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats)) / 1e9


def run_setting(name: str, contenders: dict[str, torch.nn.Module], batch: dict, rounds: int, warmup: int) -> dict:
    reference = next(iter(contenders))
    counts = {label: sum(p.numel() for p in model.parameters()) for label, model in contenders.items()}
    steps = {label: make_step(model, batch) for label, model in contenders.items()}
    hfdl_label = next(label for label in contenders if label.startswith("hfdl"))
    with FlopCounterMode(display=False) as counter:
        steps[hfdl_label]()
    flops = counter.get_total_flops()
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {label: [] for label in steps}
    for _ in range(rounds):
        for label, step in steps.items():
            times[label].append(_timed(step))
    medians = {label: statistics.median(samples) for label, samples in times.items()}
    return {
        "setting": name,
        "reference": reference,
        "num_parameters": counts,
        "flops_per_step": flops,
        "rounds": rounds,
        "median_ms": {label: 1000 * value for label, value in medians.items()},
        "ratio_to_reference": {label: value / medians[reference] for label, value in medians.items()},
        "gflops_per_s": {label: flops / value / 1e9 for label, value in medians.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time hfdl under torch.compile")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = matmul_peak_gflops()
    settings = [
        run_setting("GPT, nanoGPT CPU config", gpt_contenders(args.compile), gpt_batch(), args.rounds, args.warmup),
        run_setting("BERT masked LM", bert_contenders(args.compile), bert_batch(), args.rounds, args.warmup),
        # Dropout's random numbers are a fifth of a step on a CPU, equal for both; without them the difference
        # between the implementations shows more plainly.
        run_setting(
            "BERT masked LM, dropout 0", bert_contenders(args.compile, 0.0), bert_batch(), args.rounds, args.warmup
        ),
    ]
    for setting in settings:
        setting["fraction_of_matmul_peak"] = {label: v / peak for label, v in setting["gflops_per_s"].items()}
        print(
            f"\n{setting['setting']}: {setting['flops_per_step'] / 1e9:.2f} GFLOP per step, median of "
            f"{setting['rounds']} interleaved rounds"
        )
        print("| model | ms / step | vs reference | GFLOP/s | of matmul peak |")
        print("|---|---:|---:|---:|---:|")
        for label in setting["median_ms"]:
            print(
                f"| {label} | {setting['median_ms'][label]:.1f} | {setting['ratio_to_reference'][label]:.3f}x | "
                f"{setting['gflops_per_s'][label]:.1f} | {100 * setting['fraction_of_matmul_peak'][label]:.1f} % |"
            )
    report = {
        "matmul_peak_gflops": peak,
        "threads": args.threads,
        "settings": settings,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nmatmul peak {peak:.1f} GFLOP/s ({args.threads} threads); wrote {args.output}")


if __name__ == "__main__":
    main()
