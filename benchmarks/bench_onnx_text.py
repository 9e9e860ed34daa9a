"""ONNX Runtime vs PyTorch eager latency for hfdl's BERT encoder on CPU.

Two sizes from hfdl's registry, with random weights (latency does not depend on the values): ``bert-course`` (the
course's 4-layer, 128-wide encoder) and ``minilm-l6-h384`` (the shape of sentence-transformers' all-MiniLM-L6-v2,
6 layers, 384 wide, 30,522-token vocabulary). Each base model (``feature-extraction``, ``last_hidden_state`` out)
is exported with :func:`hfdl.export.export_onnx`, which validates the graph first, into a temporary folder.

For each batch size (sequence length fixed, default 64) it times three ways of running the same batch:

* PyTorch eager, ``model(input_ids, attention_mask)`` under ``torch.inference_mode()``;
* onnxruntime, ``session.run`` on numpy arrays (the graph alone);
* hfdl's ``ORTModelForFeatureExtraction`` (the graph plus the input checks and tensor conversion).

The three are timed in *interleaved rounds* (each round calls every runtime a few times, in rotating order), so
a slow spell of a shared machine hits all of them alike instead of whichever ran then; the figures are medians
(and 90th percentiles) of all calls. Both runtimes get the same number of threads (default 2), and both ORT rows
share one session.

    python benchmarks/bench_onnx_text.py --output benchmarks/results/onnx_text.json
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

# Interleaved runtimes share the cores: after a call, PyTorch's OpenMP workers (and onnxruntime's, see
# `allow_spinning` below) spin-wait for more work and would take the cores from the runtime that runs next. Both
# are told to sleep instead; set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402

from hfdl.export import ORTModelForFeatureExtraction, export_onnx
from hfdl.registry import create_model, resolve_preset

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "onnx_text.json"
DEFAULT_PRESETS = ["bert-course", "minilm-l6-h384"]
RUNTIMES = ("pytorch_eager", "onnxruntime_session", "hfdl_ort_model")


def time_interleaved(
    calls: dict[str, Callable[[], object]], rounds: int, calls_per_round: int, warmup: int
) -> dict[str, dict[str, float]]:
    """Median and p90 wall time (ms) of each call, timed in ``rounds`` interleaved rounds after ``warmup`` calls each.

    Round ``r`` starts with runtime ``r mod n``, so no runtime always runs first (right after another one warmed
    the caches) or last.
    """
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            call = calls[name]
            for _ in range(calls_per_round):
                start = time.perf_counter()
                call()
                samples[name].append((time.perf_counter() - start) * 1000.0)
    figures = {}
    for name, values in samples.items():
        values.sort()
        figures[name] = {"median_ms": statistics.median(values), "p90_ms": values[int(0.9 * (len(values) - 1))]}
    return figures


def bench_preset(
    preset: str,
    batch_sizes: list[int],
    sequence_length: int,
    rounds: int,
    calls_per_round: int,
    warmup: int,
    threads: int,
) -> dict:
    """Export one preset's encoder and time the three runtimes at each batch size."""
    spec, preset = resolve_preset(preset)
    torch.manual_seed(0)
    model = create_model(preset, task="feature-extraction").eval()
    config = model.config
    if sequence_length > config.max_position_embeddings:
        raise ValueError(
            f"--sequence-length {sequence_length} exceeds {preset}'s max_position_embeddings "
            f"({config.max_position_embeddings})."
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        export = export_onnx(model, folder)
        export_seconds = time.perf_counter() - started
        ort_model = ORTModelForFeatureExtraction.from_pretrained(folder, session_options=options)
        # One session for both ORT rows: a second one would keep a second pool of threads spinning between calls,
        # taking cores from whichever runtime runs next.
        session = ort_model.session
        rows = []
        for batch_size in batch_sizes:
            generator = torch.Generator().manual_seed(batch_size)
            input_ids = torch.randint(0, config.vocab_size, (batch_size, sequence_length), generator=generator)
            attention_mask = torch.ones_like(input_ids)
            feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}

            def pytorch_call(input_ids: torch.Tensor = input_ids, attention_mask: torch.Tensor = attention_mask):
                with torch.inference_mode():
                    return model(input_ids, attention_mask).last_hidden_state

            calls = {
                "pytorch_eager": pytorch_call,
                "onnxruntime_session": lambda feeds=feeds: session.run(None, feeds),
                "hfdl_ort_model": lambda ids=input_ids, mask=attention_mask: ort_model(ids, mask).last_hidden_state,
            }
            figures = time_interleaved(calls, rounds, calls_per_round, warmup)
            with torch.inference_mode():
                expected = model(input_ids, attention_mask).last_hidden_state.numpy()
            max_abs_diff = float(np.max(np.abs(session.run(None, feeds)[0] - expected)))
            eager = figures["pytorch_eager"]["median_ms"]
            rows.append(
                {
                    "batch_size": batch_size,
                    **figures,
                    "speedup_session": eager / figures["onnxruntime_session"]["median_ms"],
                    "speedup_ort_model": eager / figures["hfdl_ort_model"]["median_ms"],
                    "last_hidden_state_max_abs_diff": max_abs_diff,
                }
            )
    return {
        "preset": preset,
        "model_type": spec.model_type,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "config": {
            key: getattr(config, key)
            for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size")
        },
        "export_seconds": round(export_seconds, 2),
        "export_max_abs_diff": export.max_abs_diff,
        "results": rows,
    }


