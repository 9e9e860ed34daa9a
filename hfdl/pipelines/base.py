"""What hfdl's image pipelines share: argument checks, batching, output conversion and model-folder loading.

Every pipeline here is a :class:`diffusers.DiffusionPipeline`, so ``save_pretrained`` writes a diffusers folder
(``model_index.json`` plus one subfolder per component) and the usual helpers (``to``, ``set_progress_bar_config``,
``components``) come for free. On top of diffusers, hfdl's pipelines agree on one call::

    pipe(num_images=None, generator=None, class_labels=None, output_type="pil", batch_size=None)

so that a Space or a benchmark can swap a GAN for a VAE or for the DDPM comparator without changing a line.
``output_type`` follows diffusers: ``"pil"`` gives a list of PIL images (mode ``L`` for one channel, ``RGB`` for
three), ``"np"`` a float32 array ``(N, H, W, C)`` in [0, 1], ``"pt"`` a float32 tensor ``(N, C, H, W)`` in [0, 1].
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput

from .outputs import check_output_type, to_output

#: The file a saved GAN/VAE pipeline folder carries so that ``diffusers.DiffusionPipeline`` can find the class (see
#: :meth:`HfdlModelPipeline.save_pretrained`).
PIPELINE_MODULE_FILE = "pipeline_hfdl.py"

#: Component name of the hfdl model inside a pipeline folder (``<folder>/model/config.json``).
MODEL_COMPONENT = "model"

#: Files a GAN/VAE pipeline reads from a Hub repository: configs and safetensors weights (no pickles, no code).
_HUB_PATTERNS = ["*.json", "*.safetensors"]


def check_positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    """Raise a ValueError that names ``name`` unless ``value`` is a positive int (bools are not ints here)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        allowed = "a positive integer" + (" or None" if allow_none else "")
        raise ValueError(f"`{name}` must be {allowed}, got {value!r}.")


