"""recipes/train_image_classifier.py: trains, reports, checkpoints, resumes, and shards data under DDP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
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
from transformers import AutoImageProcessor, AutoModelForImageClassification  # noqa: E402

import hfdl  # noqa: E402, F401  (registers the Auto classes)
from hfdl.data import load_image_classification_dataset  # noqa: E402
from hfdl.recipes import train_image_classifier as recipe  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULT_KEYS = {
    "eval_accuracy",
    "eval_precision_macro",
    "eval_recall_macro",
    "eval_f1_macro",
    "eval_loss",
    "eval_confusion_matrix",
    "train_loss",
    "epoch",
    "train_steps",
    "train_seconds_per_epoch",
    "best_eval_accuracy",
}


def read_log(output_dir: Path) -> tuple[list[dict], list[dict]]:
    entries = [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]
    return [e for e in entries if "loss" in e], [e for e in entries if "eval_accuracy" in e]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.mark.parametrize("model", ["mlp-digits", "lenet5"])
def test_recipe_trains_reports_and_saves_a_loadable_best_model(tmp_path, model):
    output_dir = tmp_path / "run"
    argv = ["--model", model, "--output_dir", str(output_dir), "--num_epochs", "2", "--batch_size", "32"]
    results = recipe.main(argv + ["--max_train_samples", "640", "--max_eval_samples", "200"])

    # The loss fell, every step and epoch was logged, and main() returned what all_results.json holds.
    train_log, eval_log = read_log(output_dir)
    assert [entry["step"] for entry in train_log] == list(range(1, 41))
    assert mean([e["loss"] for e in train_log[-5:]]) < 0.7 * mean([e["loss"] for e in train_log[:5]])
    assert [entry["epoch"] for entry in eval_log] == [1.0, 2.0]
    assert RESULT_KEYS <= results.keys()
    assert json.loads((output_dir / "all_results.json").read_text()) == json.loads(json.dumps(results))
    assert results["train_steps"] == 40 and results["epoch"] == 2.0 and results["eval_samples"] == 200
    assert results["eval_accuracy"] > 0.5
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

    # The model card carries the metrics in its YAML block.
    card = (best / "README.md").read_text()
    metadata = yaml.safe_load(card.split("---")[1])
    metrics = {m["type"]: m["value"] for m in metadata["model-index"][0]["results"][0]["metrics"]}
    assert metrics["accuracy"] == pytest.approx(results["best_eval_accuracy"])
    assert "f1_macro" in metrics and metadata["datasets"] == ["sklearn-digits"]
    assert not list(output_dir.glob(".*")), "temporary files left behind"


def test_resume_from_a_step_checkpoint_continues_the_same_run(tmp_path):
    common = ["--model", "mlp-digits", "--batch_size", "32", "--max_train_samples", "320", "--max_eval_samples", "100"]
    common += ["--num_epochs", "3", "--lr_scheduler", "cosine", "--warmup_steps", "3"]
    full = recipe.main(common + ["--output_dir", str(tmp_path / "full"), "--checkpointing_steps", "15"])
    assert full["train_steps"] == 30
    assert sorted(p.name for p in (tmp_path / "full").glob("step_*")) == ["step_15", "step_30"]

    # Resume from step 15 (mid-epoch 2 of 3, 10 steps per epoch) in a fresh folder: it runs steps 16..30 only.
    resumed_dir = tmp_path / "resumed"
    resumed = recipe.main(
        common + ["--output_dir", str(resumed_dir), "--resume_from_checkpoint", str(tmp_path / "full" / "step_15")]
    )
    assert resumed["train_steps"] == 30 and resumed["epoch"] == 3.0
    full_log, _ = read_log(tmp_path / "full")
    resumed_log, resumed_evals = read_log(resumed_dir)
    assert [e["step"] for e in resumed_log] == list(range(1, 31))  # the log of steps 1..15 came with the checkpoint
    assert [e["epoch"] for e in resumed_evals] == [1.0, 2.0, 3.0]
    # Same batches, same dropout masks, same schedule: the resumed run retraces the uninterrupted one.
    for a, b in zip(full_log[15:], resumed_log[15:]):
        assert a["learning_rate"] == pytest.approx(b["learning_rate"])
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    assert resumed["eval_accuracy"] == pytest.approx(full["eval_accuracy"])

    # "latest" picks the checkpoint with the most steps; resuming a finished run just evaluates again.
    shutil.copytree(tmp_path / "full" / "step_15", resumed_dir / "step_15")
    shutil.copytree(tmp_path / "full" / "step_30", resumed_dir / "step_30")
    again = recipe.main(common + ["--output_dir", str(resumed_dir), "--resume_from_checkpoint", "latest"])
    assert again["train_steps"] == 30 and again["eval_accuracy"] == pytest.approx(full["eval_accuracy"])


def test_epoch_checkpoints(tmp_path):
    recipe.main(
        ["--model", "mlp-digits", "--max_train_samples", "128", "--max_eval_samples", "50", "--num_epochs", "2"]
        + ["--output_dir", str(tmp_path), "--checkpointing_steps", "epoch"]
    )
    assert sorted(p.name for p in tmp_path.glob("epoch_*")) == ["epoch_1", "epoch_2"]  # after epochs 1 and 2
    state = json.loads((tmp_path / "epoch_2" / "trainer_state.json").read_text())
    assert state["completed_steps"] == 4 and state["steps_per_epoch"] == 2


@pytest.mark.parametrize(
    "argv, error, match",
    [
        (["--model", "resnet-9000"], ValueError, "Unknown architecture or preset"),
        (["--config_overrides", "[1, 2]"], ValueError, "must be a JSON object"),
        (["--config_overrides", '{"dropout": 2}'], ValueError, "dropout"),
        (["--dataset", "/nonexistent/dir/"], ValueError, "does not exist"),
    ],
)
def test_bad_arguments_fail_clearly(tmp_path, argv, error, match):
    with pytest.raises(error, match=match):
        recipe.main(["--output_dir", str(tmp_path), "--max_steps", "1"] + argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["--checkpointing_steps", "often"],
        ["--checkpointing_steps", "0"],
        ["--batch_size", "0"],
        ["--optimizer", "lion"],
        ["--learning_rate", "-1"],
    ],
)
def test_bad_command_lines_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit):
        recipe.parse_args(argv)


@pytest.mark.parametrize("optimizer", recipe.OPTIMIZERS)
@pytest.mark.parametrize("scheduler", recipe.LR_SCHEDULERS)
def test_every_optimizer_and_schedule_builds_and_steps(optimizer, scheduler):
    args = recipe.parse_args(["--optimizer", optimizer, "--lr_scheduler", scheduler, "--warmup_steps", "2"])
    model = torch.nn.Linear(3, 2)
    opt = recipe.build_optimizer(args, model)
    schedule = recipe.build_scheduler(args, opt, total_steps=10)
    rates = []
    for _ in range(10):
        model(torch.ones(1, 3)).sum().backward()
        opt.step()
        rates.append(schedule.get_last_lr()[0])
        schedule.step()
    assert all(0 <= rate <= args.learning_rate * 1.0001 for rate in rates)
    assert opt.param_groups[1]["weight_decay"] == 0.0  # biases are not decayed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_process_ddp_shards_the_data_and_keeps_weights_in_sync(tmp_path):
    """A real 2-process gloo run on CPU: the ranks train on disjoint halves of each epoch and end identical."""
    accelerate = Path(sys.executable).with_name("accelerate")
    ids_dir, output_dir = tmp_path / "ids", tmp_path / "run"
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())]
    command += [str(REPO_ROOT / "recipes" / "train_image_classifier.py"), "--model", "mlp-digits"]
    command += ["--max_train_samples", "256", "--max_eval_samples", "90", "--batch_size", "32", "--num_epochs", "2"]
    command += ["--output_dir", str(output_dir), "--log_sample_ids", str(ids_dir)]
    # ACCELERATE_USE_CPU with --multi_gpu is what gives two real processes on a CPU machine (see STACK.md).
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-4000:]

    ranks = [json.loads((ids_dir / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["num_processes"] for r in ranks] == [2, 2]
    for epoch in ("0", "1"):
        first, second = (set(r["epochs"][epoch]) for r in ranks)
        assert len(first) == len(second) == 128  # 4 steps of 32 each
        assert not first & second
        assert first | second == set(range(256))
    assert ranks[0]["epochs"]["0"] != ranks[0]["epochs"]["1"]  # reshuffled each epoch
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]

    results = json.loads((output_dir / "all_results.json").read_text())
    assert results["num_processes"] == 2 and results["train_steps"] == 8
    assert results["eval_samples"] == 90  # gather_for_metrics dropped the padding of the last eval batch
    assert (output_dir / "best" / "model.safetensors").is_file()
