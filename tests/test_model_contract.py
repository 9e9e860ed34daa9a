"""The contract every hfdl architecture passes, parametrized from the registry.

A new architecture gets all of these tests the day it is added to ``hfdl.registry.REGISTRY``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ARCH_TASKS, ARCHITECTURES, AUTO_ARCH_TASKS, auto_from_pretrained, build_model, example_inputs, flat
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoImageProcessor, AutoModel

import hfdl
from hfdl.registry import REGISTRY, _build_registry, get_architecture, registry_as_dicts, resolve_preset
from hfdl.tools.check_copies import check_copies

PROBE = Path(__file__).with_name("remote_code_probe.py")


HEADS_WITH_LOSS = [p for p in ARCH_TASKS if p.values[1].labels is not None]
IMAGE_PROCESSOR_TASKS = [p for p in AUTO_ARCH_TASKS if p.values[1].processor == "image"]


def main_output(outputs, task) -> torch.Tensor:
    return flat(outputs[task.main_output])


# --------------------------------------------------------------------------------------------- forward and loss
@pytest.mark.parametrize(("spec", "task"), ARCH_TASKS)
def test_forward_shapes_and_hidden_states(spec, task):
    model = build_model(spec, task)
    inputs = example_inputs(model, task, batch_size=3)
    assert list(inputs) == [p for p in inspect.signature(model.forward).parameters][: len(inputs)], (
        "the task spec's inputs must be the forward's leading parameters, in order"
    )
    outputs = model(**inputs, output_hidden_states=True)
    result = main_output(outputs, task)
    assert result.shape[0] == 3 and torch.isfinite(result).all()
    if task.labels is not None:
        assert result.shape == task.output_shape(model.config, 3)
    assert outputs.hidden_states, "output_hidden_states=True must return per-layer activations"
    assert all(h.shape[0] == 3 for h in outputs.hidden_states)
    assert model(**inputs).hidden_states is None
    # return_dict=False gives a tuple whose first tensor (after the loss, absent here) is the main output.
    torch.testing.assert_close(flat(model(**inputs, return_dict=False)[0]), result)


@pytest.mark.parametrize(("spec", "task"), HEADS_WITH_LOSS)
def test_loss_and_gradients_with_labels(spec, task):
    model = build_model(spec, task).train()
    inputs = example_inputs(model, task, batch_size=4)
    outputs = model(**inputs, labels=task.make_labels(model.config, batch_size=4))
    assert outputs.loss is not None and outputs.loss.ndim == 0 and torch.isfinite(outputs.loss)
    outputs.loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"
    assert model(**inputs).loss is None


def test_binary_head_uses_bce_and_a_valid_problem_type(tmp_path):
    """One logit means binary classification with BCE; the problem_type saved is one transformers 4.57 accepts."""
    spec = REGISTRY["mlp"]
    task = spec.task("image-classification")
    model = build_model(spec, task, num_labels=1)
    inputs = example_inputs(model, task, batch_size=4)
    labels = torch.tensor([0.0, 1.0, 1.0, 0.0])
    outputs = model(**inputs, labels=labels)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(outputs.logits.squeeze(1), labels)
    torch.testing.assert_close(outputs.loss, expected)
    assert model.config.problem_type == "multi_label_classification"
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["problem_type"] == "multi_label_classification"
    # Integer class indices on a multi-class head pick softmax + cross-entropy.
    multi = build_model(spec, task)
    loss = multi(**inputs, labels=torch.tensor([0, 1, 2, 1])).loss
    torch.testing.assert_close(
        loss, torch.nn.functional.cross_entropy(multi(**inputs).logits, torch.tensor([0, 1, 2, 1]))
    )
    assert multi.config.problem_type == "single_label_classification"


# --------------------------------------------------------------------------------------------- save and load
@pytest.mark.parametrize(("spec", "task"), ARCH_TASKS)
def test_save_load_round_trip_is_bit_exact(spec, task, tmp_path):
    model = build_model(spec, task)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin")), "weights must be safetensors only"
    assert not (tmp_path / "README.md").exists(), "save_pretrained writes no model card (hfdl.hub does)"
    loaded = task.model_class.from_pretrained(tmp_path).eval()
    reference = model.state_dict()
    assert loaded.state_dict().keys() == reference.keys()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, reference[name]), name
    inputs = example_inputs(model, task)
    assert torch.equal(main_output(loaded(**inputs), task), main_output(model(**inputs), task))
    ignored = {"_name_or_path"}
    assert {k: v for k, v in loaded.config.to_dict().items() if k not in ignored} == {
        k: v for k, v in model.config.to_dict().items() if k not in ignored
    }


@pytest.mark.parametrize(("spec", "task"), AUTO_ARCH_TASKS)
def test_auto_classes_resolve(spec, task, tmp_path):
    config = spec.config_class(**spec.test_config)
    assert type(AutoConfig.for_model(spec.model_type, **spec.test_config)) is spec.config_class
    assert type(task.auto_class.from_config(config)) is task.model_class
    model = build_model(spec, task)
    model.save_pretrained(tmp_path)
    loaded = auto_from_pretrained(task.auto_class, tmp_path)
    assert type(loaded) is task.model_class
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == spec.model_type
    assert saved["auto_map"][task.auto_class.__name__].endswith(task.model_class.__name__)
    if task.processor == "image":
        spec.make_image_processor(model.config).save_pretrained(tmp_path)
        assert type(AutoImageProcessor.from_pretrained(tmp_path)) is spec.image_processor_class


def test_every_architecture_has_a_base_model_for_automodel():
    for spec in REGISTRY.values():
        assert spec.base_task is not None and spec.base_task.auto_class is AutoModel, spec.name
        assert type(AutoModel.from_config(spec.config_class(**spec.test_config))) is spec.base_task.model_class


# --------------------------------------------------------------------------------------------- remote code and Hub
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


@pytest.fixture(scope="module")
def remote_code_report(tmp_path_factory) -> dict:
    """Save every Auto head once, as a folder and as a Hub cache snapshot, and load them all in two fresh
    interpreters (hfdl blocked, hfdl imported): interpreter start-up is the cost, so it is paid twice, not per head."""
    root = tmp_path_factory.mktemp("remote_code")
    hf_home = root / "hf_home"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # The probe computes with this process's thread count: convolutions (transposed ones above all) sum in another
    # order with another count, and the outputs are compared bit for bit.
    env.update(
        HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(hf_home), OMP_NUM_THREADS=str(torch.get_num_threads())
    )
    items, expected = [], {}
    for param in AUTO_ARCH_TASKS:
        spec, task = param.values
        folder = root / param.id
        model = build_model(spec, task)
        model.save_pretrained(folder)
        if task.processor == "image":
            spec.make_image_processor(model.config).save_pretrained(folder)
        inputs = example_inputs(model, task)
        inputs_path = root / f"{param.id}-inputs.safetensors"
        save_file(inputs, inputs_path)
        repo_id = f"hfdl-test/{param.id}"
        _write_hub_snapshot(hf_home, repo_id, folder)
        with torch.no_grad():
            expected[param.id] = main_output(model(**inputs), task)
        for source in (str(folder), repo_id):
            items.append(
                {"id": param.id, "source": source, "auto_class": task.auto_class.__name__, "inputs": str(inputs_path)}
                | {"main_output": task.main_output, "processor": task.processor == "image"}
            )
    report = {}
    for block_hfdl in (True, False):
        job_items = [item | {"output": str(root / f"out-{block_hfdl}-{i}.safetensors")} for i, item in enumerate(items)]
        job = root / f"job-{block_hfdl}.json"
        job.write_text(json.dumps({"block_hfdl": block_hfdl, "items": job_items}))
        result = subprocess.run(
            [sys.executable, str(PROBE), str(job)], capture_output=True, text=True, env=env, cwd=root, timeout=600
        )
        assert result.returncode == 0, result.stderr[-4000:]
        loaded = json.loads(result.stdout.strip().splitlines()[-1])
        for item in job_items:
            entry = loaded[item["source"]]
            entry.update(load_file(item["output"]))
            report.setdefault(item["id"], []).append({"block_hfdl": block_hfdl, "source": item["source"], **entry})
    return {"loaded": report, "expected": expected}


@pytest.mark.parametrize(("spec", "task"), AUTO_ARCH_TASKS)
def test_remote_code_and_hub_repo_id_without_hfdl(spec, task, remote_code_report, request):
    """Saved folders and Hub snapshots load with trust_remote_code where hfdl cannot be imported, and with hfdl."""
    case = request.node.callspec.id
    loads = remote_code_report["loaded"][case]
    assert len(loads) == 4  # (folder, repo id) x (hfdl blocked, hfdl imported)
    for entry in loads:
        assert entry["class"] == task.model_class.__name__
        if entry["block_hfdl"]:
            assert entry["module"].startswith("transformers_modules"), entry
        else:
            assert entry["module"].startswith("hfdl."), entry
        assert torch.equal(entry["output"], remote_code_report["expected"][case]), entry["source"]
        if task.processor == "image":  # the processor loads the same way and computes what hfdl's computes
            assert entry["processor_module"].startswith("transformers_modules" if entry["block_hfdl"] else "hfdl.")
            image = torch.arange(20 * 24, dtype=torch.uint8).reshape(20, 24).numpy()
            processor = spec.make_image_processor(spec.config_class(**spec.test_config))
            torch.testing.assert_close(entry["pixel_values"], processor(image, return_tensors="pt")["pixel_values"])


ALLOWED_TOP_LEVEL_IMPORTS = {"torch", "transformers", "numpy", "PIL", "__future__"}  # numpy/PIL: transformers deps


@pytest.mark.parametrize("spec", ARCHITECTURES)
def test_model_folder_is_remote_code_safe(spec):
    folder = Path(inspect.getfile(spec.config_class)).parent
    # __init__.py declares the folder's registry entry for hfdl and is never part of the Hub copy.
    files = [path for path in folder.glob("*.py") if path.name != "__init__.py"]
    siblings = {path.stem for path in files}
    for path in files:
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
    inputs = example_inputs(model.base_model.model, task, batch_size=4)
    labels = task.make_labels(model.base_model.model.config, batch_size=4)
    for _ in range(2):
        if labels is None:  # a base model: any differentiable function of its output trains the adapters
            loss = main_output(model(**inputs), task).square().mean()
        else:
            loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        adapted = main_output(model(**inputs), task)
        original = main_output(task.model_class.from_pretrained(base_dir)(**inputs), task)
    assert not torch.allclose(adapted, original), "two LoRA steps must change the outputs"
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()

    fresh_base = task.model_class.from_pretrained(base_dir)
    reloaded = peft.PeftModel.from_pretrained(fresh_base, tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(main_output(reloaded(**inputs), task), adapted, rtol=0, atol=0)
        merged = reloaded.merge_and_unload()
        torch.testing.assert_close(main_output(merged(**inputs), task), adapted, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(("spec", "task"), [p for p in ARCH_TASKS if p.values[1].inputs[0].kind == "float"])
def test_bad_inputs_name_the_expected_shape(spec, task):
    model = build_model(spec, task)
    good = example_inputs(model, task, batch_size=2)[model.main_input_name]
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


@pytest.mark.parametrize(("spec", "task"), [p for p in ARCH_TASKS if p.values[1].inputs[0].kind == "token_ids"])
def test_bad_token_ids_say_what_was_wrong(spec, task):
    model = build_model(spec, task)
    config = model.config
    good = example_inputs(model, task, batch_size=2)["input_ids"]
    bad_inputs = {
        "float ids": (good.float(), r"must be an integer tensor of shape \(batch_size, sequence_length\)"),
        "missing batch axis": (good[0], r"must have shape \(batch_size, sequence_length\), got \(8,\)"),
        "not a tensor": (good.tolist(), r"must be a torch.Tensor of shape"),
        "id past the vocabulary": (good.clone().fill_(config.vocab_size), rf"vocab_size={config.vocab_size}"),
        "negative id": (good.clone().fill_(-1), r"token ids from -1"),
    }
    if config.position_embedding_type == "learned":
        too_long = torch.zeros(2, config.max_position_embeddings + 1, dtype=torch.long)
        bad_inputs["longer than the position table"] = (too_long, r"max_position_embeddings=\d+")
    for case, (value, message) in bad_inputs.items():
        with pytest.raises(ValueError, match=message) as error:
            model(input_ids=value)
        assert "input_ids" in str(error.value), case
    with pytest.raises(ValueError, match=r"`attention_mask` covers 5 positions.*8"):
        model(input_ids=good, attention_mask=torch.ones(2, 5, dtype=torch.long))


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
    # Head fields every config passes on to PretrainedConfig (a bare TypeError there would not name them).
    yield "num_labels", "3"
    yield "num_labels", 0
    yield "problem_type", "binary_classification"


@pytest.mark.parametrize("spec", ARCHITECTURES)
def test_invalid_config_names_field_and_allowed_values(spec):
    cases = list(_invalid_config_cases(spec))
    assert cases
    for field, value in cases:
        with pytest.raises(ValueError, match=rf"`{field}(\[\d+\])?`") as error:
            spec.config_class(**{**spec.test_config, field: value})
        if value in ("no-such-choice", "binary_classification"):
            assert "must be one of" in str(error.value), (field, str(error.value))


@pytest.mark.parametrize(("spec", "task"), AUTO_ARCH_TASKS)
def test_corrupt_or_missing_weights_give_clear_errors(spec, task, tmp_path):
    build_model(spec, task).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(Exception, match=r"(?i)safetensors|header|deserializ|incomplete|invalid"):
        auto_from_pretrained(task.auto_class, tmp_path)
    weights.unlink()
    with pytest.raises(OSError, match=r"model\.safetensors|weights"):
        auto_from_pretrained(task.auto_class, tmp_path)


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


def test_names_are_unique_and_a_bare_architecture_name_means_its_default_preset():
    names = [n for spec in REGISTRY.values() for n in (spec.name, spec.model_type, *spec.presets)]
    assert len(names) == len(set(names))
    for spec in REGISTRY.values():
        assert resolve_preset(spec.name) == (spec, spec.default_preset)
        for preset in spec.presets:
            assert resolve_preset(preset) == (spec, preset)
    with pytest.raises(ValueError, match="used by both"):
        _build_registry([*REGISTRY.values(), dataclasses.replace(REGISTRY["mlp"], name="mlp2", model_type="hfdl-x")])


def test_create_model_builds_any_head_from_a_name():
    model = hfdl.create_model("lenet5")
    assert type(model).__name__ == "LeNet5ForImageClassification" and model.config.activation == "relu"
    assert hfdl.create_model("lenet5-1998").config.activation == "tanh"
    base = hfdl.create_model("mlp-mnist", task="feature-extraction", dropout=0.0)
    assert type(base).__name__ == "MLPModel" and base.config.image_size == 28 and base.config.dropout == 0.0
    assert hfdl.create_model("hfdl-mlp", num_labels=2).config.num_labels == 2
    with pytest.raises(ValueError, match="has no 'fill-mask' head; available: image-classification"):
        hfdl.create_model("lenet5", task="fill-mask")
    with pytest.raises(ValueError, match="`dropout` must be a number in"):
        hfdl.create_model("lenet5", dropout=2)
    assert hfdl.LeNet5Config is REGISTRY["lenet5"].config_class  # classes are reachable from the package


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


PIPELINE_SCRIPT = """
import sys
import hfdl
from transformers import pipeline
classifier = pipeline("image-classification", model=sys.argv[1], device="cpu")
print("CLASS", type(classifier.model).__module__, flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_pipeline_with_hfdl_imported_never_asks_to_run_remote_code(tmp_path, offline_env):
    """In a terminal or notebook, a "Do you wish to run the custom code? [y/N]" prompt would block; stdin here is a
    real terminal (a pty), so a prompt would show in the output and the process would wait for an answer."""
    spec = REGISTRY["lenet5"]
    model = hfdl.create_model("lenet5")
    model.save_pretrained(tmp_path / "model")
    spec.make_image_processor(model.config).save_pretrained(tmp_path / "model")
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", PIPELINE_SCRIPT, str(tmp_path / "model")],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=offline_env,
        close_fds=True,
    )
    os.close(secondary)
    output, deadline = b"", time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if b"[y/N]" in output:
                break
        elif process.poll() is not None:
            break
    process.kill()
    process.wait()
    os.close(primary)
    text = output.decode(errors="replace")
    assert "[y/N]" not in text and "custom code" not in text, text[-2000:]
    assert "CLASS hfdl.models.lenet5" in text, text[-2000:]
    assert "Falling back" not in text, text[-2000:]  # hfdl's processor serves every backend, without a warning
