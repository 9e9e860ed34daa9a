"""Loads saved models in a fresh interpreter, as a user of the Hub would, and writes their outputs.

Run by tests/test_model_contract.py as ``python remote_code_probe.py JOB.json``. With ``"block_hfdl": true`` every
import of hfdl fails, proving the saved folder carries all the code it needs (``trust_remote_code=True``).
"""

from __future__ import annotations

import importlib.abc
import json
import sys


class _BlockHfdl(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # noqa: ANN001, ANN201
        if fullname == "hfdl" or fullname.startswith("hfdl."):
            raise ImportError(f"hfdl is blocked in this probe (tried to import {fullname})")
        return None


def main() -> None:
    job = json.loads(open(sys.argv[1], encoding="utf-8").read())
    if job["block_hfdl"]:
        sys.meta_path.insert(0, _BlockHfdl())
    else:
        import hfdl  # noqa: F401  (registers the Auto classes)

    import torch
    import transformers
    from safetensors.torch import load_file, save_file

    results = {}
    for item in job["items"]:
        auto_class = getattr(transformers, item["auto_class"])
        model = auto_class.from_pretrained(item["source"], trust_remote_code=job["block_hfdl"]).eval()
        inputs = load_file(item["inputs"])
        with torch.no_grad():
            outputs = model(**inputs)
        tensors = {"output": outputs[item["main_output"]].contiguous()}
        results[item["source"]] = {"class": type(model).__name__, "module": type(model).__module__}
        if item.get("processor"):  # the image processor travels as remote code too
            processor = transformers.AutoImageProcessor.from_pretrained(
                item["source"], trust_remote_code=job["block_hfdl"]
            )
            image = torch.arange(20 * 24, dtype=torch.uint8).reshape(20, 24).numpy()
            tensors["pixel_values"] = processor(image, return_tensors="pt")["pixel_values"]
            results[item["source"]]["processor_module"] = type(processor).__module__
        save_file(tensors, item["output"])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
