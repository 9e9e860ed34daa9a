"""``import hfdl`` needs only the core dependencies; features of an extra name the extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

OPTIONAL_MODULES = [
    "accelerate",
    "datasets",
    "peft",
    "timm",
    "torchvision",
    "sklearn",
    "matplotlib",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "optimum",
    "gradio",
    "gradio_client",
    "diffusers",
]

PROBE = textwrap.dedent(
    """
    import sys, tempfile
    # A None entry in sys.modules makes `import x` raise ModuleNotFoundError and find_spec(x) return None,
    # exactly as if the package were not installed.
    for name in sys.argv[1].split(","):
        sys.modules[name] = None
    import torch
    import hfdl
    import hfdl.pipelines  # the package imports; its pipelines need diffusers only when used
    from transformers import AutoModelForImageClassification

    model = hfdl.create_model("lenet5").eval()
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        loaded = AutoModelForImageClassification.from_pretrained(folder)
        from hfdl.hub import save_for_hub  # publishing needs only huggingface_hub, a core dependency
        save_for_hub(model, folder + "/published")
    inputs = hfdl.get_architecture("lenet5").task().make_inputs(model.config)
    assert torch.equal(loaded(**inputs).logits, model(**inputs).logits)
    print("core-ok")
    for module, call in (("hfdl.data", "load_digits_dataset"), ("hfdl.export", None), ("hfdl.lora", None)):
        try:
            imported = __import__(module, fromlist=["_"])
            if call:
                getattr(imported, call)()
            elif module == "hfdl.lora":
                imported.make_lora_config(model)
        except ImportError as error:
            print(module, "->", error)
    """
)


def test_import_hfdl_with_core_dependencies_only():
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(OPTIONAL_MODULES)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "core-ok" in lines
    messages = {line.split(" -> ")[0]: line for line in lines if " -> " in line}
    assert "pip install 'hfdl[train]'" in messages["hfdl.data"]
    assert "pip install 'hfdl[export]'" in messages["hfdl.export"]
    assert "pip install 'hfdl[train]'" in messages["hfdl.lora"]
