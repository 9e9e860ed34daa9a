"""The contract every hfdl architecture passes, parametrized from the registry.

A new architecture gets all of these tests the day it is added to ``hfdl.registry.REGISTRY``.
"""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ARCH_TASKS, ARCHITECTURES, AUTO_ARCH_TASKS, REPO_ROOT, build_model, example_inputs, main_output
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoImageProcessor, AutoModel

from hfdl.registry import REGISTRY, get_architecture, registry_as_dicts
from hfdl.tools.check_copies import check_copies

PROBE = Path(__file__).with_name("remote_code_probe.py")


def labels_for(model, batch_size: int) -> torch.Tensor:
    if "Regression" in type(model).__name__:
        return torch.randn(batch_size, model.config.num_labels)
    return torch.arange(batch_size) % model.config.num_labels


# --------------------------------------------------------------------------------------------- forward and loss
@pytest.mark.parametrize(("spec", "task"), ARCH_TASKS)
def test_forward_shapes_and_hidden_states(spec, task):
    model = build_model(spec, task)
    inputs = example_inputs(model, batch_size=3)
    outputs = model(**inputs, output_hidden_states=True)
    assert main_output(outputs).shape == (3, model.config.num_labels)
    assert outputs.hidden_states, "output_hidden_states=True must return per-layer activations"
    assert all(h.shape[0] == 3 for h in outputs.hidden_states)
    assert model(**inputs).hidden_states is None
    # dummy_inputs are small and valid, and return_dict=False gives a tuple with the same main tensor.
    dummy = model.dummy_inputs
    assert set(dummy) == {model.main_input_name}
    torch.testing.assert_close(model(**dummy, return_dict=False)[0], main_output(model(**dummy)))


@pytest.mark.parametrize(("spec", "task"), ARCH_TASKS)
def test_loss_and_gradients_with_labels(spec, task):
    model = build_model(spec, task).train()
    inputs = example_inputs(model, batch_size=4)
    outputs = model(**inputs, labels=labels_for(model, 4))
    assert outputs.loss is not None and outputs.loss.ndim == 0 and torch.isfinite(outputs.loss)
    outputs.loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"
    assert model(**inputs).loss is None


def test_binary_head_uses_bce_with_one_label():
    spec = REGISTRY["mlp"]
    model = build_model(spec, spec.task("image-classification"), num_labels=1)
    inputs = example_inputs(model, batch_size=4)
    labels = torch.tensor([0.0, 1.0, 1.0, 0.0])
    outputs = model(**inputs, labels=labels)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(outputs.logits.squeeze(1), labels)
    torch.testing.assert_close(outputs.loss, expected)
    assert model.config.problem_type == "binary_classification"


# --------------------------------------------------------------------------------------------- save and load
@pytest.mark.parametrize(("spec", "task"), ARCH_TASKS)
def test_save_load_round_trip_is_bit_exact(spec, task, tmp_path):
    model = build_model(spec, task)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin")), "weights must be safetensors only"
    loaded = task.model_class.from_pretrained(tmp_path).eval()
    reference = model.state_dict()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, reference[name]), name
    inputs = example_inputs(model)
    assert torch.equal(main_output(loaded(**inputs)), main_output(model(**inputs)))
    ignored = {"_name_or_path"}
    assert {k: v for k, v in loaded.config.to_dict().items() if k not in ignored} == {
        k: v for k, v in model.config.to_dict().items() if k not in ignored
    }


@pytest.mark.parametrize(("spec", "task"), AUTO_ARCH_TASKS)
def test_auto_classes_resolve(spec, task, tmp_path):
    config = spec.config_class(**spec.test_config)
    assert type(AutoConfig.for_model(spec.model_type, **spec.test_config)) is spec.config_class
    assert type(AutoModel.from_config(config)) is spec.base_model_class
    assert type(task.auto_class.from_config(config)) is task.model_class
    model = build_model(spec, task)
    model.save_pretrained(tmp_path)
    spec.make_image_processor(model.config).save_pretrained(tmp_path)
    loaded = task.auto_class.from_pretrained(tmp_path)
    assert type(loaded) is task.model_class
    assert type(AutoImageProcessor.from_pretrained(tmp_path)) is spec.image_processor_class
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == spec.model_type
    assert saved["auto_map"][task.auto_class.__name__].endswith(task.model_class.__name__)


