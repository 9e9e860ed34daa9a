"""recipes/train_image_classifier.py: trains, logs, reports, checkpoints, resumes bit for bit (even after kill -9),
and shards the data under DDP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402

pytest.importorskip("accelerate")
pytest.importorskip("datasets")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

import torch  # noqa: E402
import yaml  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from transformers import AutoImageProcessor, AutoModelForImageClassification  # noqa: E402

import hfdl  # noqa: E402  (registers the Auto classes)
from hfdl.data import TensorDictDataset, load_image_classification_dataset  # noqa: E402
from hfdl.recipes import train_image_classifier as recipe  # noqa: E402
from hfdl.registry import resolve_preset  # noqa: E402
from hfdl.training import find_last_checkpoint  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = Path(__file__).resolve().with_name("recipe_launcher.py")
RESULT_KEYS = {
    "eval_accuracy",
    "eval_precision_macro",
    "eval_recall_macro",
    "eval_f1_macro",
    "eval_loss",
    "eval_confusion_matrix",
    "eval_samples",
    "train_loss",
    "epoch",
    "train_steps",
    "train_seconds_per_epoch",
    "best_eval_accuracy",
    "best_epoch",
}
#: Small runs on the digits: 320 training rows in batches of 32 make 10 steps per epoch.
SMALL_RUN = ["--model", "mlp-digits", "--batch_size", "32", "--max_train_samples", "320", "--max_eval_samples", "100"]
#: Tiny runs, for what happens around training: 64 rows in batches of 32 make 2 steps per epoch.
TINY_RUN = SMALL_RUN[:4] + ["--max_train_samples", "64", "--max_eval_samples", "20", "--report_to", "none"]


def read_log(output_dir: Path) -> tuple[list[dict], list[dict]]:
    entries = [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]
    return [e for e in entries if "loss" in e], [e for e in entries if "eval_accuracy" in e]


def checkpoint_steps(output_dir: Path) -> dict[str, int]:
    folders = (output_dir / "checkpoints").iterdir()
    return {p.name: json.loads((p / "trainer_state.json").read_text())["completed_steps"] for p in folders}


def without_timings(results: dict) -> dict:
    return {k: v for k, v in results.items() if k not in ("train_seconds_per_epoch", "train_epoch_seconds")}


@pytest.mark.parametrize("model", ["mlp-digits", "lenet5"])
def test_recipe_trains_reports_and_saves_a_loadable_best_model(tmp_path, model):
    output_dir = tmp_path / "run"
    argv = ["--model", model, "--output_dir", str(output_dir), "--num_epochs", "2", "--batch_size", "32"]
    results = recipe.main(argv + ["--max_train_samples", "640", "--max_eval_samples", "200", "--report_to", "none"])

    # The loss fell; the loss was logged every --logging_steps (10) and the eval every epoch, as main() returns.
    train_log, eval_log = read_log(output_dir)
    assert [entry["step"] for entry in train_log] == [10, 20, 30, 40]
    assert train_log[-1]["loss"] < 0.7 * train_log[0]["loss"]
    assert results["train_loss"] == pytest.approx(sum(e["loss"] for e in train_log) / 4)
    assert [(entry["step"], entry["epoch"]) for entry in eval_log] == [(20, 1.0), (40, 2.0)]
    assert RESULT_KEYS <= results.keys()
    assert json.loads((output_dir / "all_results.json").read_text()) == json.loads(json.dumps(results))
    assert results["train_steps"] == 40 and results["epoch"] == 2.0 and results["eval_samples"] == 200
    assert results["eval_accuracy"] > 0.5 and results["eval_loss"] == eval_log[-1]["eval_loss"]
    for png in ("learning_curves.png", "confusion_matrix.png"):
        assert (output_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sum(map(sum, results["eval_confusion_matrix"])) == 200

    # best/ is a Hub checkpoint: it loads through the Auto classes and reproduces the best accuracy exactly.
    best = output_dir / "best"
    loaded = AutoModelForImageClassification.from_pretrained(best)
    processor = AutoImageProcessor.from_pretrained(best)
    assert type(loaded).__name__.endswith("ForImageClassification")
    assert loaded.config.id2label[3] == "3"
    test = load_image_classification_dataset("digits", max_train_samples=640, max_eval_samples=200)["test"]
    with torch.no_grad():
        logits = loaded(**processor(list(test["image"]), return_tensors="pt")).logits
    accuracy = (logits.argmax(-1) == torch.tensor(list(test["label"]))).float().mean().item()
    assert accuracy == pytest.approx(results["best_eval_accuracy"], abs=1e-6)

    # The model card is named after the run and carries the metrics in its YAML block.
    metadata = yaml.safe_load((best / "README.md").read_text().split("---")[1])
    assert metadata["model-index"][0]["name"] == "run" and metadata["datasets"] == ["sklearn-digits"]
    metrics = {m["type"]: m["value"] for m in metadata["model-index"][0]["results"][0]["metrics"]}
    assert metrics["accuracy"] == pytest.approx(results["best_eval_accuracy"])
    assert metrics["f1_macro"] > 0.5
    assert not list(output_dir.glob(".*")), "temporary files left behind"


def test_tensorboard_receives_what_train_log_jsonl_holds(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe.main(SMALL_RUN + ["--max_steps", "6", "--logging_steps", "2", "--output_dir", str(tmp_path)])
    train_log, eval_log = read_log(tmp_path)
    events = EventAccumulator(str(tmp_path / "runs" / "train_image_classifier"))
    events.Reload()

    def scalars(tag: str) -> list[tuple[int, float]]:
        return [(event.step, event.value) for event in events.Scalars(tag)]

    # TensorBoard stores float32: equal to the log's values to float32 precision.
    assert scalars("loss") == [(e["step"], pytest.approx(e["loss"], rel=1e-6)) for e in train_log]
    assert [step for step, _ in scalars("loss")] == [2, 4, 6]
    assert scalars("eval_accuracy") == [(6, pytest.approx(eval_log[0]["eval_accuracy"], rel=1e-6))]


def test_eval_loss_is_the_models_own_loss_for_a_one_logit_bce_head():
    """A binary head with one logit trains with BCE; cross-entropy over a single logit would always be 0."""
    torch.manual_seed(0)
    model = hfdl.create_model("mlp-digits", num_labels=1, problem_type="multi_label_classification")
    pixel_values, labels = torch.randn(30, 1, 8, 8), torch.randint(0, 2, (30,))
    dataloader = torch.utils.data.DataLoader(
        TensorDictDataset({"pixel_values": pixel_values, "labels": labels}), batch_size=8
    )  # batches of 8, 8, 8 and 6
    accelerator = Accelerator()
    model, dataloader = accelerator.prepare(model, dataloader)
    metrics = recipe.evaluate(model, dataloader, accelerator)

    with torch.no_grad():
        outputs = model(pixel_values=pixel_values, labels=labels)
    expected_loss = torch.nn.functional.binary_cross_entropy_with_logits(outputs.logits[:, 0], labels.float())
    assert metrics["eval_loss"] == pytest.approx(outputs.loss.item(), rel=1e-6)
    assert metrics["eval_loss"] == pytest.approx(expected_loss.item(), rel=1e-6) and metrics["eval_loss"] > 0.1
    predictions = (outputs.logits[:, 0] > 0).long()
    assert metrics["eval_accuracy"] == pytest.approx((predictions == labels).float().mean().item())
    assert metrics["eval_samples"] == 30 and len(metrics["eval_confusion_matrix"]) == 2


def test_resume_from_a_step_checkpoint_continues_the_same_run_bit_for_bit(tmp_path):
    common = SMALL_RUN + ["--config_overrides", '{"dropout": 0.2}', "--num_epochs", "3", "--report_to", "none"]
    common += ["--lr_scheduler", "cosine", "--warmup_steps", "3", "--logging_steps", "4"]
    common += ["--checkpointing_steps", "5", "--checkpoints_total_limit", "10"]
    full_dir, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    full = recipe.main(common + ["--output_dir", str(full_dir)])
    # Every 5 steps; those at the end of an epoch (10, 20, 30) are saved after its evaluation.
    assert checkpoint_steps(full_dir) == {f"checkpoint_{i}": 5 * (i + 1) for i in range(6)}

    # Resume from step 15 (mid-epoch 2 of 3) in a fresh folder: the log and the results are the uninterrupted
    # run's (the log up to step 15 came with the checkpoint), and so are the final weights, bit for bit: same
    # batches, same dropout masks, same schedule.
    checkpoint = full_dir / "checkpoints" / "checkpoint_2"
    resumed = recipe.main(common + ["--output_dir", str(resumed_dir), "--resume_from_checkpoint", str(checkpoint)])
    assert (resumed_dir / "train_log.jsonl").read_text() == (full_dir / "train_log.jsonl").read_text()
    assert without_timings(resumed) == without_timings(full)
    assert len(resumed["train_epoch_seconds"]) == 2  # epochs 2 and 3 only
    assert (find_last_checkpoint(resumed_dir) / "model.safetensors").read_bytes() == (
        find_last_checkpoint(full_dir) / "model.safetensors"
    ).read_bytes()

    # "latest" picks the newest checkpoint; resuming a finished run evaluates again and trains no step.
    again = recipe.main(common + ["--output_dir", str(full_dir), "--resume_from_checkpoint", "latest"])
    assert without_timings(again) == without_timings(full) and again["train_epoch_seconds"] == []


def test_resume_with_augmentation_and_mixup_continues_the_same_run_bit_for_bit(tmp_path):
    """Per-sample draws are seeded by (seed, epoch, row) and mixes by (seed, step, process), away from the global
    generator: a run resumed mid-epoch sees the same augmented images, mixes and dropout masks as the full run."""
    augment = ["--rotation", "15", "--translate", "0.1", "--color_jitter", "0.3", "--gaussian_noise", "0.05"]
    augment += ["--auto_augment", "trivialaugment", "--mixup", "0.2", "--cutmix", "1.0"]
    common = SMALL_RUN + ["--config_overrides", '{"dropout": 0.2}', "--num_epochs", "2", "--report_to", "none"]
    common += ["--logging_steps", "3", "--checkpointing_steps", "5", "--checkpoints_total_limit", "10"]
    full_dir, resumed_dir, plain_dir = tmp_path / "full", tmp_path / "resumed", tmp_path / "plain"
    full = recipe.main(common + augment + ["--output_dir", str(full_dir)])
    assert checkpoint_steps(full_dir) == {f"checkpoint_{i}": 5 * (i + 1) for i in range(4)}

    checkpoint = full_dir / "checkpoints" / "checkpoint_2"  # step 15: in the middle of the second epoch
    resumed = recipe.main(
        common + augment + ["--output_dir", str(resumed_dir), "--resume_from_checkpoint", str(checkpoint)]
    )
    assert (resumed_dir / "train_log.jsonl").read_text() == (full_dir / "train_log.jsonl").read_text()
    assert without_timings(resumed) == without_timings(full)
    assert (find_last_checkpoint(resumed_dir) / "model.safetensors").read_bytes() == (
        find_last_checkpoint(full_dir) / "model.safetensors"
    ).read_bytes()

    # The flags did change training: without them the same seed logs other losses.
    plain = recipe.main(common + ["--output_dir", str(plain_dir)])
    assert read_log(plain_dir)[0][0]["loss"] != read_log(full_dir)[0][0]["loss"]
    assert plain["train_loss"] < full["train_loss"]  # soft, augmented targets are harder to fit


def test_a_new_run_refuses_an_earlier_runs_checkpoints_before_any_work_unless_told_to_overwrite(tmp_path, monkeypatch):
    checkpointed = TINY_RUN + ["--output_dir", str(tmp_path), "--checkpointing_steps", "1"]
    recipe.main(checkpointed + ["--max_steps", "2"])
    assert checkpoint_steps(tmp_path) == {"checkpoint_0": 1, "checkpoint_1": 2}

    # A second run would number its checkpoints from 0 again, among these: it is refused before loading any data.
    get_dataloaders = recipe.get_dataloaders
    monkeypatch.setattr(recipe, "get_dataloaders", lambda *args: pytest.fail("loaded the data"))
    with pytest.raises(ValueError, match="earlier run.*--resume_from_checkpoint latest.*--overwrite_output_dir"):
        recipe.main(checkpointed + ["--max_steps", "3"])
    with pytest.raises(ValueError, match="earlier run"):  # even a run that would write no checkpoint of its own
        recipe.main(TINY_RUN + ["--output_dir", str(tmp_path), "--max_steps", "3"])

    # --overwrite_output_dir starts over: only the new run's checkpoints are left.
    monkeypatch.setattr(recipe, "get_dataloaders", get_dataloaders)
    recipe.main(checkpointed + ["--max_steps", "3", "--overwrite_output_dir", "--checkpoints_total_limit", "3"])
    assert checkpoint_steps(tmp_path) == {"checkpoint_0": 1, "checkpoint_1": 2, "checkpoint_2": 3}

    # Without checkpoints, a folder can be trained into again (`hfdl demo` twice).
    plain = TINY_RUN + ["--output_dir", str(tmp_path / "plain"), "--max_steps", "1"]
    assert recipe.main(plain)["train_steps"] == recipe.main(plain)["train_steps"] == 1


def test_resuming_with_another_run_length_is_refused_before_training(tmp_path):
    common = TINY_RUN + ["--output_dir", str(tmp_path), "--checkpointing_steps", "epoch"]
    recipe.main(common + ["--num_epochs", "2"])  # 4 steps: a real OneCycleLR over 4 steps
    for longer in (["--num_epochs", "3"], ["--max_steps", "5"]):
        with pytest.raises(ValueError, match=r"run of 4 steps, this run has [56] .*--num_epochs and --max_steps"):
            recipe.main(common + longer + ["--resume_from_checkpoint", "latest"])
    assert read_log(tmp_path)[0][-1]["step"] == 4  # the log is the first run's: nothing trained since


def test_the_model_name_is_resolved_once_and_its_head_builds_the_model(tmp_path, monkeypatch):
    head, config, _ = recipe.build_config(recipe.parse_args(["--model", "lenet5"]))
    assert head is resolve_preset("lenet5")[0].task("image-classification")
    assert type(head.model_class(config)).__name__ == "LeNet5ForImageClassification"

    calls = []
    monkeypatch.setattr(recipe, "resolve_preset", lambda name: calls.append(name) or resolve_preset(name))
    recipe.main(TINY_RUN + ["--output_dir", str(tmp_path), "--max_steps", "1"])
    assert calls == ["mlp-digits"]


@pytest.mark.parametrize(
    "checkpointing, limit, expected",
    [
        ("1", "3", {"checkpoint_5": 6, "checkpoint_6": 7, "checkpoint_7": 8}),  # 8 saved, the 3 newest kept
        ("epoch", "2", {"checkpoint_0": 4, "checkpoint_1": 8}),  # after epochs 1 and 2
    ],
)
def test_checkpoints_total_limit_keeps_the_newest(tmp_path, checkpointing, limit, expected):
    recipe.main(
        SMALL_RUN[:6] + ["--max_train_samples", "128", "--max_eval_samples", "50", "--num_epochs", "2"]
        + ["--output_dir", str(tmp_path), "--checkpointing_steps", checkpointing, "--checkpoints_total_limit", limit]
        + ["--report_to", "none"]
    )  # fmt: skip
    assert checkpoint_steps(tmp_path) == expected


@pytest.mark.parametrize(
    "argv, error, match",
    [
        (["--model", "resnet-9000"], ValueError, "Unknown architecture or preset"),
        (["--config_overrides", "[1, 2]"], ValueError, "must be a JSON object"),
        (["--config_overrides", '{"dropout": 2}'], ValueError, "dropout"),
        (["--dataset", "/nonexistent/dir/"], ValueError, "does not exist"),
        (["--resume_from_checkpoint", "latest"], ValueError, "no complete checkpoint"),
    ],
)
def test_bad_arguments_fail_clearly(tmp_path, argv, error, match):
    with pytest.raises(error, match=match):
        recipe.main(["--output_dir", str(tmp_path), "--max_steps", "1", "--report_to", "none"] + argv)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--checkpointing_steps", "often"], "must be 'epoch' or a positive integer"),
        (["--checkpointing_steps", "0"], "must be 'epoch' or a positive integer"),
        (["--checkpoints_total_limit", "0"], "expected a positive integer, got 0"),
        (["--checkpoints_total_limit", "1"], "must be at least 2: accelerate deletes the oldest checkpoint before"),
        (["--overwrite_output_dir", "--resume_from_checkpoint", "latest"], "cannot be combined"),
        (["--batch_size", "0"], "expected a positive integer, got 0"),
        (["--logging_steps", "-1"], "expected a positive integer, got -1"),
        (["--optimizer", "lion"], "invalid choice: 'lion'"),
        (["--learning_rate", "-1"], "expected a positive number, got -1.0"),
    ],
)
def test_bad_command_lines_exit_with_usage(argv, message, capsys):
    with pytest.raises(SystemExit):
        recipe.parse_args(argv)
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------
# In other processes: killed with SIGKILL, and 2-process DDP. There the recipe runs under tests/recipe_launcher.py,
# which instruments it from outside (slower data, recorded shards).
# --------------------------------------------------------------------------------------------------------------


def launch(output_dir: Path, *recipe_args: str, console: Path, fetch_delay: float = 0.0) -> subprocess.Popen:
    """Start the recipe in a subprocess, its output going to ``console`` (a pipe nobody reads could fill up)."""
    command = [sys.executable, str(LAUNCHER), "--fetch_delay", str(fetch_delay), "--"]
    command += [*recipe_args, "--output_dir", str(output_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same threads in every run: the same float sums
    with console.open("w") as handle:
        return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)


def on_one_thread(argv: list[str]) -> dict:
    """``recipe.main(argv)`` on one thread, as the subprocesses of :func:`launch` run: the same float sums."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return recipe.main(argv)
    finally:
        torch.set_num_threads(threads)


