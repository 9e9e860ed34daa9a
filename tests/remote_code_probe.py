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
        if item["auto_class"] == "AutoBackbone":
            # transformers 5's AutoBackbone.from_pretrained asks the Hub about every source first, which fails for
            # local paths and offline (see conftest.py's auto_from_pretrained); the generic Auto loader underneath
            # is what it calls for real repos.
            from transformers.models.auto.auto_factory import _BaseAutoModelClass

            load = _BaseAutoModelClass.from_pretrained.__func__
            model = load(auto_class, item["source"], trust_remote_code=job["block_hfdl"]).eval()
        else:
            model = auto_class.from_pretrained(item["source"], trust_remote_code=job["block_hfdl"]).eval()
        inputs = load_file(item["inputs"])
        with torch.no_grad():
            outputs = model(**inputs)
        output = outputs[item["main_output"]]
        if isinstance(output, tuple):  # a backbone's feature maps, one tensor per stage
            output = torch.cat([value.flatten(1) for value in output], dim=1)
        tensors = {"output": output.contiguous()}
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