def run_benchmark(
    presets: list[str],
    batch_sizes: list[int],
    sequence_length: int,
    rounds: int,
    calls_per_round: int,
    warmup: int,
    threads: int,
) -> dict:
    torch.set_num_threads(threads)
    reports = [
        bench_preset(preset, batch_sizes, sequence_length, rounds, calls_per_round, warmup, threads)
        for preset in presets
    ]
    return {
        "sequence_length": sequence_length,
        "spin_waiting": "off (OMP_WAIT_POLICY=PASSIVE, onnxruntime allow_spinning=0)",
        "rounds": rounds,
        "calls_per_round": calls_per_round,
        "warmup": warmup,
        "threads": threads,
        "models": reports,
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
    calls = report["rounds"] * report["calls_per_round"]
    lines = [
        f"BERT encoders (random weights), CPU, {report['threads']} thread(s), sequence length "
        f"{report['sequence_length']}, median of {calls} calls in {report['rounds']} interleaved rounds "
        "(p90 in parentheses)",
        "",
        "| model | batch | PyTorch eager (ms) | ORT session (ms) | hfdl ORTModel (ms) | speed-up session | "
        "speed-up ORTModel |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model in report["models"]:
        for row in model["results"]:
            cells = [f"{row[key]['median_ms']:.2f} ({row[key]['p90_ms']:.2f})" for key in RUNTIMES]
            lines.append(
                f"| {model['preset']} ({model['num_parameters'] / 1e6:.1f}M) | {row['batch_size']} | "
                f"{' | '.join(cells)} | {row['speedup_session']:.2f}x | {row['speedup_ort_model']:.2f}x |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=DEFAULT_PRESETS, help="BERT presets from hfdl's registry")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--calls-per-round", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="for both runtimes")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON figures")
    args = parser.parse_args(argv)
    for name in ("rounds", "calls_per_round", "threads", "sequence_length"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    if any(batch_size < 1 for batch_size in args.batch_sizes):
        parser.error(f"--batch-sizes must be positive, got {args.batch_sizes}")

    report = run_benchmark(
        args.presets,
        args.batch_sizes,
        args.sequence_length,
        args.rounds,
        args.calls_per_round,
        args.warmup,
        args.threads,
    )
    print(markdown_table(report))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWrote {args.output}")


if __name__ == "__main__":
    main()
