"""Import torchvision and timm checkpoints of AlexNet, VGG and ResNet, and timm's Vision Transformers, into hfdl models.

This is how ImageNet weights reach hfdl: nothing here trains, it renames. Each supported source network is listed in
:data:`SOURCE_MODELS` with the hfdl preset of the same architecture; :func:`convert_state_dict` maps every tensor of
the source's state dict onto one of the hfdl model (a module-by-module table built from the hfdl config, so a missing
or unexpected tensor, or a shape that differs, is an error that names it) and :func:`convert_checkpoint` reads a
checkpoint file and saves a Hub folder (config, safetensors, remote code, image processor, model card) that
``AutoModelForImageClassification.from_pretrained`` loads with the source's logits.

timm's ``vit_*`` (and ``deit_*``) models are not tied to an hfdl preset: any size converts. The network is built from
its timm name on the meta device (no memory, no download) with the class count, input channels and image size read
off the checkpoint, and :func:`timm_vit_config` reads hfdl's ``ViTConfig`` off it; :func:`convert_timm_vit` also
takes a timm model object. Features hfdl's ViT does not have (layer scale, register tokens, CLIP's pre-norm, ...)
are refused by name rather than approximated.

Checkpoints are read as safetensors, or as PyTorch pickles through ``torch.load(weights_only=True)``, which refuses
anything but tensors and plain containers: a downloaded ``.pth`` can never run code here.

    hfdl convert timm resnet50d --checkpoint model.safetensors resnet50d-hfdl/
    hfdl convert torchvision vgg16_bn --checkpoint vgg16_bn-6c64b313.pth vgg16-bn-hfdl/
    hfdl convert timm vit_base_patch16_224.augreg2_in21k_ft_in1k --checkpoint model.safetensors vit-b16-hfdl/
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from .registry import resolve_preset

logger = logging.getLogger(__name__)

SOURCES = ("torchvision", "timm")
#: File suffixes read with safetensors; anything else goes through ``torch.load(weights_only=True)``.
SAFETENSORS_SUFFIXES = (".safetensors",)
#: Keys under which training scripts nest the state dict in a checkpoint (timm's train.py, Lightning, ...).
NESTED_STATE_DICT_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")
#: timm model names (before any ``.tag``) that convert into hfdl's ViT, at whatever size timm builds them.
TIMM_VIT_PREFIXES = ("vit_", "deit_")
#: timm's modules whose models are ``VisionTransformer`` instances (the rest of a name's checks is timm_vit_config's).
TIMM_VIT_MODULES = ("vision_transformer", "deit")
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
    if source == "timm" and is_timm_vit_name(name):
        return SourceModel("timm", name, "vit")
    for model in SOURCE_MODELS.values():
        if model.source == source and model.preset == name:
            return model
    names = ", ".join(model.name for model in SOURCE_MODELS.values() if model.source == source)
    if source == "timm":
        names += ", and any vit_* or deit_* Vision Transformer"
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

    A timm ViT name (see :func:`is_timm_vit_name`) goes to :func:`convert_timm_vit`, whatever its size.

    The number of classes and input channels are read off the checkpoint; ``config_overrides`` change anything
    else of the preset's config (``id2label``, ...). Every source tensor must land on an hfdl tensor of the same
    shape and every hfdl tensor must be filled (BatchNorm's ``num_batches_tracked`` excepted); otherwise the
    ``ValueError`` lists what is missing, unexpected or mismatched. The model is returned in eval mode.
    """
    model_info = find_source_model(source, name)
    if model_info.preset == "vit":
        return convert_timm_vit(build_timm_vit(model_info.name, state_dict), state_dict, **config_overrides)
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
    _check_complete(target, converted, unexpected, mismatched, f"{source}'s {model_info.name} (hfdl preset {preset!r})")
    model.load_state_dict(converted, strict=False)
    return model