def test_a_run_killed_with_sigkill_resumes_bit_for_bit(tmp_path):
    recipe_args = SMALL_RUN + ["--config_overrides", '{"dropout": 0.2}', "--num_epochs", "3", "--report_to", "none"]
    recipe_args += ["--checkpointing_steps", "5", "--logging_steps", "3"]
    reference_dir, killed_dir, console = tmp_path / "reference", tmp_path / "killed", tmp_path / "victim.txt"
    victim = launch(killed_dir, *recipe_args, console=console, fetch_delay=0.002)  # 32 rows x 2 ms: ~70 ms a step
    reference = on_one_thread(recipe_args + ["--output_dir", str(reference_dir)])  # while the victim starts up

    deadline = time.monotonic() + 240
    while find_last_checkpoint(killed_dir) is None:  # the first complete checkpoint (step 5)
        assert victim.poll() is None, console.read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint in 240 s"
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL
    assert not (killed_dir / "all_results.json").exists(), "the run finished before it was killed"
    last = json.loads((find_last_checkpoint(killed_dir) / "trainer_state.json").read_text())
    assert 5 <= last["completed_steps"] < 30

    resumed = on_one_thread(recipe_args + ["--output_dir", str(killed_dir), "--resume_from_checkpoint", "latest"])
    # The same checkpoints, the same final and best weights byte for byte, the same log and results.
    assert checkpoint_steps(killed_dir) == checkpoint_steps(reference_dir) == {"checkpoint_4": 25, "checkpoint_5": 30}
    for relative in ("checkpoints/checkpoint_5/model.safetensors", "best/model.safetensors", "train_log.jsonl"):
        assert (killed_dir / relative).read_bytes() == (reference_dir / relative).read_bytes(), relative
    assert without_timings(resumed) == without_timings(reference)
    # It did resume: it trained only the epochs the checkpoint had not finished (10 steps each).
    assert len(resumed["train_epoch_seconds"]) == 3 - last["completed_steps"] // 10


