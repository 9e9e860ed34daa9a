"""Diffusers-style pipelines for hfdl's generative models and the DDPM comparator (issue 9).

``GANPipeline``, ``VAEPipeline`` and ``DDPMPipeline`` share one call,
``pipe(num_images=None, generator=None, class_labels=None, output_type="pil", batch_size=None).images``, and each
is a ``diffusers.DiffusionPipeline`` (``save_pretrained``/``from_pretrained``, ``to(device)``). They need the
``diffusers`` package (``pip install hfdl[train]``). The classes are imported on first use, so
``import hfdl.pipelines`` loads neither diffusers nor a model family before one is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {"GANPipeline": "gan", "VAEPipeline": "vae", "DDPMPipeline": "ddpm"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{_MODULES[name]}")
        except ModuleNotFoundError as error:
            if (error.name or "").split(".")[0] != "diffusers":
                raise
            raise ImportError(f"hfdl.pipelines.{name} needs diffusers: pip install 'hfdl[train]'.") from error
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})


__all__ = ["DDPMPipeline", "GANPipeline", "VAEPipeline"]