def _check_complete(
    target: dict[str, torch.Tensor],
    converted: dict[str, torch.Tensor],
    unexpected: set[str],
    mismatched: list[str],
    what: str,
) -> None:
    """Raise a ``ValueError`` that lists every hfdl tensor left unfilled, source tensor left unused, or shape that
    differs; a conversion that drops or invents a tensor silently gives a model that is wrong without saying so."""
    missing = [key for key in target if key not in converted and not key.endswith(OPTIONAL_SUFFIXES)]
    if missing or unexpected or mismatched:
        problems = []
        for label, items in (("missing", missing), ("unexpected", sorted(unexpected)), ("mismatched", mismatched)):
            if items:
                shown = ", ".join(items[:6]) + (f", ... ({len(items)} in all)" if len(items) > 6 else "")
                problems.append(f"{label}: {shown}")
        raise ValueError(
            f"The checkpoint does not match {what}: "
            + "; ".join(problems)
            + ". Check that ARCH names the network the checkpoint was saved from."
        )


# --------------------------------------------------------------------------------------------- timm Vision Transformers
def is_timm_vit_name(name: str) -> bool:
    """Whether ``name`` (``vit_small_patch16_224``, ``vit_base_patch16_224.augreg_in21k``) is one of timm's ViTs:
    its name says so, or timm registers it in its ViT modules (``test_vit``, the DeiTs)."""
    architecture = name.split(".")[0]
    if architecture.startswith(TIMM_VIT_PREFIXES):
        return True
    try:
        from timm.models import is_model_in_modules
    except ImportError:
        return False
    try:
        return is_model_in_modules(architecture, TIMM_VIT_MODULES)
    except RuntimeError:  # "Unknown model": not one of timm's names at all
        return False


def _refuse(feature: str, why: str) -> ValueError:
    return ValueError(
        f"This timm Vision Transformer uses {feature}, which hfdl's ViT cannot represent ({why}); hfdl converts the "
        "plain ViT of Dosovitskiy et al. and DeiT: class token and/or mean pooling, learned positions, pre-norm "
        "blocks without layer scale."
    )


def _timm_activation(module: nn.Module) -> str:
    """hfdl's ``hidden_act`` for the MLP activation module of a timm block."""
    name = type(module).__name__
    if name == "GELU":  # torch's nn.GELU (approximate="none" or "tanh") and timm's own exact GELU
        return "gelu_pytorch_tanh" if getattr(module, "approximate", "none") == "tanh" else "gelu"
    activations = {"GELUTanh": "gelu_pytorch_tanh", "ReLU": "relu", "SiLU": "silu"}
    if name not in activations:
        raise _refuse(f"the MLP activation {name}", "its transformer block supports gelu, gelu_tanh, relu and silu")
    return activations[name]