def test_a_run_with_augmentation_killed_with_sigkill_resumes_bit_for_bit(tmp_path):
    """The same with every kind of draw on: per-sample transforms (in the launcher's instrumented dataset, which keeps
    them) and mixes; the resumed process re-derives them from the seed, the epoch, the row and the step."""
    recipe_args = SMALL_RUN + ["--config_overrides", '{"dropout": 0.2}', "--num_epochs", "2", "--report_to", "none"]
    recipe_args += ["--checkpointing_steps", "5", "--logging_steps", "3", "--rotation", "15", "--translate", "0.1"]
    recipe_args += ["--auto_augment", "trivialaugment", "--gaussian_noise", "0.05", "--mixup", "0.2", "--cutmix", "1"]
    reference_dir, killed_dir, console = tmp_path / "reference", tmp_path / "killed", tmp_path / "victim.txt"
    victim = launch(killed_dir, *recipe_args, console=console, fetch_delay=0.002)
    reference = on_one_thread(recipe_args + ["--output_dir", str(reference_dir)])

    deadline = time.monotonic() + 240
    while find_last_checkpoint(killed_dir) is None:
        assert victim.poll() is None, console.read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint in 240 s"
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL
    assert not (killed_dir / "all_results.json").exists(), "the run finished before it was killed"
    last = json.loads((find_last_checkpoint(killed_dir) / "trainer_state.json").read_text())
    assert 5 <= last["completed_steps"] < 20

    resumed = on_one_thread(recipe_args + ["--output_dir", str(killed_dir), "--resume_from_checkpoint", "latest"])
    for relative in ("checkpoints/checkpoint_3/model.safetensors", "best/model.safetensors", "train_log.jsonl"):
        assert (killed_dir / relative).read_bytes() == (reference_dir / relative).read_bytes(), relative
    assert without_timings(resumed) == without_timings(reference)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_process_ddp_shards_the_data_and_keeps_weights_in_sync(tmp_path):
    """A real 2-process gloo run on CPU: the ranks train on disjoint halves of each epoch and end identical."""
    accelerate = Path(sys.executable).with_name("accelerate")
    record_dir, output_dir = tmp_path / "record", tmp_path / "run"
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())]
    command += [str(LAUNCHER), "--record", str(record_dir), "--", "--model", "mlp-digits", "--report_to", "none"]
    command += ["--max_train_samples", "256", "--max_eval_samples", "90", "--batch_size", "32", "--num_epochs", "2"]
    command += ["--output_dir", str(output_dir)]
    # ACCELERATE_USE_CPU with --multi_gpu is what gives two real processes on a CPU machine (see STACK.md).
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-4000:]

    ranks = [json.loads((record_dir / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [(r["process_index"], r["num_processes"]) for r in ranks] == [(0, 2), (1, 2)]
    assert [len(r["fetched"]) for r in ranks] == [256, 256]  # 2 epochs x 4 steps x 32 rows, each
    for epoch in (slice(0, 128), slice(128, 256)):
        first, second = (set(r["fetched"][epoch]) for r in ranks)
        assert len(first) == len(second) == 128
        assert not first & second
        assert first | second == set(range(256))
    assert ranks[0]["fetched"][:128] != ranks[0]["fetched"][128:]  # reshuffled each epoch
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]

    results = json.loads((output_dir / "all_results.json").read_text())
    assert results["num_processes"] == 2 and results["train_steps"] == 8
    assert results["eval_samples"] == 90  # gather_for_metrics dropped the padding of the last eval batch
    assert (output_dir / "best" / "model.safetensors").is_file()
