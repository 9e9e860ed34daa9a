"""The ``hfdl`` command and the README's promises (its feature table is rendered from the registry)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO_ROOT

from hfdl.registry import registry_as_dicts
from hfdl.tools.feature_table import check_readme


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hfdl.cli", *args], capture_output=True, text=True, timeout=600, env=env, cwd=REPO_ROOT
    )


def test_list_json_is_the_registry():
    result = run_cli("list", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == registry_as_dicts()


def test_list_table_names_every_architecture_and_preset():
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    for entry in registry_as_dicts():
        assert entry["model_type"] in result.stdout
        for preset in entry["presets"]:
            assert preset in result.stdout


def test_unknown_command_fails_with_usage():
    result = run_cli("frobnicate")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_readme_feature_table_is_rendered_from_the_registry():
    assert check_readme(REPO_ROOT / "README.md"), "run `python -m hfdl.tools.feature_table --write README.md`"


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
    """`make demo` end to end, shortened to one epoch and a Space that stops once it answered its URL."""
    output_dir = tmp_path / "lenet5-digits"
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


def test_export_command_validates_a_saved_model(tmp_path):
    import hfdl

    spec = hfdl.get_architecture("lenet5")
    model = spec.task("image-classification").model_class(spec.config_class(**spec.test_config))
    model.save_pretrained(tmp_path / "model")
    result = run_cli("export", "onnx", str(tmp_path / "model"), str(tmp_path / "onnx"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "max abs diff logits:" in result.stdout and (tmp_path / "onnx" / "model.onnx").exists()


def test_registry_spaces_and_notebooks_exist_and_use_the_architecture():
    import hfdl

    for spec in hfdl.REGISTRY.values():
        names = {spec.name, spec.config_class.__name__, *(t.model_class.__name__ for t in spec.tasks), *spec.presets}
        for space in spec.spaces:
            assert (REPO_ROOT / "spaces" / space / "app.py").exists()
        for notebook in spec.notebooks:
            text = (REPO_ROOT / "notebooks" / f"{notebook}.ipynb").read_text()
            assert any(name in text for name in names), f"{notebook} does not use {spec.name}"
