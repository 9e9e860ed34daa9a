"""The optimum lane: hfdl checkpoints as remote code on transformers 4.57, exported by Optimum's official exporter.

optimum-onnx cannot be installed beside transformers 5, so this lane runs in a second venv (``make optimum-venv``)
where hfdl is *not* installed. Every registry head with an Auto class is saved here as remote code, plus a one-label
MLP trained for one BCE step (a saved ``problem_type`` that transformers 4.57 must accept);
``tests/optimum_lane/export_with_optimum.py`` then loads them all in ONE subprocess (the lane's cost is mostly that
interpreter's start-up), compares their outputs with hfdl's, exports every head with an export config through
optimum's ``TasksManager`` registration and through ``main_export`` with hidden states, and reports JSON that these
tests check.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT, build_model, flat

from hfdl.export import export_config_for
from hfdl.registry import REGISTRY

pytestmark = pytest.mark.slow

LANE_SCRIPT = REPO_ROOT / "tests" / "optimum_lane" / "export_with_optimum.py"
CONFIGS_FILE = REPO_ROOT / "hfdl" / "export" / "configs.py"
#: Heads that can be remote code (an Auto class loads them by task), by lane name.
LANE_HEADS = {
    f"{spec.name}-{task.task}": (spec, task) for spec in REGISTRY.values() for task in spec.tasks if task.auto_class
}
EXPORTED_HEADS = [name for name, (_, task) in LANE_HEADS.items() if task.export_config is not None]
ONE_LABEL_MLP = "mlp-one-label-trained"


def optimum_python() -> Path:
    """The lane's interpreter: ``$HFDL_OPTIMUM_PYTHON``, else the repository's ``.venv-optimum``."""
    return Path(os.environ.get("HFDL_OPTIMUM_PYTHON", REPO_ROOT / ".venv-optimum" / "bin" / "python"))


def train_one_label_mlp():
    """A binary MLP (one logit) after one BCE step: the step stores ``problem_type`` in its config, as training does."""
    spec = REGISTRY["mlp"]
    task = spec.task("image-classification")
    model = build_model(spec, task, num_labels=1).train()
    inputs = task.make_inputs(model.config, batch_size=4)
    loss = model(**inputs, labels=torch.tensor([0, 1, 1, 0])).loss
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    return model.eval()


def build_lane_model(spec, task):
    """The head's tiny test model; text models with wider weights than the default N(0, 0.02), so that padding moves
    their outputs well above atol and greedy decoding does not settle on one repeated token after a step or two."""
    text = task.inputs[0].kind == "token_ids"
    return build_model(spec, task, **({"initializer_range": 0.5} if text else {}))


def lane_entry(name: str, model, task, folder: Path) -> tuple[dict, torch.Tensor]:
    """What the lane script needs about one head, from its task spec, and the hfdl outputs to compare with."""
    inputs = task.make_inputs(model.config, batch_size=2, seed=0)
    with torch.inference_mode():
        expected = flat(model(**inputs)[task.main_output])  # a backbone's maps as the lane script flattens them
    entry = {
        "name": name,
        "model_dir": str(folder),
        "task": task.task,
        "auto_class": task.auto_class.__name__,
        "main_output": task.main_output,
        "export_config": task.export_config,
        "inputs": {spec.name: spec.dynamic_axes for spec in task.inputs},
        "check_inputs": {name: value.tolist() for name, value in inputs.items()},
    }
    if task.task == "text-generation":
        entry["generate"] = generation_prompt(model.config)
    return entry, expected


def generation_prompt(config) -> dict:
    """A batch of three prompts for greedy decoding, the last one left-padded; ``max_new_tokens`` fills the context."""
    generator = torch.Generator().manual_seed(7)
    input_ids = torch.randint(0, config.vocab_size, (3, 5), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, :2] = 0
    prompt = {"input_ids": input_ids.tolist(), "attention_mask": attention_mask.tolist()}
    return {"prompt": prompt, "max_new_tokens": config.max_position_embeddings - 5}


@pytest.fixture(scope="module")
def lane(tmp_path_factory) -> dict:
    """Run the lane once; returns ``{"report": ..., "expected": {head: hfdl output}, "models": {head: model}}``."""
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
    manifest, expected, models = [], {}, {}
    heads = {name: (spec, task, build_lane_model(spec, task)) for name, (spec, task) in LANE_HEADS.items()}
    heads[ONE_LABEL_MLP] = (REGISTRY["mlp"], REGISTRY["mlp"].task("image-classification"), train_one_label_mlp())
    for name, (spec, task, model) in heads.items():
        folder = root / "models" / name
        model.save_pretrained(folder)  # registered for auto classes: writes the modeling files and auto_map
        processor = spec.make_image_processor(model.config) if task.processor == "image" else None
        if processor is not None:
            processor.save_pretrained(folder)
        entry, expected[name] = lane_entry(name, model, task, folder)
        if name == ONE_LABEL_MLP:
            entry["export_config"] = None  # what is checked is that 4.57 loads it
        manifest.append(entry)
        models[name] = model
    (root / "manifest.json").write_text(json.dumps(manifest))

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
        str(root / "manifest.json"),
        "--configs-file",
        str(CONFIGS_FILE),
        "--output-root",
        str(root / "onnx"),
        "--results",
        str(results_file),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=400, env=env, cwd=root)
    if not results_file.exists():
        pytest.fail(f"The lane script crashed (exit {completed.returncode}):\n{completed.stderr[-5000:]}")
    report = json.loads(results_file.read_text())
    report["returncode"] = completed.returncode
    return {"report": report, "expected": expected, "models": models}


def lane_result(lane: dict, name: str) -> dict:
    result = lane["report"]["results"][name]
    if "skipped" in result:
        pytest.skip(f"{name}: {result['skipped']}")
    assert result["ok"], f"{result['error']}\n{result['traceback']}"
    return result


def test_lane_runs_official_exporter_without_hfdl(lane):
    report = lane["report"]
    assert report["hfdl_importable"] is False, "the lane must load the checkpoints as remote code"
    assert report["uses_optimum_onnx_config"] is True  # configs.py picked optimum-onnx's OnnxConfig as base
    assert report["versions"]["transformers"].startswith("4.")
    assert set(report["results"]) == {*LANE_HEADS, ONE_LABEL_MLP}
    failures = [f"{name}: {r['error']}\n{r['traceback']}" for name, r in report["results"].items() if not r["ok"]]
    assert not failures, "\n".join(failures)
    assert report["returncode"] == 0


@pytest.mark.parametrize("name", [*LANE_HEADS, ONE_LABEL_MLP])
def test_remote_code_on_transformers_4_computes_what_hfdl_computes(lane, name):
    result = lane_result(lane, name)
    model = lane["models"][name]
    assert result["remote_code_class"] == type(model).__name__
    assert result["remote_code_module"].startswith("transformers_modules.")  # the folder's own code, not hfdl
    torch.testing.assert_close(torch.tensor(result["remote_code_output"]), lane["expected"][name], atol=1e-5, rtol=0)


def test_trained_one_label_mlp_loads_on_transformers_4(lane):
    """A one-logit head trained with BCE saves problem_type="multi_label_classification", which 4.57 accepts
    (an earlier hfdl wrote "binary_classification", which 4.57 refuses to load)."""
    model = lane["models"][ONE_LABEL_MLP]
    assert model.config.problem_type == "multi_label_classification" and model.config.num_labels == 1
    result = lane_result(lane, ONE_LABEL_MLP)
    assert (result["problem_type"], result["num_labels"]) == ("multi_label_classification", 1)


@pytest.mark.parametrize("name", EXPORTED_HEADS)
def test_optimum_export_after_tasks_manager_registration(lane, name):
    result = lane_result(lane, name)
    _, task = LANE_HEADS[name]
    config = lane["models"][name].config
    exported = result["registered_export"]
    assert exported["onnx_outputs"] == [task.main_output]
    # Dynamic axes where the task spec has them, sizes from the config elsewhere.
    assert exported["onnx_inputs"] == {
        spec.name: [spec.dynamic_axes.get(axis, str(size)) for axis, size in enumerate((0, *spec.shape(config)))]
        for spec in task.inputs
    }
    diff = exported["max_abs_diff"]
    assert isinstance(diff, float) and math.isfinite(diff)
    assert 0.0 <= diff < result["atol"], f"{exported['ort_class']} differs by {diff} (atol {result['atol']})"


@pytest.mark.parametrize("name", EXPORTED_HEADS)
def test_optimum_main_export_with_hidden_states(lane, name):
    result = lane_result(lane, name)
    _, task = LANE_HEADS[name]
    exported = result["main_export"]
    assert exported["validate_model_outputs"] == "passed"
    # Both exporters count the hidden states off the model and name the outputs the same way.
    expected_outputs = export_config_for(lane["models"][name], task, output_hidden_states=True).outputs
    assert exported["onnx_outputs"] == list(expected_outputs)
    assert 0.0 <= exported["max_abs_diff"] < result["atol"]


GENERATION_HEADS = [name for name, (_, task) in LANE_HEADS.items() if task.task == "text-generation"]


@pytest.mark.parametrize("name", GENERATION_HEADS)
def test_optimum_exports_the_decoder_with_its_cache_and_generates_pytorchs_tokens(lane, name):
    """text-generation-with-past: optimum-onnx's ORTModelForCausalLM decodes over the exported key/value cache and
    must give hfdl's own greedy tokens (PyTorch, transformers 5) as well as the remote code's (transformers 4.57)."""
    result = lane_result(lane, name)
    model = lane["models"][name]
    entry = generation_prompt(model.config)
    prompt = {key: torch.tensor(value) for key, value in entry["prompt"].items()}
    with torch.inference_mode():
        expected = model.generate(**prompt, max_new_tokens=entry["max_new_tokens"], do_sample=False, pad_token_id=0)
    with_past = result["with_past"]
    assert with_past["pytorch_tokens"] == expected.tolist()  # remote code on 4.57 == hfdl on 5.x
    assert with_past["validate_model_outputs"] == "passed"
    layers = range(model.config.num_hidden_layers)
    past_inputs = [f"past_key_values.{i}.{kind}" for i in layers for kind in ("key", "value")]
    present_outputs = [f"present.{i}.{kind}" for i in layers for kind in ("key", "value")]
    for way in ("registered", "main_export"):
        exported = with_past[way]
        assert exported["onnx_inputs"] == ["input_ids", "attention_mask", *past_inputs], way
        assert exported["onnx_outputs"] == ["logits", *present_outputs], way
        assert exported["can_use_cache"] is True, way
        assert exported["tokens"] == expected.tolist(), way