def check_generator(generator: Any) -> None:
    """One ``torch.Generator`` or None: every image of a call draws from the same stream, in order."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"`generator` must be a torch.Generator or None, got {type(generator).__name__}. (A list of generators, "
            "one per image, is not supported: pass one generator and the images are drawn from it in order.)"
        )


def normalize_class_labels(class_labels: Any, num_classes: int, num_images: int | None) -> tuple[Any, int]:
    """Check ``class_labels`` against the model and return ``(labels, num_images)``.

    ``labels`` is None for an unconditional model, else a LongTensor of ``num_images`` class indices. The policy,
    the same for every pipeline: an unconditional model (``num_classes == 0``) refuses labels; a conditional one
    requires them, because a silent default (all zeros, or cycling through the classes) would hand back digits
    nobody asked for. An int is repeated ``num_images`` times; a list or 1-D tensor gives one label per image, and
    ``num_images`` may then be left out (it must equal the length when given).
    """
    check_positive_int("num_images", num_images, allow_none=True)
    if num_classes == 0:
        if class_labels is not None:
            raise ValueError(
                f"This model is unconditional (num_classes=0): it takes no `class_labels`, got {class_labels!r}."
            )
        return None, 1 if num_images is None else int(num_images)
    if class_labels is None:
        raise ValueError(
            f"This model is class-conditional ({num_classes} classes): pass `class_labels`, an int in "
            f"[0, {num_classes - 1}] or one per image, e.g. class_labels=list(range({num_classes}))."
        )
    if isinstance(class_labels, bool):
        raise ValueError(
            f"`class_labels` must be an int, a list of ints or a 1-D integer tensor, got {class_labels!r}."
        )
    if isinstance(class_labels, (int, np.integer)):
        labels = torch.full((1 if num_images is None else int(num_images),), int(class_labels), dtype=torch.long)
    else:
        if isinstance(class_labels, torch.Tensor):
            labels = class_labels.detach().cpu()
        elif isinstance(class_labels, (list, tuple, np.ndarray)):
            if any(isinstance(label, bool) or not isinstance(label, (int, np.integer)) for label in class_labels):
                raise ValueError(f"`class_labels` must hold ints, got {list(class_labels)!r}.")
            labels = torch.as_tensor(np.asarray(class_labels, dtype=np.int64))
        else:
            raise ValueError(
                "`class_labels` must be an int, a list of ints or a 1-D integer tensor, "
                f"got {type(class_labels).__name__}."
            )
        if (
            labels.ndim != 1
            or labels.numel() == 0
            or labels.dtype == torch.bool
            or labels.is_floating_point()
            or labels.is_complex()
        ):
            raise ValueError(
                f"`class_labels` must be a non-empty 1-D list or integer tensor, got shape {tuple(labels.shape)} "
                f"and dtype {labels.dtype}."
            )
        labels = labels.long()
        if num_images is not None and labels.numel() != num_images:
            raise ValueError(
                f"`class_labels` has {labels.numel()} entries but `num_images` is {num_images}: give one label per "
                "image, an int for all of them, or leave `num_images` out."
            )
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.numel():
        raise ValueError(f"`class_labels` must lie in [0, {num_classes - 1}], got {bad.tolist()}.")
    return labels, labels.numel()


class HfdlImagePipeline(DiffusionPipeline):
    """Base of hfdl's pipelines: the shared ``__call__`` contract on top of ``DiffusionPipeline``.

    Subclasses implement :meth:`num_classes` and :meth:`_sample_batch` (one chunk of images in [0, 1]); the base
    checks the arguments, splits ``num_images`` into chunks of at most ``batch_size`` (bounded memory however many
    images are asked for) and converts the result. The chunks draw from one generator in order; torch does not
    promise that two draws of 2 and 3 rows equal one draw of 5 (its vectorised sampler works in blocks), so a seed
    fixes the images for a given ``num_images`` and ``batch_size``, and with ``num_images <= batch_size`` a GAN or
    VAE pipeline returns exactly what one ``model.sample(num_images, generator)`` call returns.
    """

    #: Images generated per forward pass when ``batch_size`` is None.
    default_batch_size: ClassVar[int] = 64

    @property
    def num_classes(self) -> int:
        raise NotImplementedError

    def _sample_batch(
        self, num_images: int, generator: torch.Generator | None, class_labels: torch.Tensor | None, **kwargs: Any
    ) -> torch.Tensor:
        raise NotImplementedError

    def _generate(
        self,
        num_images: int | None,
        generator: torch.Generator | None,
        class_labels: Any,
        output_type: str,
        batch_size: int | None,
        return_dict: bool,
        **kwargs: Any,
    ) -> ImagePipelineOutput | tuple:
        check_output_type(output_type)
        check_positive_int("batch_size", batch_size, allow_none=True)
        check_generator(generator)
        labels, num_images = normalize_class_labels(class_labels, self.num_classes, num_images)
        batch_size = batch_size or self.default_batch_size
        chunks = []
        for start in range(0, num_images, batch_size):
            count = min(batch_size, num_images - start)
            chunk_labels = None if labels is None else labels[start : start + count].to(self.device)
            chunks.append(self._sample_batch(count, generator, chunk_labels, **kwargs))
        images = to_output(torch.cat(chunks).float().clamp(0, 1), output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)


def resolve_folder(pretrained_model_name_or_path: str | os.PathLike, **hub_kwargs: Any) -> Path:
    """A local folder as it is; a Hub id fetched (or found in the cache offline) with configs and safetensors only."""
    path = Path(pretrained_model_name_or_path).expanduser()
    if path.is_dir():
        return path
    source = os.fspath(pretrained_model_name_or_path)
    if path.exists() or source.startswith(("/", "./", "../", "~")) or source.count("/") > 1:
        raise ValueError(f"{source!r} is not a folder (and not a Hub repository id like 'owner/name').")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(source, allow_patterns=_HUB_PATTERNS, **hub_kwargs))


class HfdlModelPipeline(HfdlImagePipeline):
    """A pipeline around one hfdl model (a transformers ``PreTrainedModel``): the GAN and VAE pipelines.

    **Loading.** ``from_pretrained`` takes either a plain saved model folder (``config.json`` +
    ``model.safetensors``, what ``model.save_pretrained`` or a recipe writes) or a pipeline folder written by
    :meth:`save_pretrained`, locally or as a Hub id; weights are read from safetensors only (``use_safetensors=True``,
    so a pickled ``pytorch_model.bin`` is refused, never unpickled).

    **Through diffusers.** ``diffusers.DiffusionPipeline.from_pretrained(folder)`` resolves a pipeline class by
    name inside the ``diffusers`` package only, and ``GANPipeline``/``VAEPipeline`` are not there. diffusers'
    mechanism for pipelines that live elsewhere is a module shipped in the folder, named by ``_class_name`` in
    ``model_index.json`` as ``["pipeline_hfdl", "GANPipeline"]``; diffusers runs such a module only with
    ``trust_remote_code=True``. The module :meth:`save_pretrained` writes is one import line
    (``from hfdl.pipelines import ...``), so ``DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)``
    works wherever hfdl is installed, and without ``trust_remote_code`` diffusers refuses with its own message.
    The model component is recorded as ``["hfdl.pipelines.<name>", "<Model>"]``: diffusers loads a component from a
    non-diffusers library only through a module already imported that exposes both the class and its loadable base
    (``PreTrainedModel``), which the pipeline module does.
    """

    #: ``hfdl.pipelines.<module>``, recorded in ``model_index.json`` as the model component's library.
    component_module: ClassVar[str]

    @classmethod
    def model_class(cls) -> type:
        raise NotImplementedError

    def __init__(self, model: Any) -> None:
        super().__init__()
        expected = self.model_class()
        if not isinstance(model, expected):
            raise ValueError(f"{type(self).__name__} needs a {expected.__name__}, got {type(model).__name__}.")
        self.register_modules(model=model)
        # register_modules records the class's defining module (hfdl.models.<arch>.modeling_<arch>, or a
        # transformers_modules path for remote code); record the pipeline module instead (see the class docstring).
        self.register_to_config(model=(self.component_module, expected.__name__))

    @property
    def num_classes(self) -> int:
        return int(getattr(self.model.config, "num_classes", 0) or 0)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> HfdlModelPipeline:
        """Load from a pipeline folder (``model_index.json``) or a plain model folder (``config.json``).

        ``kwargs`` ``cache_dir``, ``revision``, ``token``, ``local_files_only`` go to the Hub download of a repo id;
        the rest (e.g. ``dtype``) to the model's ``from_pretrained``.
        """
        hub_keys = ("cache_dir", "revision", "token", "local_files_only", "force_download")
        hub_kwargs = {key: kwargs.pop(key) for key in hub_keys if key in kwargs}
        folder = resolve_folder(pretrained_model_name_or_path, **hub_kwargs)
        model_class = cls.model_class()
        if (folder / "model_index.json").is_file():
            index = json.loads((folder / "model_index.json").read_text())
            class_name = index.get("_class_name")
            class_name = class_name[-1] if isinstance(class_name, list) else class_name
            if class_name != cls.__name__:
                raise ValueError(f"{folder} holds a {class_name}, not a {cls.__name__}.")
            model_folder = folder / MODEL_COMPONENT
        elif (folder / "config.json").is_file():
            model_folder = folder
        else:
            raise ValueError(
                f"{folder} is neither a pipeline folder (model_index.json) nor a saved model folder (config.json)."
            )
        model_type = json.loads((model_folder / "config.json").read_text()).get("model_type")
        expected_type = model_class.config_class.model_type
        if model_type != expected_type:
            raise ValueError(
                f"{model_folder} holds a {model_type!r} model; {cls.__name__} loads {expected_type!r} models."
            )
        model = model_class.from_pretrained(model_folder, use_safetensors=True, **kwargs)
        return cls(model=model)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Write ``model_index.json``, ``model/`` (config + safetensors) and the one-line ``pipeline_hfdl.py``."""
        kwargs["safe_serialization"] = True  # never a pickle
        super().save_pretrained(save_directory, **kwargs)
        directory = Path(save_directory)
        index_path = directory / "model_index.json"
        index = json.loads(index_path.read_text())
        index["_class_name"] = [Path(PIPELINE_MODULE_FILE).stem, type(self).__name__]
        index[MODEL_COMPONENT] = [self.component_module, self.model_class().__name__]  # also after `pipe.model = m`
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        (directory / PIPELINE_MODULE_FILE).write_text(
            f'"""Lets `diffusers.DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)` find hfdl\'s '
            f"{type(self).__name__}.\n\nNeeds hfdl installed (`pip install hfdl[train]`); "
            f"`hfdl.pipelines.{type(self).__name__}.from_pretrained(folder)` needs no remote code at all.\n"
            f'"""\n\nfrom hfdl.pipelines import {type(self).__name__}\n\n__all__ = ["{type(self).__name__}"]\n'
        )

    def _sample_model(self, call: Any) -> torch.Tensor:
        """Run ``call()`` with the model in eval mode (batch norm on its running statistics, no dropout), so images
        do not depend on how ``num_images`` is split into batches; the previous mode is restored after."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                return call()
        finally:
            self.model.train(was_training)
