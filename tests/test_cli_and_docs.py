"""The ``hfdl`` command and the README's promises (its feature table is rendered from the registry)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ARCH_TASKS, REPO_ROOT, build_model

import hfdl
from hfdl.cli import main
from hfdl.registry import REGISTRY, registry_as_dicts
from hfdl.tools.feature_table import COLUMNS, NO, YES, check_readme, render_row

EXPORTED = [param for param in ARCH_TASKS if param.values[1].export_config is not None]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hfdl.cli", *args], capture_output=True, text=True, timeout=600, env=env, cwd=REPO_ROOT
    )


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """``hfdl.cli.main`` in this process (no interpreter start-up): exit status, stdout, stderr."""
    capsys.readouterr()  # drop what the test's own set-up printed (save_pretrained's progress bar)
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, out: str, err: str, message: str) -> None:
    """A user error: exit status 1, nothing on stdout, exactly one line on stderr that says what is wrong."""
    assert status == 1 and out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("hfdl: error: ") and "Traceback" not in err, err
    assert re.search(message, err), err


def test_list_json_is_the_registry(capsys):
    status, out, _ = run_main(capsys, "list", "--json")
    assert status == 0
    assert json.loads(out) == registry_as_dicts()


def test_list_table_names_every_architecture_task_and_preset(capsys):
    status, out, _ = run_main(capsys, "list")
    assert status == 0
    for entry in registry_as_dicts():
        assert entry["model_type"] in out
        for name in [*entry["presets"], *entry["tasks"]]:
            assert name in out


def test_unknown_command_fails_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2 and "invalid choice: 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize(("spec", "task"), EXPORTED)
def test_export_command_exports_every_head_from_its_folder(capsys, tmp_path, spec, task):
    """Base models included: the task comes from the folder's saved `architectures`."""
    build_model(spec, task).save_pretrained(tmp_path / "model")
    status, out, err = run_main(capsys, "export", "onnx", str(tmp_path / "model"), str(tmp_path / "onnx"))
    assert status == 0, err
    assert f"({task.task}, opset 18)" in out and f"max abs diff {task.main_output}: " in out
    assert (tmp_path / "onnx" / "model.onnx").is_file()


@pytest.fixture(scope="module")
def saved_lenet5(tmp_path_factory):
    spec = REGISTRY["lenet5"]
    folder = tmp_path_factory.mktemp("cli") / "lenet5"
    build_model(spec, spec.task()).save_pretrained(folder)
    return folder


def test_export_command_user_errors_are_one_line(capsys, tmp_path, saved_lenet5):
    out_dir = str(tmp_path / "onnx")
    status, out, err = run_main(capsys, "export", "onnx", str(tmp_path / "missing"), out_dir)
    assert_one_line_error(status, out, err, r"missing is not a directory; pass a folder written by save_pretrained")

    (tmp_path / "no-config").mkdir()
    status, out, err = run_main(capsys, "export", "onnx", str(tmp_path / "no-config"), out_dir)
    assert_one_line_error(status, out, err, r"no-config has no config\.json")

    status, out, err = run_main(capsys, "export", "onnx", str(saved_lenet5), out_dir, "--task", "object-detection")
    assert_one_line_error(status, out, err, r"lenet5 has no 'object-detection' head; available: image-classification")

    spec = REGISTRY["mlp"]
    not_exported = next(task for task in spec.tasks if task.export_config is None)
    build_model(spec, not_exported).save_pretrained(tmp_path / "regression")
    status, out, err = run_main(capsys, "export", "onnx", str(tmp_path / "regression"), out_dir)
    assert_one_line_error(status, out, err, rf"Cannot export the '{not_exported.task}' head .*Auto class")

    status, out, err = run_main(capsys, "export", "onnx", str(saved_lenet5), out_dir, "--opset", "12")
    assert_one_line_error(status, out, err, r"`opset` must be an integer in \[18, ")
    assert not (tmp_path / "onnx").exists()


def test_export_command_on_a_corrupt_checkpoint_prints_one_line(tmp_path, saved_lenet5):
    """In a real process: the exit status and stderr a shell user sees for a truncated download."""
    import shutil

    shutil.copytree(saved_lenet5, tmp_path / "truncated")
    weights = tmp_path / "truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    result = run_cli("export", "onnx", str(tmp_path / "truncated"), str(tmp_path / "onnx"))
    assert_one_line_error(
        result.returncode,
        result.stdout,
        result.stderr,
        r"Cannot load the weights of LeNet5ForImageClassification .*corrupt",
    )


