"""The digit-recognizer Space under concurrent load, through gradio_client on 127.0.0.1.

The Space runs as it does on Hugging Face: ``python app.py --model ... --backend ...`` in its own folder, one
server process. ``--clients`` client processes (each with its own ``gradio_client.Client``, like independent
users) share ``--requests`` uploads: one in ``--bad-every`` is a bad upload (a blank page or a text file), the
others cycle through a few different digit pictures, so identical inputs -- and identical output pictures -- are in
flight at the same time (what made gradio 6.31's file cache serve truncated files, gradio issue #8878).

For each backend it reports: failed valid requests (with the first few messages), bad uploads answered with the
app's own error message (a clean error), p50/p99 latency of the valid requests (upload + queue + prediction +
download of the picture, as a client sees it), requests per second over the whole run, the CPU time the server
and the clients spent per request, and the server log lines that h11/uvicorn printed about broken responses. A
valid answer must match, byte for byte, the answer to the same picture from a single client before the run, so a
truncated or mixed-up response counts as a failure.

Clients and server share the machine, so the clients' cost matters: gradio_client 2.7 opens a new httpx client for
each of the ~4 HTTP calls of a prediction, and with ``ssl_verify=True`` (its default) each one builds a verifying
SSL context, loading the CA bundle: ~85 ms of CPU per prediction here, 3x what the Space itself spends, although
nothing is encrypted on http://127.0.0.1. The clients therefore use ``ssl_verify=False``, which skips only that;
``--client-ssl-verify`` measures with gradio_client's default.

Without ``--model`` it saves an untrained, seeded LeNet-5 (``lenet5-modern``) to a temporary folder and exports it
to ONNX (``<folder>/onnx``): the load does not depend on the weights. Everything stays on loopback and is bounded
by ``--requests`` and ``--timeout``.

    python benchmarks/bench_space_load.py                       # 1000 requests, 8 clients, onnx then torch
    python benchmarks/bench_space_load.py --backends onnx --requests 200 --output /tmp/space_load.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_APP = REPO_ROOT / "spaces" / "digit-recognizer" / "app.py"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "space_load.json"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
#: The app's messages for the two kinds of bad upload: a clean error carries one of them.
BAD_UPLOAD_MESSAGES = {"blank.png": "blank", "notes.txt": "not an image"}
#: Server log lines that mean a response was cut short.
BROKEN_RESPONSE_MARKERS = ("Too little data for declared Content-Length", "Exception in ASGI application")


def save_untrained_lenet5(directory: Path) -> Path:
    """A seeded, untrained LeNet-5 in Hub format with its ONNX export in ``onnx/`` (the recipe's layout)."""
    import torch

    import hfdl
    from hfdl.export import export_onnx

    torch.manual_seed(0)
    labels = {index: str(index) for index in range(10)}
    model = hfdl.create_model("lenet5-modern", id2label=labels, label2id={name: i for i, name in labels.items()})
    model.eval().save_pretrained(directory)
    hfdl.get_architecture("lenet5").make_image_processor(model.config).save_pretrained(directory)
    export_onnx(directory, directory / "onnx", output_hidden_states=True)
    return directory


def write_inputs(directory: Path) -> tuple[list[Path], list[Path]]:
    """Four different digit pictures (dark ink on white, like scans) and the two bad uploads."""
    from PIL import Image, ImageDraw

    strokes = {
        "seven": [(30, 20), (80, 20), (55, 110)],
        "one": [(60, 15), (60, 115)],
        "four": [(70, 110), (70, 15), (25, 80), (90, 80)],
        "two": [(30, 35), (55, 15), (85, 35), (30, 110), (90, 110)],
    }
    digits = []
    for name, points in strokes.items():
        image = Image.new("RGB", (120, 130), "white")
        ImageDraw.Draw(image).line(points, fill="black", width=9)
        image.save(directory / f"{name}.png")
        digits.append(directory / f"{name}.png")
    Image.new("RGB", (64, 64), "white").save(directory / "blank.png")
    (directory / "notes.txt").write_text("not a digit")
    return digits, [directory / "blank.png", directory / "notes.txt"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_space(app: Path, model: str, backend: str, log_path: Path, timeout: float) -> tuple[subprocess.Popen, str]:
    """``python app.py`` from the Space's folder; returns the process and its URL once it answers."""
    import httpx

    port = free_port()
    env = {**os.environ, **OFFLINE_ENV}
    command = [sys.executable, app.name, "--model", model, "--backend", backend, "--port", str(port)]
    with open(log_path, "w") as log:  # the server keeps its own handle on the file
        process = subprocess.Popen(command, cwd=app.parent, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The Space exited with code {process.returncode}; log: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise TimeoutError(f"The Space did not answer on {url} within {timeout:.0f} s; log: {log_path}")


def stop_space(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def summarize_answer(result: tuple) -> tuple[str, tuple[tuple[str, float], ...], str]:
    """(top label, top-3, SHA-256 of the picture's bytes): what must be identical for identical inputs."""
    from PIL import Image

    label, picture_path = result
    confidences = tuple((entry["label"], entry["confidence"]) for entry in label["confidences"])
    with Image.open(picture_path) as picture:
        picture.load()  # a truncated download fails here
    return label["label"], confidences, hashlib.sha256(Path(picture_path).read_bytes()).hexdigest()


def client_worker(
    url: str, jobs: list[tuple[int, str]], expected: dict, timeout: float, ssl_verify: bool, barrier, results
) -> None:
    """One user: its own Client, its share of the jobs in order; puts (records, CPU seconds) on ``results``."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, ssl_verify=ssl_verify)
    records = []
    barrier.wait(timeout=120)  # every client connected before the clock starts
    deadline, cpu_started = time.time() + timeout, time.process_time()
    for index, path in jobs:
        if time.time() > deadline:
            records.append({"index": index, "input": Path(path).name, "status": "not run"})
            continue
        name = Path(path).name
        started = time.perf_counter()
        try:
            result = client.predict(handle_file(path), api_name="/predict_upload")
            outcome, message = "ok", None
        except Exception as error:  # noqa: BLE001 - every failure is a measured outcome
            result, outcome, message = None, "error", f"{type(error).__name__}: {error}"
        latency_ms = (time.perf_counter() - started) * 1000.0
        if name in BAD_UPLOAD_MESSAGES:
            clean = outcome == "error" and BAD_UPLOAD_MESSAGES[name] in (message or "")
            status = "bad-clean" if clean else "bad-unclean"
        elif outcome == "ok":
            try:
                answer = summarize_answer(result)
                status = "ok" if answer == expected[name] else "wrong"
                message = None if status == "ok" else f"got {answer}, expected {expected[name]}"
            except Exception as error:  # noqa: BLE001
                status, message = "failed", f"unreadable answer: {type(error).__name__}: {error}"
        else:
            status = "failed"
        records.append({"index": index, "input": name, "status": status, "ms": latency_ms, "message": message})
    results.put((records, time.process_time() - cpu_started))


def run_load(
    url: str,
    server_pid: int,
    digits: list[Path],
    bad: list[Path],
    requests: int,
    clients: int,
    bad_every: int,
    timeout: float,
    ssl_verify: bool,
) -> tuple[list[dict], float, float, float | None]:
    """Run the jobs from ``clients`` processes; returns (records, wall seconds, client CPU s, server CPU s)."""
    from gradio_client import Client, handle_file

    # Reference answers from one client, one request at a time (this also loads the model: not timed).
    reference = Client(url, verbose=False, ssl_verify=ssl_verify)
    expected = {
        path.name: summarize_answer(reference.predict(handle_file(str(path)), api_name="/predict_upload"))
        for path in digits
    }

    jobs, bad_index, digit_index = [], 0, 0
    for index in range(requests):
        if bad_every and index % bad_every == bad_every - 1:
            jobs.append((index, str(bad[bad_index % len(bad)])))
            bad_index += 1
        else:
            jobs.append((index, str(digits[digit_index % len(digits)])))
            digit_index += 1
    shares = [jobs[worker::clients] for worker in range(clients)]
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(clients + 1), context.Queue()
    workers = [
        context.Process(
            target=client_worker, args=(url, share, expected, timeout, ssl_verify, barrier, results), daemon=True
        )
        for share in shares
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=120)
    started, server_cpu_started = time.perf_counter(), process_cpu_seconds(server_pid)
    outcomes = [results.get(timeout=timeout + 120) for _ in workers]
    wall_s = time.perf_counter() - started
    server_cpu_ended = process_cpu_seconds(server_pid)
    for worker in workers:
        worker.join(timeout=30)
    records = [record for worker_records, _ in outcomes for record in worker_records]
    server_cpu_s = None if server_cpu_started is None else server_cpu_ended - server_cpu_started
    return records, wall_s, sum(cpu_s for _, cpu_s in outcomes), server_cpu_s


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), to split the machine's time between server and clients."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(
    records: list[dict], wall_s: float, server_log: str, server_cpu_s: float | None, client_cpu_s: float
) -> dict:
    valid = [r for r in records if r["input"] not in BAD_UPLOAD_MESSAGES and r["status"] != "not run"]
    bad = [r for r in records if r["input"] in BAD_UPLOAD_MESSAGES and r["status"] != "not run"]
    failed = [r for r in valid if r["status"] != "ok"]
    latencies = [r["ms"] for r in valid if r["status"] == "ok"]
    done = len(valid) + len(bad)
    return {
        "requests_done": done,
        "requests_not_run": sum(r["status"] == "not run" for r in records),
        "valid_requests": len(valid),
        "failed_valid_requests": len(failed),
        "failure_examples": sorted({r["message"] for r in failed})[:5],
        "bad_uploads": len(bad),
        "bad_uploads_clean_errors": sum(r["status"] == "bad-clean" for r in bad),
        "bad_upload_examples": sorted({r["message"] or "" for r in bad if r["status"] != "bad-clean"})[:3],
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "requests_per_s": round(done / wall_s, 1),
        "wall_s": round(wall_s, 2),
        # Where the machine's time went, per request: the Space's process vs the gradio_client processes.
        "server_cpu_ms_per_request": round(1000 * server_cpu_s / done, 1) if server_cpu_s is not None else None,
        "client_cpu_ms_per_request": round(1000 * client_cpu_s / done, 1),
        "server_log_broken_responses": sum(server_log.count(marker) for marker in BROKEN_RESPONSE_MARKERS),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: an untrained seeded LeNet-5)")
    parser.add_argument("--backends", nargs="+", choices=("onnx", "torch"), default=["onnx", "torch"])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--bad-every", type=int, default=10, help="one in N requests is a bad upload (0: none)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per backend before requests stop")
    parser.add_argument(
        "--client-ssl-verify",
        action="store_true",
        help="let gradio_client build a verifying SSL context for each HTTP call (its default; see the docstring)",
    )
    parser.add_argument("--app", type=Path, default=SPACE_APP, help="the Space's app.py")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 64 or not 1 <= args.requests <= 100_000:
        parser.error("--clients must be in [1, 64] and --requests in [1, 100000]")
    os.environ.update(OFFLINE_ENV)

    import gradio

    app = args.app.resolve()
    results = {
        "app": str(app.relative_to(REPO_ROOT)) if app.is_relative_to(REPO_ROOT) else str(app),
        "requests": args.requests,
        "clients": args.clients,
        "bad_every": args.bad_every,
        "client_ssl_verify": args.client_ssl_verify,
        "gradio": gradio.__version__,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="space-load-") as scratch:
        scratch = Path(scratch)
        model = args.model or str(save_untrained_lenet5(scratch / "lenet5"))
        results["model"] = args.model or "untrained seeded lenet5-modern (temporary folder)"
        digits, bad = write_inputs(scratch)
        for backend in args.backends:
            log_path = scratch / f"server-{backend}.log"
            process, url = start_space(args.app, model, backend, log_path, timeout=120)
            try:
                records, wall_s, client_cpu_s, server_cpu_s = run_load(
                    url,
                    process.pid,
                    digits,
                    bad,
                    args.requests,
                    args.clients,
                    args.bad_every,
                    args.timeout,
                    args.client_ssl_verify,
                )
            finally:
                stop_space(process)
            figures = report(records, wall_s, log_path.read_text(errors="replace"), server_cpu_s, client_cpu_s)
            results["backends"][backend] = figures
            print(f"{backend}: {json.dumps(figures)}", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")
    return results


if __name__ == "__main__":
    main()