def timm_vit_config(model: nn.Module) -> dict[str, Any]:
    """hfdl ``ViTConfig`` arguments for a timm ``VisionTransformer`` (a real model or one built on the meta device).

    Everything is read off the modules, not off timm's model name, so fine-tuned and custom-sized models convert:
    sizes from the layers, ``layer_norm_eps`` from the norms, ``bias`` from the linear layers, dropout rates from
    the dropout modules (they change training only). ``global_pool="token"`` becomes ``pooling="cls"``;
    ``global_pool="avg"`` becomes ``pooling="mean"``, with ``norm_after_pooling=True`` when timm normalises the
    pooled vector (``fc_norm``, MAE-style) instead of every token. timm's ``no_embed_class`` (DeiT III: the class
    token gets no position vector) is the same network with a zero position vector for the class token.

    Raises:
        ValueError: Naming the feature, for anything hfdl's ViT does not compute the same way: register tokens,
            layer scale (``init_values``), ``pre_norm`` (CLIP), ``qk_norm``, ``scale_attn_norm``/``scale_mlp_norm``,
            gated attention, ``global_pool`` other than token/avg (``map``, ``max``, ...), ``fc_norm`` with token
            pooling, no final norm, RMSNorm or other norms, ``dynamic_img_size``/``dynamic_img_pad``, a norm in the
            patch embedding, non-square patches or images, a distillation token, biases in some layers only.
    """
    try:
        from timm.layers import Attention, Mlp, PatchEmbed
        from timm.models.vision_transformer import Block, VisionTransformer
    except ImportError as error:
        raise ImportError("Converting timm ViTs needs timm: pip install 'hfdl[train]'.") from error

    if not isinstance(model, VisionTransformer):
        raise ValueError(f"timm_vit_config takes a timm VisionTransformer, got {type(model).__name__}.")
    if type(model) is not VisionTransformer:
        # VisionTransformerDistilled (DeiT's distillation token), and any other subclass with its own forward.
        raise _refuse(f"the {type(model).__name__} subclass", "it has its own forward, e.g. a distillation token")
    if model.num_reg_tokens:
        raise _refuse(
            f"register tokens (reg_tokens={model.num_reg_tokens})", "its only prefix token is the class token"
        )
    if model.pos_embed is None:
        raise _refuse("no position embedding (pos_embed='none')", "it always adds learned positions")
    if model.dynamic_img_size:
        raise _refuse(
            "dynamic_img_size=True",
            "timm resamples the positions on every input with its own interpolation; hfdl resamples only with "
            "interpolate_pos_encoding=True, the way transformers does, so the two differ at other sizes",
        )
    if not isinstance(model.norm_pre, nn.Identity):
        raise _refuse("pre_norm=True (a norm before the first block, as in CLIP)", "its embeddings go straight in")
    embed = model.patch_embed
    if type(embed) is not PatchEmbed or not isinstance(embed.proj, nn.Conv2d):
        raise _refuse(f"the patch embedding {type(embed).__name__}", "it embeds patches with one strided convolution")
    if getattr(embed, "dynamic_img_pad", False):
        raise _refuse("dynamic_img_pad=True", "it takes images whose sides are multiples of the patch size")
    if not isinstance(embed.norm, nn.Identity):
        raise _refuse("a norm in the patch embedding (embed_norm_layer)", "its patch embedding is a bare convolution")
    if embed.proj.bias is None:
        raise _refuse("a patch embedding without bias", "its patch convolution always has a bias")
    patch_height, patch_width = embed.patch_size
    height, width = embed.img_size
    if patch_height != patch_width or height != width:
        raise _refuse(
            f"non-square patches or images (patch {patch_height}x{patch_width}, image {height}x{width})",
            "patch_size and image_size are single sides",
        )
    if model.attn_pool is not None or model.global_pool not in ("token", "avg", ""):
        raise _refuse(
            f"global_pool={model.global_pool!r}", "it pools with the class token ('token') or the patch mean ('avg')"
        )
    if model.global_pool == "avg" and model.pool_include_prefix:
        raise _refuse("pool_include_prefix=True", "its mean pooling averages the patch tokens only")
    if model.global_pool == "" and model.num_classes:
        raise _refuse("global_pool='' with a classifier", "its classifier reads one pooled vector per image")

    has_norm, has_fc_norm = not isinstance(model.norm, nn.Identity), not isinstance(model.fc_norm, nn.Identity)
    if not has_norm and not has_fc_norm:
        raise _refuse("final_norm=False", "it always ends with a layer norm")
    if has_fc_norm and model.global_pool != "avg":
        raise _refuse(
            f"fc_norm with global_pool={model.global_pool!r}", "it norms the pooled vector of avg pooling only"
        )

    depth = len(model.blocks)
    norms = [model.norm if has_norm else model.fc_norm]
    linears: dict[str, list[nn.Linear]] = {"qkv_bias": [], "proj_bias": []}
    for index, block in enumerate(model.blocks):
        where = f"blocks.{index}"
        if type(block) is not Block:
            raise _refuse(f"{type(block).__name__} at {where}", "its blocks are timm's plain pre-norm Block")
        if not (isinstance(block.ls1, nn.Identity) and isinstance(block.ls2, nn.Identity)):
            raise _refuse("layer scale (init_values, ls1/ls2)", "its residual branches are not scaled")
        attention, mlp = block.attn, block.mlp
        if type(attention) is not Attention:
            raise _refuse(f"the attention {type(attention).__name__}", "it runs plain multi-head self-attention")
        if not (isinstance(attention.q_norm, nn.Identity) and isinstance(attention.k_norm, nn.Identity)):
            raise _refuse("qk_norm=True", "it does not normalise queries and keys")
        if not isinstance(attention.norm, nn.Identity):
            raise _refuse("scale_attn_norm=True", "it has no norm inside the attention")
        if getattr(attention, "gate", None) is not None:
            raise _refuse("gated attention", "its attention output is not gated")
        if attention.attn_dim != model.embed_dim or attention.proj.out_features != model.embed_dim:
            raise _refuse(f"attention width {attention.attn_dim} != embed_dim", "heads split hidden_size evenly")
        if type(mlp) is not Mlp or not isinstance(mlp.fc1, nn.Linear):
            raise _refuse(f"the MLP {type(mlp).__name__}", "its MLP is Linear -> activation -> Linear")
        if not isinstance(mlp.norm, nn.Identity):
            raise _refuse("scale_mlp_norm=True", "it has no norm inside the MLP")
        norms += [block.norm1, block.norm2]
        linears["qkv_bias"].append(attention.qkv)
        linears["proj_bias"] += [attention.proj, mlp.fc1, mlp.fc2]
    for norm in norms:
        if not isinstance(norm, nn.LayerNorm) or not norm.elementwise_affine:
            raise _refuse(f"the norm {type(norm).__name__}", "every norm is an affine nn.LayerNorm")
    epsilons = {norm.eps for norm in norms}
    if len(epsilons) > 1:
        raise _refuse(f"layer norms with different eps ({sorted(epsilons)})", "one layer_norm_eps serves all norms")
    # hfdl has one `bias` switch for every linear layer and layer norm of the blocks; timm has two for the linears.
    has_bias = {field: {layer.bias is not None for layer in layers} for field, layers in linears.items()}
    norm_bias = {norm.bias is not None for norm in norms}
    if len(has_bias["qkv_bias"] | has_bias["proj_bias"] | norm_bias) > 1:
        settings = ", ".join(f"{field}={sorted(values)}" for field, values in has_bias.items())
        raise _refuse(
            f"biases in some layers only ({settings}, norm bias={sorted(norm_bias)})",
            "its one `bias` setting applies to every linear layer and layer norm",
        )

    first, last = model.blocks[0], model.blocks[-1]
    # A headless model without pooling ("") returns every token: either pooling gives the same last_hidden_state.
    pooling = "mean" if model.global_pool == "avg" or model.cls_token is None else "cls"
    activations = {_timm_activation(block.mlp.act) for block in model.blocks}
    if len(activations) > 1:
        raise _refuse(f"different activations per block ({sorted(activations)})", "one hidden_act serves all blocks")
    if not isinstance(model.patch_drop, nn.Identity):
        logger.warning("timm's patch dropout (patch_drop_rate) has no hfdl counterpart; it acts in training only.")
    hidden_dropout = float(first.attn.proj_drop.p)
    if float(model.pos_drop.p) != hidden_dropout:
        logger.warning(
            "timm's pos_drop_rate (%s) differs from proj_drop_rate (%s); hfdl uses one rate (hidden_dropout=%s) for "
            "both. Outputs in eval mode are unaffected.",
            model.pos_drop.p,
            hidden_dropout,
            hidden_dropout,
        )
    config: dict[str, Any] = {
        "image_size": int(height),
        "patch_size": int(patch_height),
        "num_channels": int(embed.proj.in_channels),
        "hidden_size": int(model.embed_dim),
        "num_hidden_layers": depth,
        "num_attention_heads": int(first.attn.num_heads),
        "intermediate_size": int(first.mlp.fc1.out_features),
        "hidden_act": activations.pop(),
        "hidden_dropout": hidden_dropout,
        "attention_dropout": float(first.attn.attn_drop.p),
        # timm's rates rise linearly from 0 at the first block to drop_path_rate at the last, as hfdl's do.
        "drop_path_rate": float(getattr(last.drop_path1, "drop_prob", 0.0)),
        "layer_norm_eps": float(epsilons.pop()),
        "norm_position": "pre",
        "bias": norm_bias.pop(),
        "class_token": model.cls_token is not None,
        "pooling": pooling,
        "norm_after_pooling": has_fc_norm,
        "classifier_dropout": float(model.head_drop.p),
    }
    if isinstance(model.head, nn.Linear):
        config["num_labels"] = int(model.head.out_features)
    return config


