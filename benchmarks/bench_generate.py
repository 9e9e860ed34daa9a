"""Generation speed of the char-GPT: tokens per second of ``model.generate`` with and without the key/value cache.

Without the cache every new token re-runs the whole sequence (quadratic work in its length); with it each step runs
one token against the stored keys and values. Greedy decoding, batch 1 and 8, a 1-token prompt and ``--new_tokens``
new tokens (nanoGPT's context is 64, so 63 by default), one thread by default, median over ``--rounds`` interleaved rounds.
The outputs of the two modes are asserted equal. Speed does not depend on the weights, so the model is the
``gpt-char`` preset as initialised (seed 0), or ``--model FOLDER`` for a trained one.

    python benchmarks/bench_generate.py --rounds 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

import hfdl

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "generate.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gpt-char", help="a preset or a saved causal-LM folder")
    parser.add_argument("--new_tokens", type=int, default=63)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=10)
    # One thread: decoding a token of a 0.8M-parameter model is too little work to split, and a second thread only
    # adds synchronisation (and spin-waiting that starves anything else on a 2-core machine).
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if Path(args.model).is_dir():
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(args.model)
    else:
        model = hfdl.create_model(args.model)
    model.eval()
    results = []
    for batch_size in args.batch_sizes:
        prompt = torch.randint(0, model.config.vocab_size, (batch_size, 1), generator=torch.Generator().manual_seed(0))
        settings = {"max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens, "do_sample": False}
        outputs, times = {}, {True: [], False: []}
        with torch.inference_mode():
            for use_cache in (True, False):  # warm-up
                outputs[use_cache] = model.generate(prompt, use_cache=use_cache, **settings)
            assert torch.equal(outputs[True], outputs[False]), "cached and uncached greedy decoding differ"
            for _ in range(args.rounds):
                for use_cache in (True, False):
                    start = time.perf_counter()
                    model.generate(prompt, use_cache=use_cache, **settings)
                    times[use_cache].append(time.perf_counter() - start)
        row = {"batch_size": batch_size, "new_tokens": args.new_tokens}
        for use_cache, label in ((True, "with_cache"), (False, "without_cache")):
            seconds = statistics.median(times[use_cache])
            row[f"{label}_tokens_per_s"] = batch_size * args.new_tokens / seconds
        row["speed_up"] = row["with_cache_tokens_per_s"] / row["without_cache_tokens_per_s"]
        results.append(row)
        print(
            f"batch {batch_size}: {row['with_cache_tokens_per_s']:.0f} tokens/s with the cache, "
            f"{row['without_cache_tokens_per_s']:.0f} without ({row['speed_up']:.2f}x)"
        )
    report = {
        "model": args.model,
        "threads": args.threads,
        "rounds": args.rounds,
        "results": results,
        "load_average_1min": os.getloadavg()[0],
        "torch": torch.__version__,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
