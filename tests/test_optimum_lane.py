"""The optimum lane: hfdl's export configs driving Optimum's official exporter (optimum-onnx on transformers 4.57).

optimum-onnx cannot be installed beside transformers 5, so the export runs in a second venv (``make optimum-venv``)
where hfdl is *not* installed. Here every registry architecture with an image-classification head is saved as
remote code; ``tests/optimum_lane/export_with_optimum.py`` then exports them all in ONE subprocess (the lane's cost
is mostly that interpreter's start-up), with and without hidden states, and reports JSON that these tests check.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
import torch

from hfdl.export import get_export_config
from hfdl.registry import REGISTRY

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
LANE_SCRIPT = REPO_ROOT / "tests" / "optimum_lane" / "export_with_optimum.py"
CONFIGS_FILE = REPO_ROOT / "hfdl" / "export" / "configs.py"
TASK = "image-classification"
LANE_ARCHITECTURES = [
    spec.name for spec in REGISTRY.values() if any(t.task == TASK and t.auto_class is not None for t in spec.tasks)
]


def optimum_python() -> Path:
    """The lane's interpreter: ``$HFDL_OPTIMUM_PYTHON``, else the repository's ``.venv-optimum``."""
    return Path(os.environ.get("HFDL_OPTIMUM_PYTHON", REPO_ROOT / ".venv-optimum" / "bin" / "python"))


@pytest.fixture(scope="module")
def lane_report(tmp_path_factory) -> dict:
    python = optimum_python()
    if not python.exists():
        reason = (
            f"optimum lane skipped: no interpreter at {python}. Run `make optimum-venv` to create .venv-optimum "
            "(or point HFDL_OPTIMUM_PYTHON at one)."
        )
        if os.environ.get("HFDL_REQUIRE_OPTIMUM_LANE") == "1":  # CI sets this so a missing venv cannot pass silently
            pytest.fail(reason)
        print(reason)
        pytest.skip(reason)

    root = tmp_path_factory.mktemp("optimum_lane")
    model_dirs = []
    for name in LANE_ARCHITECTURES:
        spec = REGISTRY[name]
        config = spec.make_config(**spec.test_config)
        torch.manual_seed(0)
        model = spec.task(TASK).model_class(config)
        model_dir = root / "models" / name
        model.save_pretrained(model_dir)  # registered for auto classes: writes the modeling files and auto_map
        processor = spec.make_image_processor(config)
        if processor is not None:
            processor.save_pretrained(model_dir)
        model_dirs.append(model_dir)

    # No PYTHONPATH: the lane must not see this checkout's hfdl. A private modules cache keeps remote code fresh.
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_MODULES_CACHE=str(root / "modules"),
        PYTHONNOUSERSITE="1",
    )
    results_file = root / "results.json"
    command = [
        str(python),
        str(LANE_SCRIPT),
        "--configs-file",
        str(CONFIGS_FILE),
        "--output-root",
        str(root / "onnx"),
        "--with-hidden-states",
        "--results",
        str(results_file),
        *map(str, model_dirs),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=root)
    if not results_file.exists():
        pytest.fail(f"The lane script crashed (exit {completed.returncode}):\n{completed.stderr[-5000:]}")
    report = json.loads(results_file.read_text())
    report["returncode"] = completed.returncode
    return report


def test_lane_runs_official_exporter_without_hfdl(lane_report):
    assert lane_report["hfdl_importable"] is False, "the lane must load the checkpoints as remote code"
    assert lane_report["uses_optimum_onnx_config"] is True  # configs.py picked optimum-onnx's OnnxConfig as base
    assert lane_report["versions"]["transformers"].startswith("4.")
    failures = [f"{r['name']}: {r['error']}\n{r['traceback']}" for r in lane_report["results"] if not r["ok"]]
    assert not failures, "\n".join(failures)
    assert lane_report["returncode"] == 0


@pytest.mark.parametrize("output_hidden_states", [False, True], ids=["logits", "hidden-states"])
@pytest.mark.parametrize("name", LANE_ARCHITECTURES)
def test_optimum_export_matches_pytorch(lane_report, name, output_hidden_states):
    results = [
        r for r in lane_report["results"] if r["name"] == name and r["output_hidden_states"] == output_hidden_states
    ]
    assert len(results) == 1, f"expected one lane result for {name}, got {results}"
    result = results[0]
    assert result["ok"], f"{result['error']}\n{result['traceback']}"
    assert result["validate_model_outputs"] == "passed"

    spec = REGISTRY[name]
    config = spec.make_config(**spec.test_config)
    expected_outputs = list(get_export_config(config, TASK, output_hidden_states=output_hidden_states).outputs)
    assert result["model_type"] == spec.model_type
    assert result["onnx_outputs"] == expected_outputs
    # Dynamic batch axis, static image sides; compared on a batch of 5 while optimum traced with 2.
    sample_shape = (config.num_channels, config.image_size, config.image_size)
    assert result["onnx_input_shape"] == ["batch_size", *map(str, sample_shape)]
    assert result["ort_logits_shape"] == [5, config.num_labels]
    diff = result["ort_logits_max_abs_diff"]
    assert isinstance(diff, float) and math.isfinite(diff)
    assert 0.0 <= diff < result["atol"], f"ORTModel logits differ by {diff} (atol {result['atol']})"