def _timm_vit_key_pairs(config: Any, prefix: str, classifier: bool) -> Iterator[tuple[str, str]]:
    """(timm tensor name, hfdl tensor name) for every tensor; ``prefix`` is ``vit.`` under a classification head."""
    if config.class_token:
        yield "cls_token", f"{prefix}embeddings.cls_token"
    yield "pos_embed", f"{prefix}embeddings.position_embeddings"
    modules = [("patch_embed.proj", "embeddings.patch_embedding")]
    for index in range(config.num_hidden_layers):
        source, target = f"blocks.{index}", f"layers.{index}"
        modules += [
            (f"{source}.norm1", f"{target}.attention_norm"),
            (f"{source}.attn.qkv", f"{target}.attention.qkv"),  # both fused with rows [q; k; v]
            (f"{source}.attn.proj", f"{target}.attention.out"),
            (f"{source}.norm2", f"{target}.mlp_norm"),
            (f"{source}.mlp.fc1", f"{target}.mlp.fc_in"),
            (f"{source}.mlp.fc2", f"{target}.mlp.fc_out"),
        ]
    modules.append(("fc_norm" if config.norm_after_pooling else "norm", "norm"))
    for source, target in modules:
        for name in ("weight", "bias"):
            yield f"{source}.{name}", f"{prefix}{target}.{name}"
    if classifier:
        yield "head.weight", "classifier.weight"
        yield "head.bias", "classifier.bias"


