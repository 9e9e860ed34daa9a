"""Export hfdl checkpoints with Optimum's official ONNX exporter, then check the graphs; runs in ``.venv-optimum``.

optimum-onnx (``main_export``, ``ORTModelForImageClassification``) pins ``transformers<4.58``, so it cannot share
hfdl's venv. This script runs in its own venv where hfdl is *not* installed, which is the point: it proves that

1. the export configs in ``hfdl/export/configs.py`` (loaded here by file path) drive the official exporter, and
2. a checkpoint saved by hfdl loads and exports as Hub remote code (``trust_remote_code=True``) without hfdl.

For every model folder given (saved with ``save_pretrained`` + the image processor) it runs ``main_export``, then
``validate_model_outputs`` (which raises on a mismatch; ``main_export``'s own validation only logs), then loads the
result with optimum's ``ORTModelForImageClassification`` and compares its logits with the remote-code PyTorch model
on a batch of another size. Results go to stdout (and ``--results``) as JSON; the exit status is 1 if any failed.

    .venv-optimum/bin/python tests/optimum_lane/export_with_optimum.py --output-root /tmp/onnx MODEL_DIR [...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

TASK = "image-classification"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIGS_FILE = REPO_ROOT / "hfdl" / "export" / "configs.py"
#: Batch sizes of optimum's validation and of the ORTModel comparison; the export traces with optimum's default (2).
VALIDATION_BATCH_SIZE = 3
COMPARISON_BATCH_SIZE = 5


def load_configs_module(path: Path) -> ModuleType:
    """Import hfdl/export/configs.py as a standalone module (hfdl itself is not importable in this venv)."""
    spec = importlib.util.spec_from_file_location("hfdl_export_configs", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclass/typing machinery looks the module up by name
    spec.loader.exec_module(module)
    return module


def export_and_check(configs: ModuleType, model_dir: Path, output_dir: Path, output_hidden_states: bool) -> dict:
    """Export one checkpoint with ``main_export`` and check it three ways; return the figures."""
    from optimum.exporters.onnx import main_export, validate_model_outputs
    from optimum.onnxruntime import ORTModelForImageClassification
    from transformers import AutoConfig, AutoModelForImageClassification

    started = time.perf_counter()
    config = AutoConfig.from_pretrained(model_dir, trust_remote_code=True)
    export_config = configs.get_export_config(config, TASK, output_hidden_states=output_hidden_states)
    main_export(
        str(model_dir),
        output=str(output_dir),
        task=TASK,
        opset=export_config.DEFAULT_ONNX_OPSET,
        custom_onnx_configs={"model": export_config},
        trust_remote_code=True,
        do_validation=False,  # it would only log a mismatch; validate_model_outputs below raises instead
        library_name="transformers",
    )
    onnx_path = output_dir / "model.onnx"

    reference = AutoModelForImageClassification.from_pretrained(model_dir, trust_remote_code=True).eval()
    # main_export applied these to its own copy of the model; the reference must return the same outputs.
    for key, value in (export_config.values_override or {}).items():
        setattr(reference.config, key, value)
    validate_model_outputs(
        config=export_config,
        reference_model=reference,
        onnx_model=onnx_path,
        onnx_named_outputs=list(export_config.outputs),
        atol=export_config.ATOL_FOR_VALIDATION,
        input_shapes={"batch_size": VALIDATION_BATCH_SIZE},
        use_subprocess=False,
    )

    ort_model = ORTModelForImageClassification.from_pretrained(output_dir, trust_remote_code=True)
    generator = torch.Generator().manual_seed(0)
    pixel_values = torch.randn(
        (COMPARISON_BATCH_SIZE, config.num_channels, config.image_size, config.image_size), generator=generator
    )
    with torch.inference_mode():
        expected = reference(pixel_values=pixel_values).logits
    logits = ort_model(pixel_values=pixel_values).logits
    input_shape = ort_model.model.get_inputs()[0].shape
    return {
        "model_type": config.model_type,
        "onnx_path": str(onnx_path),
        "onnx_outputs": [node.name for node in ort_model.model.get_outputs()],
        "onnx_input_shape": [str(dim) for dim in input_shape],
        "ort_logits_shape": list(logits.shape),
        "ort_logits_max_abs_diff": float(np.max(np.abs(logits.numpy() - expected.numpy()))),
        "atol": float(export_config.ATOL_FOR_VALIDATION),
        # main_export copies preprocessors without trust_remote_code, so a remote-code image processor is left out.
        "preprocessor_config_saved": (output_dir / "preprocessor_config.json").is_file(),
        "validate_model_outputs": "passed",
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dirs", nargs="+", type=Path, help="folders saved by hfdl as remote code")
    parser.add_argument("--output-root", type=Path, required=True, help="one ONNX folder per model is made here")
    parser.add_argument("--configs-file", type=Path, default=DEFAULT_CONFIGS_FILE, help="hfdl/export/configs.py")
    parser.add_argument("--with-hidden-states", action="store_true", help="also export each model's hidden states")
    parser.add_argument("--results", type=Path, help="also write the JSON results to this file")
    args = parser.parse_args(argv)

    import optimum.version
    import transformers

    configs = load_configs_module(args.configs_file)
    results = []
    for model_dir in args.model_dirs:
        for hidden in (False, True) if args.with_hidden_states else (False,):
            output_dir = args.output_root / (model_dir.name + ("-hidden-states" if hidden else ""))
            try:
                result = {"ok": True, **export_and_check(configs, model_dir, output_dir, hidden)}
            except Exception as error:  # report every model, then fail
                result = {"ok": False, "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
            results.append(
                {"model_dir": str(model_dir), "name": model_dir.name, "output_hidden_states": hidden, **result}
            )
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
    print(text)
    return 0 if all(result["ok"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
