"""Import torchvision and timm checkpoints of AlexNet, VGG and ResNet into hfdl models.

This is how ImageNet weights reach hfdl: nothing here trains, it renames. Each supported source network is listed in
:data:`SOURCE_MODELS` with the hfdl preset of the same architecture; :func:`convert_state_dict` maps every tensor of
the source's state dict onto one of the hfdl model (a module-by-module table built from the hfdl config, so a missing
or unexpected tensor, or a shape that differs, is an error that names it) and :func:`convert_checkpoint` reads a
checkpoint file and saves a Hub folder (config, safetensors, remote code, image processor, model card) that
``AutoModelForImageClassification.from_pretrained`` loads with the source's logits.

Checkpoints are read as safetensors, or as PyTorch pickles through ``torch.load(weights_only=True)``, which refuses
anything but tensors and plain containers: a downloaded ``.pth`` can never run code here.

    hfdl convert timm resnet50d --checkpoint model.safetensors resnet50d-hfdl/
    hfdl convert torchvision vgg16_bn --checkpoint vgg16_bn-6c64b313.pth vgg16-bn-hfdl/
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from .registry import resolve_preset

SOURCES = ("torchvision", "timm")
#: File suffixes read with safetensors; anything else goes through ``torch.load(weights_only=True)``.
SAFETENSORS_SUFFIXES = (".safetensors",)
#: Keys under which training scripts nest the state dict in a checkpoint (timm's train.py, Lightning, ...).
NESTED_STATE_DICT_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")
#: BatchNorm's counter: torchvision and timm checkpoints do not always carry it, and it does not change outputs.
OPTIONAL_SUFFIXES = ("num_batches_tracked",)


@dataclass(frozen=True)
class SourceModel:
    """A network of a source library and the hfdl preset that has its architecture."""

    source: str
    name: str
    preset: str


def _source_models() -> dict[tuple[str, str], SourceModel]:
    models = [SourceModel("torchvision", "alexnet", "alexnet-imagenet")]
    for depth in (11, 13, 16, 19):
        for source in SOURCES:
            models.append(SourceModel(source, f"vgg{depth}", f"vgg{depth}"))
            models.append(SourceModel(source, f"vgg{depth}_bn", f"vgg{depth}-bn"))
    for depth in (18, 34, 50, 101, 152):
        for source in SOURCES:
            models.append(SourceModel(source, f"resnet{depth}", f"resnet{depth}"))
    models.append(SourceModel("timm", "resnet50d", "resnet50-d"))
    return {(model.source, model.name): model for model in models}


#: (source, source model name) -> what it converts into.
SOURCE_MODELS: dict[tuple[str, str], SourceModel] = _source_models()


def find_source_model(source: str, name: str) -> SourceModel:
    """The :class:`SourceModel` for ``name`` in ``source``; hfdl preset names (``vgg16-bn``) are accepted too."""
    if source not in SOURCES:
        raise ValueError(f"Unknown source {source!r}; allowed: {', '.join(SOURCES)}.")
    if (source, name) in SOURCE_MODELS:
        return SOURCE_MODELS[(source, name)]
    for model in SOURCE_MODELS.values():
        if model.source == source and model.preset == name:
            return model
    names = ", ".join(model.name for model in SOURCE_MODELS.values() if model.source == source)
    raise ValueError(f"hfdl cannot convert {source} model {name!r}; it converts: {names}.")


# --------------------------------------------------------------------------------------------- reading checkpoints
def load_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.safetensors`` file or a PyTorch checkpoint, never unpickling arbitrary objects.

    A state dict nested under one of :data:`NESTED_STATE_DICT_KEYS` is unwrapped, and the ``module.`` prefix that
    ``DistributedDataParallel`` adds is removed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {str(path)!r} does not exist or is not a file.")
    if path.suffix in SAFETENSORS_SUFFIXES:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state_dict: Any = load_file(path)
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{str(path)!r} is not a readable safetensors file ({error}).") from error
    else:
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - torch raises many types for a bad or unsafe file
            raise ValueError(
                f"{str(path)!r} could not be read as a PyTorch checkpoint with weights_only=True, which refuses "
                f"anything but tensors and plain containers ({type(error).__name__}: {str(error).splitlines()[0]})."
            ) from error
    for key in NESTED_STATE_DICT_KEYS:
        if isinstance(state_dict, dict) and isinstance(state_dict.get(key), dict):
            state_dict = state_dict[key]
            break
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(f"{str(path)!r} does not hold a state dict (a mapping of names to tensors).")
    if state_dict and all(key.startswith("module.") for key in state_dict):
        state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}
    return state_dict


# --------------------------------------------------------------------------------------------- module tables
# Each function yields (source module, hfdl module) pairs for one family; tensors are mapped module by module with
# their own names (weight, bias, running_mean, ...), so a table needs no knowledge of what a module holds.
ModuleTable = Iterator[tuple[str, str]]


def _alexnet_table(config: Any, source: str) -> ModuleTable:
    # torchvision: features = conv, relu, pool, conv, relu, pool, conv, relu, conv, relu, conv, relu, pool.
    for index, position in enumerate((0, 3, 6, 8, 10)):
        yield f"features.{position}", f"alexnet.features.{index}.conv"
    yield "classifier.1", "alexnet.fc6.linear"
    yield "classifier.4", "alexnet.fc7.linear"
    yield "classifier.6", "classifier"


def _vgg_table(config: Any, source: str) -> ModuleTable:
    # Both libraries keep torchvision's `features` Sequential: per layer conv, [bn], relu; a max pool ends a stage.
    position = 0
    for stage, depth in enumerate(config.stage_depths):
        for layer in range(depth):
            yield f"features.{position}", f"vgg.stages.{stage}.layers.{layer}.conv"
            position += 1
            if config.batch_norm:
                yield f"features.{position}", f"vgg.stages.{stage}.layers.{layer}.normalization"
                position += 1
            position += 1  # the activation
        position += 1  # the pool
    if source == "torchvision":
        yield "classifier.0", "vgg.fully_connected.0.linear"
        yield "classifier.3", "vgg.fully_connected.1.linear"
        yield "classifier.6", "classifier"
    else:  # timm runs the two hidden layers as a 7x7 and a 1x1 convolution ("ConvMlp"); see _reshape_for
        yield "pre_logits.fc1", "vgg.fully_connected.0.linear"
        yield "pre_logits.fc2", "vgg.fully_connected.1.linear"
        yield "head.fc", "classifier"


def _resnet_table(config: Any, source: str) -> ModuleTable:
    # torchvision and timm share the names: conv1/bn1 stem, layer1-4 of blocks, downsample shortcuts, fc.
    if config.stem == "deep":  # timm's Sequential: conv, bn, relu, conv, bn, relu, conv; then bn1
        yield "conv1.0", "resnet.stem.layers.0.conv"
        yield "conv1.1", "resnet.stem.layers.0.normalization"
        yield "conv1.3", "resnet.stem.layers.1.conv"
        yield "conv1.4", "resnet.stem.layers.1.normalization"
        yield "conv1.6", "resnet.stem.layers.2.conv"
        yield "bn1", "resnet.stem.layers.2.normalization"
    else:
        yield "conv1", "resnet.stem.layers.0.conv"
        yield "bn1", "resnet.stem.layers.0.normalization"
    convs = 3 if config.block_type == "bottleneck" else 2
    in_channels = config.stem_channels
    for stage, (depth, channels) in enumerate(zip(config.stage_depths, config.stage_channels, strict=True)):
        for block in range(depth):
            source_block, hfdl_block = f"layer{stage + 1}.{block}", f"resnet.stages.{stage}.blocks.{block}"
            for index in range(1, convs + 1):
                yield f"{source_block}.conv{index}", f"{hfdl_block}.conv{index}"
                yield f"{source_block}.bn{index}", f"{hfdl_block}.norm{index}"
            stride = 2 if stage > 0 and block == 0 else 1
            if block == 0 and (stride != 1 or in_channels != channels * config.expansion):
                # timm's average-pool shortcut is Sequential(pool, conv, bn), the plain one (conv, bn).
                first = 1 if config.avg_down else 0
                yield f"{source_block}.downsample.{first}", f"{hfdl_block}.shortcut.conv"
                yield f"{source_block}.downsample.{first + 1}", f"{hfdl_block}.shortcut.normalization"
        in_channels = channels * config.expansion
    yield "fc", "classifier"


MODULE_TABLES: dict[str, Callable[[Any, str], ModuleTable]] = {
    "alexnet": _alexnet_table,
    "vgg": _vgg_table,
    "resnet": _resnet_table,
}


def _reshape_for(source: str, architecture: str, hfdl_key: str, tensor: torch.Tensor, target: torch.Size):
    """Reshape a tensor whose layout differs between the libraries (timm's convolutional VGG head)."""
    if tensor.shape != target and source == "timm" and architecture == "vgg" and tensor.dim() == 4:
        if tensor.numel() == target.numel() and hfdl_key.endswith(".weight"):
            # A 7x7 convolution over the 7x7 map is the linear layer over the flattened (C, 7, 7) map: same order.
            return tensor.reshape(target)
    return tensor


# --------------------------------------------------------------------------------------------- conversion
def _infer_overrides(model: SourceModel, state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """``num_labels`` from the classifier and ``num_channels`` from the first convolution of the checkpoint.

    Both modules are the first and last rows of the family's module table, which does not depend on either value.
    """
    spec, preset = resolve_preset(model.preset)
    table = list(MODULE_TABLES[spec.name](spec.make_config(preset), model.source))
    overrides = {}
    for (source_module, _), field, axis in ((table[-1], "num_labels", 0), (table[0], "num_channels", 1)):
        key = f"{source_module}.weight"
        if key not in state_dict:
            raise ValueError(
                f"The checkpoint has no {key!r}, so it is not a {model.source} {model.name}; its first keys are: "
                f"{', '.join(list(state_dict)[:5])}."
            )
        overrides[field] = int(state_dict[key].shape[axis])
    return overrides


def convert_state_dict(
    source: str, name: str, state_dict: dict[str, torch.Tensor], **config_overrides: Any
) -> PreTrainedModel:
    """Build the hfdl image classifier of ``source``'s network ``name`` holding ``state_dict``'s weights.

    The number of classes and input channels are read off the checkpoint; ``config_overrides`` change anything
    else of the preset's config (``id2label``, ...). Every source tensor must land on an hfdl tensor of the same
    shape and every hfdl tensor must be filled (BatchNorm's ``num_batches_tracked`` excepted); otherwise the
    ``ValueError`` lists what is missing, unexpected or mismatched. The model is returned in eval mode.
    """
    model_info = find_source_model(source, name)
    spec, preset = resolve_preset(model_info.preset)
    overrides = {**_infer_overrides(model_info, state_dict), **config_overrides}
    config = spec.make_config(preset, **overrides)
    task = spec.task("image-classification")
    model = task.model_class(config).eval()
    target = model.state_dict()

    converted: dict[str, torch.Tensor] = {}
    unexpected = set(state_dict)
    mismatched = []
    for source_module, hfdl_module in MODULE_TABLES[spec.name](config, source):
        prefix = f"{source_module}."
        for key in [k for k in state_dict if k.startswith(prefix) and "." not in k[len(prefix) :]]:
            hfdl_key = f"{hfdl_module}.{key[len(prefix) :]}"
            unexpected.discard(key)
            if hfdl_key not in target:
                unexpected.add(key)
                continue
            tensor = _reshape_for(source, spec.name, hfdl_key, state_dict[key], target[hfdl_key].shape)
            if tensor.shape != target[hfdl_key].shape:
                mismatched.append(f"{key} {tuple(tensor.shape)} -> {hfdl_key} {tuple(target[hfdl_key].shape)}")
                continue
            converted[hfdl_key] = tensor.to(target[hfdl_key].dtype)
    missing = [key for key in target if key not in converted and not key.endswith(OPTIONAL_SUFFIXES)]
    if missing or unexpected or mismatched:
        problems = []
        for label, items in (("missing", missing), ("unexpected", sorted(unexpected)), ("mismatched", mismatched)):
            if items:
                shown = ", ".join(items[:6]) + (f", ... ({len(items)} in all)" if len(items) > 6 else "")
                problems.append(f"{label}: {shown}")
        raise ValueError(
            f"The checkpoint does not match {source}'s {model_info.name} (hfdl preset {preset!r}): "
            + "; ".join(problems)
            + ". Check that ARCH names the network the checkpoint was saved from."
        )
    model.load_state_dict(converted, strict=False)
    return model


def imagenet_labels(source: str, name: str) -> dict[int, str] | None:
    """ImageNet-1k class names as shipped (offline) by the source library, or ``None`` if it ships none."""
    try:
        if source == "torchvision":
            import torchvision

            weights = torchvision.models.get_model_weights(name)
            return dict(enumerate(next(iter(weights)).meta["categories"]))
        from timm.data import ImageNetInfo

        info = ImageNetInfo()
        return {index: info.index_to_description(index) for index in range(info.num_classes())}
    except Exception:  # noqa: BLE001 - labels are a nicety; a model without them still converts
        return None


def convert_checkpoint(
    source: str,
    name: str,
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    overwrite: bool = False,
) -> Path:
    """Convert a checkpoint file of ``source``'s network ``name`` and save it as a Hub folder in ``output_dir``.

    The folder holds the config (with ImageNet class names for 1000-class checkpoints), safetensors weights, the
    remote code, the image processor (224x224, ImageNet mean and std) and a model card. It is written beside
    ``output_dir`` and renamed into place once complete, so a failed conversion leaves nothing behind; an existing
    non-empty ``output_dir`` is replaced only with ``overwrite=True``.
    """
    from .hub import save_for_hub

    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())) and not overwrite:
        raise FileExistsError(f"{str(output_dir)!r} exists and is not empty; pass overwrite=True (--overwrite).")
    model_info = find_source_model(source, name)
    state_dict = load_checkpoint(checkpoint)
    model = convert_state_dict(source, model_info.name, state_dict)
    if model.config.num_labels == 1000 and (labels := imagenet_labels(source, model_info.name)) is not None:
        model.config.id2label = labels
        model.config.label2id = {label: index for index, label in labels.items()}
    spec, _ = resolve_preset(model_info.preset)
    processor = spec.make_image_processor(model.config)
    card = {"tags": ["image-classification", "hfdl", f"converted-from-{source}"], "model_name": output_dir.name}
    staging = output_dir.with_name(f".{output_dir.name}.{uuid.uuid4().hex[:8]}.convert")
    try:
        save_for_hub(model, staging, processor=processor, card_data=card)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir
