"""ONNX Runtime vs PyTorch eager latency for LeNet-5 on CPU.

The preset (``lenet5-modern`` by default) comes from hfdl's registry; the model is exported with
:func:`hfdl.export.export_onnx` (which validates it first) into a temporary folder. For each batch size it times,
after a warm-up, many single calls of:

* PyTorch eager, ``model(pixel_values)`` under ``torch.inference_mode()``;
* onnxruntime, ``session.run`` on a numpy batch (the graph alone);
* hfdl's ``ORTModelForImageClassification`` (the graph plus input checks and tensor conversion).

Both runtimes get the same number of threads. It reports the median (and 90th percentile) in milliseconds and the
speed-up ``pytorch / onnxruntime`` as a markdown table, and writes the figures with the machine's details as JSON.

    python benchmarks/bench_onnx_latency.py --output benchmarks/results/onnx_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnxruntime
import torch

from hfdl.export import ORTModelForImageClassification, export_onnx
from hfdl.registry import create_model, resolve_preset

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "onnx_latency.json"


def time_calls(call: Callable[[], object], warmup: int, iterations: int) -> dict[str, float]:
    """Median and p90 wall time of ``call`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000.0)
    samples.sort()
    return {"median_ms": statistics.median(samples), "p90_ms": samples[int(0.9 * (len(samples) - 1))]}


def run_benchmark(preset: str, batch_sizes: list[int], warmup: int, iterations: int, threads: int) -> dict:
    spec, preset = resolve_preset(preset)
    torch.manual_seed(0)
    model = create_model(preset, task="image-classification").eval()
    config = model.config
    torch.set_num_threads(threads)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1

    with tempfile.TemporaryDirectory() as folder:
        export = export_onnx(model, folder)
        session = onnxruntime.InferenceSession(str(export.onnx_path), options, providers=["CPUExecutionProvider"])
        ort_model = ORTModelForImageClassification.from_pretrained(folder, session_options=options)
        rows = []
        for batch_size in batch_sizes:
            generator = torch.Generator().manual_seed(batch_size)
            pixel_values = torch.randn(
                (batch_size, config.num_channels, config.image_size, config.image_size), generator=generator
            )
            feeds = {"pixel_values": pixel_values.numpy()}

            def pytorch_call(pixel_values: torch.Tensor = pixel_values) -> torch.Tensor:
                with torch.inference_mode():
                    return model(pixel_values).logits

            pytorch = time_calls(pytorch_call, warmup, iterations)
            graph = time_calls(lambda feeds=feeds: session.run(None, feeds), warmup, iterations)
            wrapper = time_calls(lambda x=pixel_values: ort_model(x).logits, warmup, iterations)
            with torch.inference_mode():
                max_abs_diff = float((ort_model(pixel_values).logits - model(pixel_values).logits).abs().max())
            rows.append(
                {
                    "batch_size": batch_size,
                    "pytorch_eager": pytorch,
                    "onnxruntime_session": graph,
                    "hfdl_ort_model": wrapper,
                    "speedup_session": pytorch["median_ms"] / graph["median_ms"],
                    "speedup_ort_model": pytorch["median_ms"] / wrapper["median_ms"],
                    "logits_max_abs_diff": max_abs_diff,
                }
            )
    return {
        "preset": preset,
        "model_type": spec.model_type,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "input_shape": [config.num_channels, config.image_size, config.image_size],
        "warmup": warmup,
        "iterations": iterations,
        "threads": threads,
        "export_max_abs_diff": export.max_abs_diff,
        "results": rows,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            # Other processes on a shared machine skew latency; the load average says how busy it was.
            "load_average_1min": os.getloadavg()[0],
        },
    }


def markdown_table(report: dict) -> str:
    lines = [
        f"{report['preset']} ({report['num_parameters']:,} parameters), CPU, {report['threads']} thread(s), "
        f"median of {report['iterations']} calls (p90 in parentheses)",
        "",
        "| batch | PyTorch eager (ms) | ORT session (ms) | hfdl ORTModel (ms) | speed-up session | speed-up ORTModel |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["results"]:
        cells = [
            f"{row[key]['median_ms']:.3f} ({row[key]['p90_ms']:.3f})"
            for key in ("pytorch_eager", "onnxruntime_session", "hfdl_ort_model")
        ]
        lines.append(
            f"| {row['batch_size']} | {' | '.join(cells)} | "
            f"{row['speedup_session']:.1f}x | {row['speedup_ort_model']:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="lenet5-modern", help="an image-classification preset from hfdl's registry")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="for both runtimes")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON figures")
    args = parser.parse_args(argv)
    for name in ("warmup", "iterations", "threads"):
        if getattr(args, name) < (0 if name == "warmup" else 1):
            parser.error(f"--{name} must be {'>= 0' if name == 'warmup' else '>= 1'}, got {getattr(args, name)}")
    if any(batch_size < 1 for batch_size in args.batch_sizes):
        parser.error(f"--batch-sizes must be positive, got {args.batch_sizes}")

    report = run_benchmark(args.preset, args.batch_sizes, args.warmup, args.iterations, args.threads)
    print(markdown_table(report))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWrote {args.output}")


if __name__ == "__main__":
    main()