def test_train_command_user_error_is_one_line(capsys, tmp_path):
    status, out, err = run_main(capsys, "train", "--model", "no-such-model", "--output_dir", str(tmp_path / "out"))
    assert_one_line_error(status, out, err, r"Unknown architecture or preset 'no-such-model'; available: ")
    assert not (tmp_path / "out").exists()


def test_demo_rejects_a_non_positive_epoch_count(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--num_epochs", "0", "--no-serve"])
    assert exit_info.value.code == 2
    assert "--num_epochs: must be a positive integer, got 0" in capsys.readouterr().err


def test_readme_feature_table_is_rendered_from_the_registry():
    assert check_readme(REPO_ROOT / "README.md"), "run `python -m hfdl.tools.feature_table --write README.md`"


def _claimed_tasks(spec, cell: str) -> list[str]:
    """The tasks a coverage cell claims: every head for ✓, the listed ones for ✓ (a, b), none for –."""
    if cell == NO:
        return []
    listed = cell.removeprefix(YES).strip(" ()")
    return [task.task for task in spec.tasks] if not listed else listed.split(", ")


@pytest.mark.parametrize("spec", list(REGISTRY.values()), ids=list(REGISTRY))
def test_feature_table_claims_what_the_registry_backs(spec):
    cells = dict(zip(COLUMNS, render_row(spec), strict=True))
    # ONNX: exactly the heads tests/test_export.py exports (those whose task spec names an export config).
    assert _claimed_tasks(spec, cells["ONNX"]) == [task.task for task in spec.tasks if task.export_config]
    assert _claimed_tasks(spec, cells["remote code"]) == [task.task for task in spec.tasks if task.auto_class]
    assert cells["heads"] == ", ".join(f"`{task.model_class.__name__}`" for task in spec.tasks)
    recipes = re.findall(r"`(\w+)`", cells["recipe"])
    assert recipes == list(dict.fromkeys(task.recipe for task in spec.tasks if task.recipe))
    for recipe in recipes:
        assert (REPO_ROOT / "recipes" / f"{recipe}.py").is_file()


def test_readme_names_the_two_setup_commands_and_ci_calls_the_test_one():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_main_job_trains_saves_exports_and_serves(tmp_path):
    """`make demo` end to end, shortened to one epoch and a Space that stops once it answered its URL; then the
    README's quickstart, pasted as written, runs against what it left (the demo's default outputs/ layout)."""
    output_dir = tmp_path / "outputs" / "lenet5-digits"
    result = run_cli(
        "demo", "--num_epochs", "1", "--output_dir", str(output_dir), "--port", str(_free_port()), "--smoke"
    )
    assert result.returncode == 0, result.stderr[-4000:]
    best = output_dir / "best"
    assert (best / "model.safetensors").exists() and (best / "preprocessor_config.json").exists()
    assert "library_name: transformers" in (best / "README.md").read_text()
    assert (output_dir / "onnx" / "model.onnx").exists()
    assert "max abs diff" in result.stdout
    assert "Space running on http://127.0.0.1:" in result.stdout

    readme = (REPO_ROOT / "README.md").read_text()
    quickstart = re.search(r"## Quickstart\s+```python\n(.*?)```", readme, re.S).group(1)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    ran = subprocess.run([sys.executable, "-c", quickstart], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr[-4000:]
    predictions, true_label = re.fullmatch(r"(\[.*\]) true label: (\d)\n", ran.stdout).groups()
    assert len(ast.literal_eval(predictions)) == 3
    assert (tmp_path / "outputs" / "my-lenet" / "preprocessor_config.json").exists()
    assert "accuracy" in (tmp_path / "outputs" / "my-lenet" / "README.md").read_text()


def test_registry_spaces_and_notebooks_exist_and_use_the_architecture():
    import hfdl

    for spec in hfdl.REGISTRY.values():
        names = {spec.name, spec.config_class.__name__, *(t.model_class.__name__ for t in spec.tasks), *spec.presets}
        for space in spec.spaces:
            assert (REPO_ROOT / "spaces" / space / "app.py").exists()
        for notebook in spec.notebooks:
            text = (REPO_ROOT / "notebooks" / f"{notebook}.ipynb").read_text()
            assert any(name in text for name in names), f"{notebook} does not use {spec.name}"


# --------------------------------------------------------------------------------------------- hfdl predict
@pytest.fixture
def classifier_dir(tmp_path):
    """A tiny seeded LeNet-5 with its image processor and class names, and two image files."""
    import numpy as np
    from PIL import Image

    spec = REGISTRY["lenet5"]
    labels = {0: "zero", 1: "one", 2: "two"}
    model = build_model(spec, spec.task("image-classification"), id2label=labels)
    model.save_pretrained(tmp_path / "model")
    spec.make_image_processor(model.config).save_pretrained(tmp_path / "model")
    generator = np.random.default_rng(0)
    paths = []
    for index in range(2):
        paths.append(tmp_path / f"digit{index}.png")
        Image.fromarray(generator.integers(0, 256, (20, 24), dtype=np.uint8)).save(paths[-1])
    return tmp_path / "model", paths


def test_predict_prints_the_models_top_k(classifier_dir, capsys):
    import torch
    from PIL import Image

    model_dir, paths = classifier_dir
    status, out, _ = run_main(capsys, "predict", str(model_dir), *map(str, paths), "--top_k", "2", "--json")
    assert status == 0
    results = json.loads(out)
    spec = REGISTRY["lenet5"]
    model = spec.task().model_class.from_pretrained(model_dir).eval()
    processor = spec.image_processor_class.from_pretrained(model_dir)
    with torch.no_grad():
        probabilities = torch.softmax(
            model(**processor([Image.open(p) for p in paths], return_tensors="pt")).logits, -1
        )
    for result, path, row in zip(results, paths, probabilities):
        scores, indices = row.topk(2)
        assert result["image"] == str(path)
        assert [p["label"] for p in result["predictions"]] == [model.config.id2label[int(i)] for i in indices]
        assert [p["score"] for p in result["predictions"]] == pytest.approx(scores.tolist(), abs=1e-6)
    status, out, _ = run_main(capsys, "predict", str(model_dir), str(paths[0]))
    assert status == 0 and out.startswith(f"{paths[0]}: ") and out.count("(") == 3  # three classes, default top 3


def test_predict_user_errors_are_one_line(classifier_dir, capsys, tmp_path):
    model_dir, paths = classifier_dir
    (tmp_path / "notes.txt").write_text("not an image")
    assert_one_line_error(
        *run_main(capsys, "predict", str(model_dir), str(tmp_path / "notes.txt")), r"notes\.txt is not an image file"
    )
    assert_one_line_error(*run_main(capsys, "predict", str(tmp_path / "nowhere"), str(paths[0])), r"No such folder")
    spec = REGISTRY["lenet5"]
    build_model(spec, spec.task("image-feature-extraction")).save_pretrained(tmp_path / "backbone")
    assert_one_line_error(
        *run_main(capsys, "predict", str(tmp_path / "backbone"), str(paths[0])),
        r"is a 'image-feature-extraction' model; `hfdl predict` classifies images",
    )


def test_predict_gives_a_one_logit_head_its_sigmoid(classifier_dir, capsys, tmp_path):
    """A binary head has one logit: its score is sigmoid(logit), never a softmax's constant 1.0."""
    import torch
    from PIL import Image

    spec = REGISTRY["mlp"]
    model = build_model(spec, spec.task("image-classification"), num_labels=1)
    model.save_pretrained(tmp_path / "binary")
    spec.make_image_processor(model.config).save_pretrained(tmp_path / "binary")
    _, paths = classifier_dir
    status, out, _ = run_main(capsys, "predict", str(tmp_path / "binary"), str(paths[0]), "--json")
    assert status == 0
    (prediction,) = json.loads(out)[0]["predictions"]
    processor = spec.image_processor_class.from_pretrained(tmp_path / "binary")
    with torch.no_grad():
        logit = model(**processor(Image.open(paths[0]), return_tensors="pt")).logits[0, 0]
    assert prediction == {"label": "0", "score": pytest.approx(logit.sigmoid().item(), abs=1e-6)}


def test_train_command_runs_the_recipe_of_the_models_head(capsys, tmp_path):
    from hfdl.cli import recipe_for_model

    assert recipe_for_model("lenet5-modern") == recipe_for_model(None) == "train_image_classifier"
    assert recipe_for_model("vae-mnist") == recipe_for_model("hfdl-autoencoder") == "train_autoencoder"
    assert recipe_for_model("cgan-mnist") == "train_gan"
    assert recipe_for_model("no-such-model") == "train_image_classifier"  # which then names what is allowed
    hfdl.create_model(
        "gan-mnist", image_size=8, generator_hidden_sizes=[8], discriminator_hidden_sizes=[8]
    ).save_pretrained(tmp_path / "gan")
    assert recipe_for_model(str(tmp_path / "gan")) == "train_gan"
    overrides = '{"image_size": 8, "hidden_sizes": [16], "latent_dim": 4}'
    status = main(
        ["train", "--model", "ae-mnist", "--config_overrides", overrides, "--max_steps", "3"]
        + ["--report_to", "none", "--output_dir", str(tmp_path / "ae")]
    )
    assert status == 0
    results = json.loads((tmp_path / "ae" / "all_results.json").read_text())
    assert results["train_steps"] == 3 and "eval_mse" in results  # the autoencoder recipe's metrics