def build_timm_vit(name: str, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """timm's ``name`` built on the meta device (no memory, no download) with the checkpoint's class count, input
    channels and image size, so that a fine-tuned or higher-resolution checkpoint finds its own architecture."""
    try:
        import timm
    except ImportError as error:
        raise ImportError("Converting timm ViTs needs timm: pip install 'hfdl[train]'.") from error
    for key in ("patch_embed.proj.weight", "pos_embed"):
        if key not in state_dict:
            raise ValueError(
                f"The checkpoint has no {key!r}, so it is not a timm {name}; its first keys are: "
                f"{', '.join(list(state_dict)[:5])}."
            )
    patch_weight = state_dict["patch_embed.proj.weight"]  # (embed_dim, in_chans, patch, patch)
    arguments = {
        "num_classes": int(state_dict["head.weight"].shape[0]) if "head.weight" in state_dict else 0,
        "in_chans": int(patch_weight.shape[1]),
    }
    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False, **arguments)
            # pos_embed holds the prefix tokens' positions (unless no_embed_class) and one per patch of the grid.
            positions = int(state_dict["pos_embed"].shape[1])
            prefix = model.pos_embed.shape[1] - model.patch_embed.num_patches if model.pos_embed is not None else 0
            grid = round(max(positions - prefix, 0) ** 0.5)
            if (
                model.pos_embed is not None
                and positions != model.pos_embed.shape[1]
                and grid * grid == positions - prefix
            ):
                model = timm.create_model(name, pretrained=False, img_size=grid * patch_weight.shape[-1], **arguments)
    except (RuntimeError, ValueError, TypeError, AssertionError) as error:
        raise ValueError(f"timm cannot build {name!r} ({type(error).__name__}: {error}).") from error
    return model


