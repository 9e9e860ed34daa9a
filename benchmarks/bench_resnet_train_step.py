"""ResNet-18 train step: hfdl against timm's ``resnet18`` (and torchvision's), interleaved in one run.

One train step is ``zero_grad -> forward -> cross-entropy -> backward -> SGD (momentum 0.9) step`` on a fixed random
batch, fp32 on CPU with a fixed number of threads, 10 classes. The same architecture is built three ways (hfdl's
``resnet18`` preset with ``num_labels=10``, ``timm.create_model("resnet18", num_classes=10)`` and torchvision's
``resnet18(num_classes=10)``; equal parameter counts are asserted), each also in ``channels_last`` memory format. The
contenders run one step each in turn, round after round, so that whatever else the machine does falls on all of them
alike; the figure is the median step time over the rounds, and the ratio is hfdl's median over timm's
(contiguous format, timm's default).

The FLOPs of one step are counted with ``torch.utils.flop_counter`` (forward + backward); dividing by the step time
gives the achieved GFLOP/s, and a 2048x2048 fp32 matmul measured in the same run gives the machine's practical peak.

    python benchmarks/bench_resnet_train_step.py                      # 32 px batch 64 and 64 px batch 32
    python benchmarks/bench_resnet_train_step.py --rounds 40 --output benchmarks/results/resnet_train_step.json
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

from hfdl.registry import create_model

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "resnet_train_step.json"
NUM_CLASSES = 10


def build(library: str, side: int) -> torch.nn.Module:
    torch.manual_seed(0)
    if library == "hfdl":
        return create_model("resnet18", num_labels=NUM_CLASSES, image_size=side)
    if library == "timm":
        import timm

        return timm.create_model("resnet18", num_classes=NUM_CLASSES)
    import torchvision

    return torchvision.models.resnet18(num_classes=NUM_CLASSES)


def make_step(library: str, channels_last: bool, side: int, batch_size: int) -> tuple[Callable[[], None], int]:
    """A closure running one train step of ``library``'s ResNet-18, and the model's parameter count."""
    model = build(library, side).train()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(side)
    pixel_values = torch.randn(batch_size, 3, side, side, generator=generator).contiguous(memory_format=memory_format)
    labels = torch.randint(0, NUM_CLASSES, (batch_size,), generator=generator)
    is_hfdl = library == "hfdl"

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        if is_hfdl:
            loss = model(pixel_values=pixel_values, labels=labels).loss  # the model's own loss, as the recipe uses
        else:
            loss = torch.nn.functional.cross_entropy(model(pixel_values), labels)
        loss.backward()
        optimizer.step()

    return step, sum(p.numel() for p in model.parameters())


def count_step_flops(step: Callable[[], None]) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def matmul_peak_gflops(threads: int, size: int = 2048, repeats: int = 10) -> float:
    """Practical fp32 matmul throughput of this machine with ``threads`` threads (best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def run_setting(side: int, batch_size: int, rounds: int, warmup: int) -> dict:
    contenders = {}
    for library in ("timm", "hfdl", "torchvision"):
        for channels_last in (False, True):
            name = f"{library}{' channels_last' if channels_last else ''}"
            contenders[name] = make_step(library, channels_last, side, batch_size)
    counts = {count for _, count in contenders.values()}
    assert len(counts) == 1, f"the three ResNet-18s differ in size: {counts}"
    flops = count_step_flops(contenders["hfdl"][0])
    for step, _ in contenders.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (step, _) in contenders.items():
            times[name].append(_timed(step))
    medians = {name: statistics.median(samples) for name, samples in times.items()}
    reference = medians["timm"]
    return {
        "image_side": side,
        "batch_size": batch_size,
        "num_parameters": counts.pop(),
        "flops_per_step": flops,
        "rounds": rounds,
        "median_ms": {name: 1000 * value for name, value in medians.items()},
        "ratio_to_timm": {name: value / reference for name, value in medians.items()},
        "gflops_per_s": {name: flops / value / 1e9 for name, value in medians.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = matmul_peak_gflops(args.threads)
    settings = [run_setting(32, 64, args.rounds, args.warmup), run_setting(64, 32, args.rounds, args.warmup)]
    for setting in settings:
        setting["fraction_of_matmul_peak"] = {name: value / peak for name, value in setting["gflops_per_s"].items()}
        print(
            f"\nResNet-18 train step, {setting['image_side']} px, batch {setting['batch_size']}, "
            f"{setting['flops_per_step'] / 1e9:.2f} GFLOP per step, median of {setting['rounds']} interleaved rounds"
        )
        print("| model | ms / step | vs timm | GFLOP/s | of matmul peak |")
        print("|---|---:|---:|---:|---:|")
        for name in setting["median_ms"]:
            print(
                f"| {name} | {setting['median_ms'][name]:.1f} | {setting['ratio_to_timm'][name]:.3f}x | "
                f"{setting['gflops_per_s'][name]:.1f} | {100 * setting['fraction_of_matmul_peak'][name]:.1f} % |"
            )
    report = {
        "matmul_peak_gflops": peak,
        "threads": args.threads,
        "settings": settings,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nmatmul peak {peak:.1f} GFLOP/s ({args.threads} threads); wrote {args.output}")


if __name__ == "__main__":
    main()
