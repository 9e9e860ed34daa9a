"""ViT train step: hfdl's ``vit-mnist`` against timm's ``VisionTransformer`` and transformers' ViT at equal dims.

The setting is issue 8's: 28 px single-channel images, 4x4 patches (49 patches and a class token), 128 dims,
4 blocks of 4 heads, MLP 512, 10 classes, batch 32, no dropout. The reference is timm's
``VisionTransformer(img_size=28, patch_size=4, in_chans=1, embed_dim=128, depth=4, num_heads=4, mlp_ratio=4,
num_classes=10)`` (fused ``scaled_dot_product_attention``, exact GELU, biases everywhere, layer norm eps 1e-6);
transformers' ``ViTForImageClassification`` at the same dims (sdpa attention, eps 1e-6 so that only the
implementation differs) is the second reference. All three have the same parameters, counted and printed, so
a difference in time is a difference in how the same function is computed.

One step is ``forward -> cross-entropy -> backward -> AdamW step -> zero_grad``, fp32, a fixed number of threads,
the same fused AdamW for everyone (timm's model returns logits, so its loss is ``F.cross_entropy``, what the two
others compute inside). The contenders run one step each in turn, round after round, so whatever else the machine
does falls on all alike; the figure is the median over the rounds and the ratio is each median over timm's.
FLOPs per step are counted with ``torch.utils.flop_counter`` on each contender's step (hfdl's classifier does less
work: its last block runs for the class token only); a 2048x2048 fp32 matmul measured in
the same run gives the machine's practical peak. ``--profile`` adds a ``torch.profiler`` table of where the time
of a step goes for hfdl and timm (the operators by self CPU time), to see what a faster model would change.
On a busy machine ``--threads 1`` gives steadier figures: with 2 threads every operator waits for whichever core
another process holds, and medians swing by 10x between contenders.

    python benchmarks/bench_vit_train_step.py --rounds 60
    python benchmarks/bench_vit_train_step.py --rounds 60 --compile --profile
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
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

import hfdl

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "vit_train_step.json"

VIT = {"image_size": 28, "patch_size": 4, "channels": 1, "hidden": 128, "layers": 4, "heads": 4, "mlp": 512}
BATCH_SIZE = 32
NUM_CLASSES = 10
TIMM = "timm VisionTransformer"
TRANSFORMERS = "transformers ViTForImageClassification"
HFDL = "hfdl vit-mnist"
TARGET_RATIO = 0.85


def timm_vit() -> torch.nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        img_size=VIT["image_size"],
        patch_size=VIT["patch_size"],
        in_chans=VIT["channels"],
        embed_dim=VIT["hidden"],
        depth=VIT["layers"],
        num_heads=VIT["heads"],
        mlp_ratio=VIT["mlp"] / VIT["hidden"],
        num_classes=NUM_CLASSES,
    )


def transformers_vit() -> torch.nn.Module:
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=VIT["image_size"],
        patch_size=VIT["patch_size"],
        num_channels=VIT["channels"],
        hidden_size=VIT["hidden"],
        num_hidden_layers=VIT["layers"],
        num_attention_heads=VIT["heads"],
        intermediate_size=VIT["mlp"],
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        layer_norm_eps=1e-6,
        num_labels=NUM_CLASSES,
    )
    config._attn_implementation = "sdpa"
    return ViTForImageClassification(config)


def contenders(compile_hfdl: bool) -> dict[str, torch.nn.Module]:
    """The models, reference first, each built from the same seed."""
    builders: dict[str, Callable[[], torch.nn.Module]] = {
        TIMM: timm_vit,
        HFDL: lambda: hfdl.create_model("vit-mnist"),
        TRANSFORMERS: transformers_vit,
    }
    if compile_hfdl:
        builders[f"{HFDL}, torch.compile"] = lambda: torch.compile(hfdl.create_model("vit-mnist"))
        builders[f"{TIMM}, torch.compile"] = lambda: torch.compile(timm_vit())
    models = {}
    for label, build in builders.items():
        torch.manual_seed(0)
        models[label] = build()
    return models


def make_step(label: str, model: torch.nn.Module, pixels: torch.Tensor, labels: torch.Tensor) -> Callable[[], None]:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    returns_logits = label.startswith("timm")

    def step() -> None:
        if returns_logits:
            loss = F.cross_entropy(model(pixels), labels)
        else:
            loss = model(pixel_values=pixels, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(BATCH_SIZE, VIT["channels"], VIT["image_size"], VIT["image_size"], generator=generator)
    return pixels, torch.randint(0, NUM_CLASSES, (BATCH_SIZE,), generator=generator)


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Practical fp32 matmul throughput of this machine with the current threads (best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    return 2 * size**3 / min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats)) / 1e9


def profile_step(step: Callable[[], None], steps: int = 10, rows: int = 15) -> dict:
    """Where a step's time goes: the operators with the most self CPU time over ``steps`` steps."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    averages = sorted(prof.key_averages(), key=lambda event: event.self_cpu_time_total, reverse=True)
    total = sum(event.self_cpu_time_total for event in averages)
    return {
        "table": prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows),
        "top_ops_ms_per_step": {event.key: event.self_cpu_time_total / 1000 / steps for event in averages[:rows]},
        "ms_per_step_profiled": total / 1000 / steps,
    }