@pytest.mark.parametrize(("spec", "task"), ARCH_TASKS)
def test_model_card_has_hub_metadata(spec, task, tmp_path):
    model = build_model(spec, task)
    model.save_pretrained(
        tmp_path,
        model_card_data={"datasets": ["ylecun/mnist"], "eval_results": {"accuracy": 0.987}, "eval_dataset": "mnist"},
    )
    card = (tmp_path / "README.md").read_text()
    header = card.split("---")[1]
    assert "library_name: transformers" in header
    assert f'pipeline_tag: "{task.task}"' in header
    assert f'- "{spec.model_type}"' in header and '- "ylecun/mnist"' in header
    assert "model-index:" in header and "value: 0.987" in header
    assert "| accuracy | 0.9870 |" in card


# --------------------------------------------------------------------------------------------- remote code and Hub
def _run_probe(items: list[dict], block_hfdl: bool, env: dict, tmp_path: Path) -> dict:
    job = tmp_path / f"job-{block_hfdl}.json"
    job.write_text(json.dumps({"block_hfdl": block_hfdl, "items": items}))
    result = subprocess.run(
        [sys.executable, str(PROBE), str(job)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _save_for_probe(spec, task, folder: Path) -> tuple[torch.nn.Module, Path]:
    model = build_model(spec, task)
    model.save_pretrained(folder)
    spec.make_image_processor(model.config).save_pretrained(folder)
    inputs_path = folder.parent / f"{folder.name}-inputs.safetensors"
    save_file(example_inputs(model), inputs_path)
    return model, inputs_path


def _write_hub_snapshot(hf_home: Path, repo_id: str, folder: Path) -> None:
    """Lay ``folder`` out as the Hub cache does after a download of ``repo_id`` at some commit."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


@pytest.mark.parametrize(("spec", "task"), AUTO_ARCH_TASKS)
def test_remote_code_and_hub_repo_id_without_hfdl(spec, task, tmp_path, offline_env):
    """Saved folders and Hub snapshots load with trust_remote_code where hfdl cannot be imported, and with hfdl."""
    folder = tmp_path / "saved"
    model, inputs_path = _save_for_probe(spec, task, folder)
    repo_id = f"hfdl-test/{spec.name}"
    _write_hub_snapshot(Path(offline_env["HF_HOME"]), repo_id, folder)
    with torch.no_grad():
        expected = main_output(model(**load_file(inputs_path)))
    for block_hfdl in (True, False):
        items = [
            {
                "source": source,
                "auto_class": task.auto_class.__name__,
                "inputs": str(inputs_path),
                "output": str(tmp_path / f"out-{block_hfdl}-{index}.safetensors"),
            }
            for index, source in enumerate((str(folder), repo_id))
        ]
        loaded = _run_probe(items, block_hfdl, offline_env, tmp_path)
        for item in items:
            assert loaded[item["source"]]["class"] == task.model_class.__name__
            module = loaded[item["source"]]["module"]
            assert module.startswith("transformers_modules") if block_hfdl else module.startswith("hfdl.")
            assert torch.equal(load_file(item["output"])["output"], expected), item["source"]


ALLOWED_TOP_LEVEL_IMPORTS = {"torch", "transformers", "numpy", "PIL", "__future__"}  # numpy/PIL: transformers deps


@pytest.mark.parametrize("spec", ARCHITECTURES)
def test_model_folder_is_remote_code_safe(spec):
    folder = Path(inspect.getfile(spec.config_class)).parent
    siblings = {path.stem for path in folder.glob("*.py")}
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [node.module.split(".")[0]]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 1 and node.module in siblings, f"{path.name}: only sibling imports allowed"
                continue
            else:
                continue
            for root in roots:
                assert root in ALLOWED_TOP_LEVEL_IMPORTS or root in sys.stdlib_module_names, f"{path.name}: {root}"


def test_copied_blocks_match_their_source():
    assert check_copies() == []


# --------------------------------------------------------------------------------------------- LoRA
@pytest.mark.parametrize(("spec", "task"), ARCH_TASKS)
def test_lora_train_save_reload_and_merge(spec, task, tmp_path):
    peft = pytest.importorskip("peft", reason="LoRA tests need peft (pip install 'hfdl[train]')")
    from hfdl.lora import make_lora_config

    base_dir = tmp_path / "base"
    build_model(spec, task).save_pretrained(base_dir)
    model = peft.get_peft_model(task.model_class.from_pretrained(base_dir), make_lora_config(build_model(spec, task)))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    inputs = example_inputs(model.base_model.model, batch_size=4)
    labels = labels_for(model.base_model.model, 4)
    for _ in range(2):
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        adapted = main_output(model(**inputs))
        original = main_output(task.model_class.from_pretrained(base_dir)(**inputs))
    assert not torch.allclose(adapted, original), "two LoRA steps must change the outputs"
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()

    fresh_base = task.model_class.from_pretrained(base_dir)
    reloaded = peft.PeftModel.from_pretrained(fresh_base, tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(main_output(reloaded(**inputs)), adapted, rtol=0, atol=0)
        merged = reloaded.merge_and_unload()
        torch.testing.assert_close(main_output(merged(**inputs)), adapted, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(("spec", "task"), ARCH_TASKS)
def test_bad_inputs_name_the_expected_shape(spec, task):
    model = build_model(spec, task)
    good = example_inputs(model, batch_size=2)[model.main_input_name]
    bad_inputs = {
        "wrong channels or features": torch.randn(2, *[s + 1 if i == 0 else s for i, s in enumerate(good.shape[1:])]),
        "wrong size": torch.randn(2, *good.shape[1:-1], good.shape[-1] + 3),
        "wrong dtype": good.to(torch.int64),
        "missing batch axis": good[0],
        "not a tensor": good.tolist(),
    }
    for case, value in bad_inputs.items():
        with pytest.raises(ValueError, match=r"(must have shape|of shape) \(batch_size, ") as error:
            model(**{model.main_input_name: value})
        assert model.main_input_name in str(error.value), case


def _invalid_config_cases(spec):
    """Negative sizes for every int / list-of-int field of the test config, and unknown choice values."""
    signature = inspect.signature(spec.config_class.__init__).parameters
    for field, value in spec.test_config.items():
        if field == "num_labels":
            continue
        if isinstance(value, int):
            yield field, -1
        elif isinstance(value, list) and value and isinstance(value[0], int):
            yield field, [*value[:-1], -2]
    for field in ("activation", "pooling", "initializer"):
        if field in signature:
            yield field, "no-such-choice"
    if "dropout" in signature:
        yield "dropout", 1.5


@pytest.mark.parametrize("spec", ARCHITECTURES)
def test_invalid_config_names_field_and_allowed_values(spec):
    cases = list(_invalid_config_cases(spec))
    assert cases
    for field, value in cases:
        with pytest.raises(ValueError, match=rf"`{field}(\[\d+\])?`") as error:
            spec.config_class(**{**spec.test_config, field: value})
        if value == "no-such-choice":
            assert "must be one of" in str(error.value), (field, str(error.value))


@pytest.mark.parametrize(("spec", "task"), AUTO_ARCH_TASKS)
def test_corrupt_or_missing_weights_give_clear_errors(spec, task, tmp_path):
    build_model(spec, task).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(Exception, match=r"(?i)safetensors|header|deserializ|incomplete|invalid"):
        task.auto_class.from_pretrained(tmp_path)
    weights.unlink()
    with pytest.raises(OSError, match=r"model\.safetensors|weights"):
        task.auto_class.from_pretrained(tmp_path)


# --------------------------------------------------------------------------------------------- registry and pipeline
def test_registry_lookup_and_json_view():
    assert get_architecture("lenet5-modern") is REGISTRY["lenet5"]
    assert get_architecture("hfdl-mlp") is REGISTRY["mlp"]
    with pytest.raises(ValueError, match="available: .*lenet5"):
        get_architecture("alexnet-xxl")
    view = registry_as_dicts()
    assert json.loads(json.dumps(view)) == view
    for spec in REGISTRY.values():
        assert spec.model_type.startswith("hfdl-")
        for preset in spec.presets:
            spec.make_config(preset)  # every preset is a valid config


@pytest.mark.parametrize(("spec", "task"), [p for p in AUTO_ARCH_TASKS if p.values[1].task == "image-classification"])
def test_image_classification_pipeline_on_rgb_images(spec, task, tmp_path):
    from PIL import Image
    from transformers import pipeline

    model = build_model(spec, task)
    model.save_pretrained(tmp_path)
    spec.make_image_processor(model.config).save_pretrained(tmp_path)
    classifier = pipeline("image-classification", model=str(tmp_path), device="cpu")
    image = Image.fromarray((torch.rand(20, 24, 3) * 255).to(torch.uint8).numpy(), mode="RGB")
    predictions = classifier(image, top_k=2)
    assert len(predictions) == 2 and all(0.0 <= p["score"] <= 1.0 for p in predictions)
    assert predictions[0]["label"] in model.config.id2label.values()


def test_repo_root_is_where_tests_expect():
    assert (REPO_ROOT / "hfdl" / "registry.py").exists()
