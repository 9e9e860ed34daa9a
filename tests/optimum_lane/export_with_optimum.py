"""Load hfdl checkpoints as remote code on transformers 4.57 and export them with Optimum's official ONNX exporter.

optimum-onnx (``main_export``, ``ORTModel*``) pins ``transformers<4.58``, so it cannot share hfdl's venv. This script
runs in its own venv where hfdl is *not* installed, which is the point: it proves that

1. a checkpoint saved by hfdl loads as Hub remote code (``trust_remote_code=True``) on transformers 4.57 and
   computes what hfdl computed (the test passes inputs and compares the outputs);
2. the export configs in ``hfdl/export/configs.py`` (loaded here by file path) drive Optimum's exporter, both ways
   an Optimum user would call it:

   * registered with optimum's ``TasksManager``, then ``ORTModelFor<Task>.from_pretrained(checkpoint,
     export=True)``, the one-line path, which finds the config through the registration alone;
   * ``main_export(custom_onnx_configs=...)`` with every hidden state as an output (their number read off the
     model), checked by ``validate_model_outputs``, which raises on a mismatch (``main_export``'s own validation
     only logs).

Each ORT model is then compared with the remote-code PyTorch model on a batch of another size than the export's.
Causal language models are exported a third way, with their key/value cache (``text-generation-with-past``,
``TextGenerationWithPastExportConfig``), both through the registration and through ``main_export``; optimum's
``ORTModelForCausalLM.generate`` then decodes greedily over that cache and must give PyTorch's tokens.

The test writes a JSON manifest of heads (folder, task, Auto class, export config name and inputs from hfdl's task
specs, inputs to compare on); this script writes a JSON report. All heads run in ONE process: the lane's cost is
mostly this interpreter's start-up.

    .venv-optimum/bin/python tests/optimum_lane/export_with_optimum.py MANIFEST.json --output-root /tmp/onnx \
        --results REPORT.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIGS_FILE = REPO_ROOT / "hfdl" / "export" / "configs.py"
#: Batch sizes of optimum's validation and of the ORTModel comparisons; optimum traces with its default (2).
VALIDATION_BATCH_SIZE = 3
COMPARISON_BATCH_SIZE = 5


def load_configs_module(path: Path) -> ModuleType:
    """Import hfdl/export/configs.py as a standalone module (hfdl itself is not importable in this venv)."""
    spec = importlib.util.spec_from_file_location("hfdl_export_configs", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclass/typing machinery looks the module up by name
    spec.loader.exec_module(module)
    return module


def max_abs_diff(got: torch.Tensor, want: torch.Tensor) -> float:
    if tuple(got.shape) != tuple(want.shape):
        raise ValueError(f"shape {tuple(got.shape)} in onnxruntime but {tuple(want.shape)} in PyTorch")
    return float(np.max(np.abs(got.double().numpy() - want.double().numpy()), initial=0.0))


def comparison_inputs(export_config: object) -> dict[str, torch.Tensor]:
    """Fresh seeded inputs of another batch size than the export's, from the export config's generators."""
    random.seed(COMPARISON_BATCH_SIZE)
    torch.manual_seed(COMPARISON_BATCH_SIZE)
    return export_config.generate_dummy_inputs(framework="pt", batch_size=COMPARISON_BATCH_SIZE)


def check_head(configs: ModuleType, head: dict, output_root: Path) -> dict:
    """Load one head as remote code, then (if it has an export config) export it both ways and compare."""
    import transformers
    from optimum.exporters.onnx import main_export, validate_model_outputs
    from optimum.exporters.tasks import TasksManager
    from optimum.onnxruntime.pipelines import ORT_TASKS_MAPPING

    auto_class = getattr(transformers, head["auto_class"], None)
    if auto_class is None:
        return {"skipped": f"transformers {transformers.__version__} has no {head['auto_class']}"}
    model_dir, main_output = Path(head["model_dir"]), head["main_output"]

    reference = auto_class.from_pretrained(model_dir, trust_remote_code=True).eval()
    check_inputs = {name: torch.tensor(value) for name, value in head["check_inputs"].items()}
    with torch.inference_mode():
        remote_output = reference(**check_inputs)[main_output]
    if isinstance(remote_output, tuple):  # a backbone's feature maps, compared flattened and concatenated
        remote_output = torch.cat([value.flatten(1) for value in remote_output], dim=1)
    result = {
        "remote_code_class": type(reference).__name__,
        "remote_code_module": type(reference).__module__,
        "problem_type": reference.config.problem_type,
        "num_labels": reference.config.num_labels,
        "remote_code_output": remote_output.tolist(),
    }
    if head["export_config"] is None:
        return result

    config = reference.config
    task = TasksManager.map_from_synonym(head["task"])  # optimum calls image-feature-extraction feature-extraction
    ort_class = ORT_TASKS_MAPPING[task][0]
    inputs = {name: {int(axis): axis_name for axis, axis_name in axes.items()} for name, axes in head["inputs"].items()}
    export_config = configs.get_export_config(config, head["export_config"], task=task, inputs=inputs)
    feeds = comparison_inputs(export_config)
    with torch.inference_mode():
        expected = reference(**feeds)[main_output]

    # Causal LMs: these two exports are the graphs without cache (optimum defaults to its cache for them).
    cache_kwargs = {"use_cache": False} if task == "text-generation" else {}

    # 1. Optimum's one-line path: only the TasksManager registration tells it how to export this model type.
    configs.register_with_optimum_tasks_manager(config.model_type, task, head["export_config"], inputs)
    ort_model = ort_class.from_pretrained(model_dir, export=True, trust_remote_code=True, **cache_kwargs)
    result["registered_export"] = {
        "ort_class": ort_class.__name__,
        "onnx_inputs": {node.name: [str(dim) for dim in node.shape] for node in ort_model.model.get_inputs()},
        "onnx_outputs": [node.name for node in ort_model.model.get_outputs()],
        "max_abs_diff": max_abs_diff(ort_model(**feeds)[main_output], expected),
    }

    # 2. main_export with the config object itself, exporting every hidden state too.
    num_hidden_states = configs.count_hidden_states(reference, export_config)
    hidden_config = configs.get_export_config(
        config,
        head["export_config"],
        task=task,
        inputs=inputs,
        output_hidden_states=True,
        num_hidden_states=num_hidden_states,
    )
    output_dir = output_root / head["name"]
    main_export(
        str(model_dir),
        output=str(output_dir),
        task=task,
        opset=hidden_config.DEFAULT_ONNX_OPSET,
        custom_onnx_configs={"model": hidden_config},
        trust_remote_code=True,
        do_validation=False,  # it would only log a mismatch; validate_model_outputs below raises instead
        library_name="transformers",
    )
    # main_export applied these to its own copy of the model; the reference must return the same outputs.
    for key, value in (hidden_config.values_override or {}).items():
        setattr(reference.config, key, value)
    validate_model_outputs(
        config=hidden_config,
        reference_model=reference,
        onnx_model=output_dir / "model.onnx",
        onnx_named_outputs=list(hidden_config.outputs),
        atol=hidden_config.ATOL_FOR_VALIDATION,
        input_shapes={"batch_size": VALIDATION_BATCH_SIZE},
        use_subprocess=False,
    )
    hidden_ort_model = ort_class.from_pretrained(output_dir, trust_remote_code=True, **cache_kwargs)
    result["main_export"] = {
        "onnx_outputs": [node.name for node in hidden_ort_model.model.get_outputs()],
        "validate_model_outputs": "passed",
        "max_abs_diff": max_abs_diff(hidden_ort_model(**feeds)[main_output], expected),
    }
    result["atol"] = float(hidden_config.ATOL_FOR_VALIDATION)
    if task == "text-generation":
        result["with_past"] = check_generation_with_past(configs, head, reference, output_root)
    return result


def check_generation_with_past(configs: ModuleType, head: dict, reference: torch.nn.Module, output_root: Path) -> dict:
    """Export the decoder with its key/value cache both ways and compare optimum's greedy ``generate`` with PyTorch's.

    3. ``text-generation-with-past`` registered with ``TextGenerationWithPastExportConfig``, then
       ``ORTModelForCausalLM.from_pretrained(checkpoint, export=True, use_cache=True)``;
    4. ``main_export(task="text-generation-with-past", custom_onnx_configs=...)`` with that config built with
       ``use_past=True, use_past_in_inputs=True``, checked by ``validate_model_outputs`` (logits and every
       ``present.<i>.key``/``.value``).
    """
    from optimum.exporters.onnx import main_export, validate_model_outputs
    from optimum.onnxruntime import ORTModelForCausalLM

    model_dir, config = Path(head["model_dir"]), reference.config
    prompt = {name: torch.tensor(value) for name, value in head["generate"]["prompt"].items()}
    max_new_tokens = head["generate"]["max_new_tokens"]
    generate_kwargs = {"max_new_tokens": max_new_tokens, "do_sample": False, "pad_token_id": 0}
    with torch.inference_mode():
        expected = reference.generate(**prompt, **generate_kwargs, use_cache=True)

    report = {"pytorch_tokens": expected.tolist()}
    configs.register_with_optimum_tasks_manager(
        config.model_type, "text-generation-with-past", "TextGenerationWithPastExportConfig"
    )
    registered = ORTModelForCausalLM.from_pretrained(model_dir, export=True, trust_remote_code=True, use_cache=True)
    report["registered"] = describe_generation(registered, prompt, generate_kwargs)

    past_config = configs.get_export_config(
        config, "TextGenerationWithPastExportConfig", task="text-generation", use_past=True, use_past_in_inputs=True
    )
    output_dir = output_root / f"{head['name']}-with-past"
    main_export(
        str(model_dir),
        output=str(output_dir),
        task="text-generation-with-past",
        opset=past_config.DEFAULT_ONNX_OPSET,
        custom_onnx_configs={"model": past_config},
        trust_remote_code=True,
        do_validation=False,
        library_name="transformers",
    )
    reference.config.use_cache = True
    validate_model_outputs(
        config=past_config,
        reference_model=reference,
        onnx_model=output_dir / "model.onnx",
        onnx_named_outputs=list(past_config.outputs),
        atol=past_config.ATOL_FOR_VALIDATION,
        input_shapes={"batch_size": VALIDATION_BATCH_SIZE, "sequence_length": 5},
        use_subprocess=False,
    )
    report["validate_model_outputs"] = "passed"
    exported = ORTModelForCausalLM.from_pretrained(output_dir, trust_remote_code=True, use_cache=True)
    report["main_export"] = describe_generation(exported, prompt, generate_kwargs)
    return report


def describe_generation(ort_model: object, prompt: dict[str, torch.Tensor], generate_kwargs: dict) -> dict:
    """The graph's cache inputs/outputs and the tokens of ``ort_model.generate`` (greedy)."""
    return {
        "onnx_inputs": [node.name for node in ort_model.model.get_inputs()],
        "onnx_outputs": [node.name for node in ort_model.model.get_outputs()],
        "can_use_cache": bool(ort_model.can_use_cache),
        "tokens": ort_model.generate(**prompt, **generate_kwargs).tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="JSON list of heads written by tests/test_optimum_lane.py")
    parser.add_argument("--output-root", type=Path, required=True, help="one ONNX folder per head is made here")
    parser.add_argument("--configs-file", type=Path, default=DEFAULT_CONFIGS_FILE, help="hfdl/export/configs.py")
    parser.add_argument("--results", type=Path, help="also write the JSON report to this file")
    args = parser.parse_args(argv)

    import optimum.version
    import transformers

    configs = load_configs_module(args.configs_file)
    results = {}
    for head in json.loads(args.manifest.read_text()):
        started = time.perf_counter()
        try:
            result = {"ok": True, **check_head(configs, head, args.output_root)}
        except Exception as error:  # report every head, then fail
            result = {"ok": False, "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
        results[head["name"]] = {**result, "seconds": round(time.perf_counter() - started, 2)}
    report = {
        "hfdl_importable": importlib.util.find_spec("hfdl") is not None,
        "uses_optimum_onnx_config": configs.HAS_OPTIMUM_ONNX,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "optimum": optimum.version.__version__,
        },
        "results": results,
    }
    text = json.dumps(report, indent=2)
    if args.results is not None:
        args.results.write_text(text)
    print(json.dumps({name: {k: v for k, v in r.items() if k != "remote_code_output"} for name, r in results.items()}))
    return 0 if all(result["ok"] for result in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