def count_flops(steps: dict) -> dict[str, int]:
    """FLOPs of one step of each contender: hfdl's classifier runs its last block for the class token only, so it
    does less work than timm's and transformers' full last block, and each rate is computed from its own count."""
    flops = {}
    for label, step in steps.items():
        with FlopCounterMode(display=False) as counter:
            step()
        flops[label] = counter.get_total_flops()
    return flops


def run(rounds: int, warmup: int, compile_hfdl: bool, profile: bool) -> dict:
    models = contenders(compile_hfdl)
    counts = {label: sum(p.numel() for p in model.parameters()) for label, model in models.items()}
    if len(set(counts.values())) != 1:
        raise RuntimeError(f"The contenders must have equal parameter counts to be compared, got {counts}.")
    pixels, labels = batch()
    steps = {label: make_step(label, model, pixels, labels) for label, model in models.items()}
    flops = count_flops(steps)
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {label: [] for label in steps}
    for _ in range(rounds):
        for label, step in steps.items():
            times[label].append(_timed(step))
    medians = {label: statistics.median(samples) for label, samples in times.items()}
    result = {
        "reference": TIMM,
        "num_parameters": counts,
        "flops_per_step": flops,
        "rounds": rounds,
        "median_ms": {label: 1000 * value for label, value in medians.items()},
        # The fastest step is the closest to the code's own cost on a shared machine (as timeit reports).
        "min_ms": {label: 1000 * min(samples) for label, samples in times.items()},
        "ratio_to_reference": {label: value / medians[TIMM] for label, value in medians.items()},
        "gflops_per_s": {label: flops[label] / value / 1e9 for label, value in medians.items()},
    }
    if profile:
        result["profile"] = {label: profile_step(steps[label]) for label in (HFDL, TIMM)}
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time hfdl and timm under torch.compile")
    parser.add_argument("--profile", action="store_true", help="add a torch.profiler table for hfdl and timm")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    peak = matmul_peak_gflops()
    result = run(args.rounds, args.warmup, args.compile, args.profile)
    result["fraction_of_matmul_peak"] = {label: v / peak for label, v in result["gflops_per_s"].items()}
    ratio = result["ratio_to_reference"][HFDL]
    result["target_ratio"] = TARGET_RATIO
    result["meets_target"] = ratio <= TARGET_RATIO

    print("parameters: " + ", ".join(f"{label} {count:,}" for label, count in result["num_parameters"].items()))
    if "profile" in result:
        for label, profiled in result["profile"].items():
            print(f"\n{label}: {profiled['ms_per_step_profiled']:.1f} ms per profiled step\n{profiled['table']}")
    print(
        f"\nViT train step, batch {BATCH_SIZE}: {result['flops_per_step'][HFDL] / 1e9:.2f} GFLOP per hfdl step "
        f"({result['flops_per_step'][TIMM] / 1e9:.2f} for timm), median of "
        f"{args.rounds} interleaved rounds, {args.threads} threads"
    )
    print("| model | ms / step (median) | fastest | vs timm | GFLOP/s | of matmul peak |")
    print("|---|---:|---:|---:|---:|---:|")
    for label in result["median_ms"]:
        print(
            f"| {label} | {result['median_ms'][label]:.1f} | {result['min_ms'][label]:.1f} | "
            f"{result['ratio_to_reference'][label]:.3f}x | {result['gflops_per_s'][label]:.1f} | "
            f"{100 * result['fraction_of_matmul_peak'][label]:.1f} % |"
        )
    verdict = "met" if result["meets_target"] else "NOT met"
    print(f"\nhfdl / timm = {ratio:.3f}x; target <= {TARGET_RATIO}x {verdict}.")
    report = {
        "setting": {**VIT, "batch_size": BATCH_SIZE, "num_classes": NUM_CLASSES},
        "matmul_peak_gflops": peak,
        "threads": args.threads,
        **result,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"matmul peak {peak:.1f} GFLOP/s ({args.threads} threads); wrote {args.output}")
    return report


if __name__ == "__main__":
    main()