def convert_timm_vit(
    model: nn.Module, state_dict: dict[str, torch.Tensor] | None = None, **config_overrides: Any
) -> PreTrainedModel:
    """The hfdl ViT of a timm ``VisionTransformer``: ``ViTForImageClassification``, or ``ViTModel`` for a model
    without a head (``num_classes=0``), in eval mode, with logits equal to timm's.

    Args:
        model: The timm model (``timm.create_model("vit_small_patch16_224")``, a fine-tuned one, or one built on
            the meta device by :func:`build_timm_vit`); its architecture is read by :func:`timm_vit_config`.
        state_dict: The weights; default: ``model``'s own.
        **config_overrides: Other ``ViTConfig`` fields (``id2label``, ...).

    Raises:
        ValueError: For a feature hfdl's ViT does not have (see :func:`timm_vit_config`), or a state dict that does
            not match the model (listing the missing, unexpected and mismatched tensors).
    """
    from .models.vit import ViTConfig, ViTForImageClassification, ViTModel

    config = ViTConfig(**{**timm_vit_config(model), **config_overrides})
    state_dict = model.state_dict() if state_dict is None else state_dict
    classifier = isinstance(model.head, nn.Linear)
    hfdl_model = (ViTForImageClassification if classifier else ViTModel)(config).eval()
    target = hfdl_model.state_dict()
    prefix = "vit." if classifier else ""

    converted: dict[str, torch.Tensor] = {}
    unexpected, mismatched = set(state_dict), []
    for source_key, hfdl_key in _timm_vit_key_pairs(config, prefix, classifier):
        if source_key not in state_dict:
            continue  # reported below as a missing hfdl tensor
        unexpected.discard(source_key)
        tensor = state_dict[source_key]
        if source_key == "pos_embed" and getattr(model, "no_embed_class", False) and config.class_token:
            # The class token gets no position vector in timm: the same as a zero one.
            tensor = torch.cat((tensor.new_zeros(1, 1, tensor.shape[-1]), tensor), dim=1)
        if tensor.shape != target[hfdl_key].shape:
            mismatched.append(f"{source_key} {tuple(tensor.shape)} -> {hfdl_key} {tuple(target[hfdl_key].shape)}")
            continue
        converted[hfdl_key] = tensor.to(target[hfdl_key].dtype)
    _check_complete(target, converted, unexpected, mismatched, f"timm's {type(model).__name__} as hfdl's ViT")
    hfdl_model.load_state_dict(converted, strict=False)
    return hfdl_model


def timm_vit_image_processor(model: nn.Module, config: Any) -> Any:
    """hfdl's ``ViTImageProcessor`` with the timm model's own preprocessing: its mean and std (0.5 for the augreg
    ViTs, ImageNet's for DeiT) and interpolation, at the model's input size (timm's center crop is not applied)."""
    from .models.vit import ViTImageProcessor

    pretrained_cfg = getattr(model, "pretrained_cfg", None) or {}
    statistics = {}
    if config.num_channels == 3 and pretrained_cfg.get("mean") and pretrained_cfg.get("std"):
        statistics = {"image_mean": list(pretrained_cfg["mean"]), "image_std": list(pretrained_cfg["std"])}
    resample = 3 if pretrained_cfg.get("interpolation", "bicubic") == "bicubic" else 2  # PIL's BICUBIC, BILINEAR
    return ViTImageProcessor(size=config.image_size, num_channels=config.num_channels, resample=resample, **statistics)


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
    remote code, the image processor (224x224 and ImageNet mean and std for the CNNs; a ViT's own input size, mean,
    std and interpolation from timm's pretrained config) and a model card. It is written beside
    ``output_dir`` and renamed into place once complete, so a failed conversion leaves nothing behind; an existing
    non-empty ``output_dir`` is replaced only with ``overwrite=True``.
    """
    from .hub import save_for_hub

    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())) and not overwrite:
        raise FileExistsError(f"{str(output_dir)!r} exists and is not empty; pass overwrite=True (--overwrite).")
    model_info = find_source_model(source, name)
    state_dict = load_checkpoint(checkpoint)
    spec, _ = resolve_preset(model_info.preset)
    if model_info.preset == "vit":
        timm_model = build_timm_vit(model_info.name, state_dict)
        model = convert_timm_vit(timm_model, state_dict)
        processor = timm_vit_image_processor(timm_model, model.config)
    else:
        model = convert_state_dict(source, model_info.name, state_dict)
        processor = spec.make_image_processor(model.config)
    if getattr(model.config, "num_labels", 0) == 1000 and (labels := imagenet_labels(source, model_info.name)):
        model.config.id2label = labels
        model.config.label2id = {label: index for index, label in labels.items()}
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
