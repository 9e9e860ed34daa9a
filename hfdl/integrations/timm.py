"""Every hfdl CNN preset as a timm model: ``timm.create_model("hfdl_resnet18", num_classes=10, in_chans=1)``.

Importing this module registers one timm entrypoint per preset of the CNN architectures (LeNet-5, AlexNet, VGG,
ResNet), named ``hfdl_`` + the preset with ``-`` written ``_`` (``resnet50-d`` -> ``hfdl_resnet50_d``), so
``timm.list_models("hfdl_*")`` lists them and timm's training and feature-extraction code takes them as it takes
``resnet18``::

    import timm
    import hfdl.integrations.timm  # registers the hfdl_* models

    model = timm.create_model("hfdl_resnet20_cifar", num_classes=7, in_chans=1)
    backbone = timm.create_model("hfdl_resnet18", features_only=True, out_indices=(2, 3, 4))
    config = timm.data.resolve_data_config(model=model)  # input size, mean/std of hfdl's image processor

Each model is a :class:`HfdlTimmModel`: a thin ``nn.Module`` that *owns* the hfdl classifier (``model.hf_model``, a
transformers ``PreTrainedModel``, so ``model.hf_model.save_pretrained(...)`` still writes an hfdl checkpoint) and
gives it timm's model API (``forward_features``, ``forward_head``, ``get_classifier``/``reset_classifier``,
``feature_info``, ``forward_intermediates``, ``prune_intermediate_layers``). It adds no layers and no weights of
its own: the logits are the hfdl model's, and the state dict is the hfdl model's under ``hf_model.``. What differs
between architectures (where the stages, pooling and classifier live) is described by one small adapter each.

timm's arguments map onto hfdl config fields: ``num_classes`` -> ``num_labels`` (0 gives a model without
classifier, whose ``forward`` returns the pre-logits features, as in timm), ``in_chans`` -> ``num_channels``,
``img_size`` -> ``image_size`` and ``drop_rate`` -> the config's ``dropout`` (ResNet has none: timm's classifier
dropout is applied by the wrapper). Any other keyword is a config override of the preset (``stage_channels=...``),
checked against the config's fields. hfdl models are built for one input size (the config's ``image_size``), so
their ``pretrained_cfg`` says ``fixed_input_size=True`` and timm passes ``img_size`` to build another size.

There are no pretrained weights in timm's sense: ``pretrained=True`` needs a weight source given through
``pretrained_cfg_overlay`` (``file=`` a timm state dict of this wrapper); hfdl checkpoints load with
``HfdlTimmModel.from_hfdl(...)``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.utils.checkpoint
from timm.layers import Format
from timm.models import build_model_with_cfg, generate_default_cfgs, is_model, model_entrypoint, register_model
from timm.models._features import feature_take_indices
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from ..models.lenet5.hfdl_utils import check_image_tensor
from ..registry import REGISTRY, resolve_preset
from ..specs import ArchitectureSpec

__all__ = [
    "CNN_ARCHITECTURES",
    "HfdlTimmModel",
    "make_hfdl_config",
    "preset_from_timm_name",
    "register_timm_models",
    "run_script",
    "timm_model_name",
    "timm_model_names",
]

#: Prefix of every hfdl model name in timm's registry, so hfdl's presets never shadow timm's own ``resnet18``.
TIMM_PREFIX = "hfdl_"
#: Weight sources in a ``pretrained_cfg`` (timm's own list); without one ``pretrained=True`` has nothing to load.
_WEIGHT_SOURCES = ("url", "file", "state_dict", "hf_hub_id")
#: Config fields of transformers' backbone API, which timm's ``features_only``/``out_indices`` replace here.
_BACKBONE_FIELDS = ("out_indices", "out_features")


# --------------------------------------------------------------------------------------------- adapters
class _Adapter:
    """Where one architecture's classifier keeps what timm's API needs, as module paths inside the hfdl model.

    ``stage_paths`` are the modules whose outputs are the feature levels (``feature_info``, ``forward_intermediates``,
    ``features_only``), in order; ``head_paths`` the modules between the last level and the classifier (pooling and
    hidden fully connected layers: timm's "pre-logits"); the classifier is always ``classifier``. Paths are relative
    to the hfdl classification model (``ResNetForImageClassification``), whose base model sits at its
    ``base_model_prefix``.
    """

    #: timm's name of the pooling between the last feature maps and the pre-logits ("" for none, as in timm).
    pool_type: str = "avg"
    #: The config field that timm's ``drop_rate`` sets, or ``None`` where the wrapper applies it before the classifier.
    dropout_field: str | None = "dropout"

    def stage_paths(self, config: PretrainedConfig) -> list[str]:
        raise NotImplementedError

    def head_paths(self, config: PretrainedConfig) -> list[str]:
        raise NotImplementedError

    def channels_and_reductions(self, config: PretrainedConfig) -> list[tuple[int, int]]:
        """``(num_chs, reduction)`` of each feature level: its channels and cumulative stride (timm's meaning)."""
        raise NotImplementedError

    def head_hidden_size(self, config: PretrainedConfig) -> int:
        """Width of the pre-logits features, what the classifier reads."""
        raise NotImplementedError

    def run_stage(self, module: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
        return module(hidden_states)

    def pre_logits(self, model: PreTrainedModel, hidden_states: torch.Tensor) -> torch.Tensor:
        """The last feature maps (B, C, H, W) -> the features the classifier reads (B, head_hidden_size)."""
        raise NotImplementedError

    def first_conv(self, config: PretrainedConfig) -> str:
        raise NotImplementedError


class _LeNet5Adapter(_Adapter):
    """Levels: S2 and S4 (each convolution stage's pooled maps); pre-logits: flatten, C5, F6; dropout, classifier.

    The convolutions have no padding, so the maps are a little smaller than input / reduction (32 -> 14 -> 5).
    """

    pool_type = ""  # C5 reads the flattened maps: no pooling, as timm writes global_pool=""

    def stage_paths(self, config: PretrainedConfig) -> list[str]:
        return ["lenet5.stage1", "lenet5.stage2"]

    def head_paths(self, config: PretrainedConfig) -> list[str]:
        return ["lenet5.c5", "lenet5.f6"]

    def channels_and_reductions(self, config: PretrainedConfig) -> list[tuple[int, int]]:
        return [(config.conv_channels[0], 2), (config.conv_channels[1], 4)]

    def head_hidden_size(self, config: PretrainedConfig) -> int:
        return config.hidden_sizes[-1]

    def run_stage(self, module: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
        return module(hidden_states)[1]  # a stage returns (feature maps, pooled maps); the next stage reads the pooled

    def pre_logits(self, model: PreTrainedModel, hidden_states: torch.Tensor) -> torch.Tensor:
        base = model.lenet5
        hidden_states = base.activation(base.c5(hidden_states.flatten(1)))  # (B, 16 * 5 * 5) -> (B, 120)
        hidden_states = base.activation(base.f6(hidden_states))  # (B, 84)
        return model.dropout(hidden_states)  # before the classifier, as LeNet5ForImageClassification does

    def first_conv(self, config: PretrainedConfig) -> str:
        return "lenet5.stage1.conv"


class _AlexNetAdapter(_Adapter):
    """Levels: the five convolution layers (with their pooling); pre-logits: adaptive pool, fc6, fc7; classifier."""

    def stage_paths(self, config: PretrainedConfig) -> list[str]:
        return [f"alexnet.features.{index}" for index in range(len(config.conv_channels))]

    def head_paths(self, config: PretrainedConfig) -> list[str]:
        return ["alexnet.avgpool", "alexnet.fc6", "alexnet.fc7"]

    def channels_and_reductions(self, config: PretrainedConfig) -> list[tuple[int, int]]:
        from ..models.alexnet.configuration_alexnet import POOL_STRIDE

        levels, reduction = [], 1
        for channels, stride, pooled in zip(config.conv_channels, config.conv_strides, config.pool_after, strict=True):
            reduction *= stride * (POOL_STRIDE if pooled else 1)
            levels.append((channels, reduction))
        return levels

    def head_hidden_size(self, config: PretrainedConfig) -> int:
        return config.hidden_sizes[-1]

    def pre_logits(self, model: PreTrainedModel, hidden_states: torch.Tensor) -> torch.Tensor:
        base = model.alexnet
        return base.fc7(base.fc6(base.avgpool(hidden_states).flatten(1)))  # (B, 256, 6, 6) -> (B, 4096)

    def first_conv(self, config: PretrainedConfig) -> str:
        return "alexnet.features.0.conv"


class _VGGAdapter(_Adapter):
    """Levels: each stage's pooled output; pre-logits: adaptive pool and the two hidden FC layers; classifier."""

    def stage_paths(self, config: PretrainedConfig) -> list[str]:
        return [f"vgg.stages.{index}" for index in range(len(config.stage_channels))]

    def head_paths(self, config: PretrainedConfig) -> list[str]:
        return ["vgg.pool", "vgg.fully_connected"]

    def channels_and_reductions(self, config: PretrainedConfig) -> list[tuple[int, int]]:
        return [(channels, 2 ** (index + 1)) for index, channels in enumerate(config.stage_channels)]

    def head_hidden_size(self, config: PretrainedConfig) -> int:
        return config.hidden_sizes[-1]

    def pre_logits(self, model: PreTrainedModel, hidden_states: torch.Tensor) -> torch.Tensor:
        base = model.vgg
        hidden_states = base.pool(hidden_states).flatten(1)  # (B, 512, 7, 7) -> (B, 25088)
        for layer in base.fully_connected:
            hidden_states = layer(hidden_states)  # (B, 4096)
        return hidden_states

    def first_conv(self, config: PretrainedConfig) -> str:
        return "vgg.stages.0.layers.0.conv"


class _ResNetAdapter(_Adapter):
    """Levels: the stem's output, then each stage's (the base model's hidden states); pre-logits: global average."""

    dropout_field = None  # hfdl's ResNet has no dropout; timm's drop_rate goes before the classifier, as in timm

    def stage_paths(self, config: PretrainedConfig) -> list[str]:
        return ["resnet.stem", *(f"resnet.stages.{index}" for index in range(len(config.stage_depths)))]

    def head_paths(self, config: PretrainedConfig) -> list[str]:
        return ["resnet.pooler"]

    def channels_and_reductions(self, config: PretrainedConfig) -> list[tuple[int, int]]:
        return list(zip(config.hidden_channels, config.reductions, strict=True))

    def head_hidden_size(self, config: PretrainedConfig) -> int:
        return config.hidden_channels[-1]

    def pre_logits(self, model: PreTrainedModel, hidden_states: torch.Tensor) -> torch.Tensor:
        return model.resnet.pooler(hidden_states).flatten(1)  # (B, 512, 7, 7) -> (B, 512)

    def first_conv(self, config: PretrainedConfig) -> str:
        return "resnet.stem.layers.0.conv"


#: The architectures whose presets become timm models, with their adapters. An architecture added to the registry
#: becomes timm-native by adding its adapter here; its presets are then registered without further change.
_ADAPTERS: dict[str, _Adapter] = {
    "lenet5": _LeNet5Adapter(),
    "alexnet": _AlexNetAdapter(),
    "vgg": _VGGAdapter(),
    "resnet": _ResNetAdapter(),
}
CNN_ARCHITECTURES: tuple[str, ...] = tuple(_ADAPTERS)


# --------------------------------------------------------------------------------------------- names and configs
def timm_model_name(preset: str) -> str:
    """timm's name of an hfdl preset: ``resnet50-d`` -> ``hfdl_resnet50_d`` (timm names are Python identifiers)."""
    return TIMM_PREFIX + preset.replace("-", "_")


def timm_model_names() -> dict[str, str]:
    """Every CNN preset's timm name, mapped to the preset (``{"hfdl_resnet18": "resnet18", ...}``)."""
    return {
        timm_model_name(preset): preset
        for name in CNN_ARCHITECTURES
        if name in REGISTRY
        for preset in REGISTRY[name].presets
    }


def preset_from_timm_name(name: str) -> str:
    """The hfdl preset of a timm model name (``hfdl_resnet50_d`` -> ``resnet50-d``)."""
    names = timm_model_names()
    if name not in names:
        raise ValueError(f"{name!r} is not an hfdl timm model; available: {', '.join(names)}.")
    return names[name]


def _adapter(spec: ArchitectureSpec) -> _Adapter:
    if spec.name not in _ADAPTERS:
        raise ValueError(
            f"{spec.name} is not one of hfdl's timm-native architectures ({', '.join(CNN_ARCHITECTURES)})."
        )
    return _ADAPTERS[spec.name]


def _check_num_classes(num_classes: object) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"`num_classes` must be an integer >= 0 (0: no classifier), got {num_classes!r}.")
    return num_classes


def _square_size(img_size: object) -> int:
    """timm's ``img_size`` (an int or (H, W)) as hfdl's square ``image_size``."""
    if isinstance(img_size, Sequence) and not isinstance(img_size, str):
        sides = tuple(img_size)
        if len(sides) != 2 or sides[0] != sides[1]:
            raise ValueError(f"hfdl models take square images: `img_size` must be an int or (S, S), got {img_size!r}.")
        img_size = sides[0]
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size <= 0:
        raise ValueError(f"`img_size` must be a positive integer or a (S, S) pair, got {img_size!r}.")
    return img_size


def _config_fields(spec: ArchitectureSpec) -> list[str]:
    """The fields a config override may set: the config's own arguments and the head fields of transformers."""
    parameters = inspect.signature(spec.config_class.__init__).parameters
    own = [name for name, p in parameters.items() if name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
    # transformers' backbone fields select hidden states for AutoBackbone; timm selects levels with out_indices.
    own = [name for name in own if name not in _BACKBONE_FIELDS]
    return [*own, "id2label", "label2id", "problem_type"]


def make_hfdl_config(
    preset: str,
    num_classes: int | None = None,
    in_chans: int | None = None,
    img_size: int | Sequence[int] | None = None,
    drop_rate: float | None = None,
    **overrides: Any,
) -> PretrainedConfig:
    """The hfdl config of a preset built with timm's arguments (``None``: the preset's value).

    ``num_classes=0`` keeps the preset's ``num_labels`` in the config (a config needs at least one label); the
    model then has no classifier. The hfdl names of timm's arguments (``num_labels``, ``num_channels``,
    ``image_size`` and the dropout field) are refused, so one value never arrives under two names.

    Raises:
        ValueError: For an unknown override (listing the allowed ones), an hfdl name of a timm argument, or a value
            the config refuses.
    """
    spec, preset = resolve_preset(preset)
    adapter = _adapter(spec)
    aliases = {"num_labels": "num_classes", "num_channels": "in_chans", "image_size": "img_size"}
    if adapter.dropout_field is not None:
        aliases[adapter.dropout_field] = "drop_rate"
    for hfdl_name, timm_name in aliases.items():
        if hfdl_name in overrides:
            raise ValueError(
                f"Pass timm's `{timm_name}` instead of `{hfdl_name}`: it sets the config's `{hfdl_name}` for timm models."
            )
    allowed = [name for name in _config_fields(spec) if name not in aliases]
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(
            f"{timm_model_name(preset)} does not take {', '.join(map(repr, unknown))}. It takes timm's num_classes, "
            f"in_chans, img_size, drop_rate, global_pool, and these {spec.config_class.__name__} fields: "
            f"{', '.join(allowed)}."
        )
    fields = dict(overrides)
    if num_classes is not None and _check_num_classes(num_classes) > 0:
        fields["num_labels"] = num_classes
    if in_chans is not None:
        fields["num_channels"] = in_chans
    if img_size is not None:
        fields["image_size"] = _square_size(img_size)
    if drop_rate is not None:
        if isinstance(drop_rate, bool) or not isinstance(drop_rate, (int, float)) or not 0 <= drop_rate < 1:
            raise ValueError(f"`drop_rate` must be a number in [0, 1), got {drop_rate!r}.")
        if adapter.dropout_field is not None:
            fields[adapter.dropout_field] = float(drop_rate)
    return spec.make_config(preset, **fields)


def _data_cfg(spec: ArchitectureSpec, config: PretrainedConfig) -> dict[str, Any]:
    """What timm's data pipeline needs to feed ``config``'s model as hfdl's image processor does.

    The processor resizes the whole image to ``image_size`` x ``image_size`` with bilinear resampling (no crop, so
    ``crop_pct=1``) and normalises with ImageNet's statistics for RGB and 0.5 / 0.5 for other channel counts.
    """
    channels = config.num_channels
    if channels in (1, 3):
        processor = spec.make_image_processor(config)
        mean, std = processor.image_mean, processor.image_std
    else:  # the processor reads grayscale and RGB images only; other inputs get its neutral non-RGB statistics
        mean = std = 0.5

    def per_channel(value: float | Sequence[float]) -> tuple[float, ...]:
        return tuple(float(v) for v in value) if isinstance(value, Sequence) else (float(value),) * channels

    return {
        "input_size": (channels, config.image_size, config.image_size),
        "mean": per_channel(mean),
        "std": per_channel(std),
    }


def _default_cfg(spec: ArchitectureSpec, preset: str) -> dict[str, Any]:
    """The ``pretrained_cfg`` registered for a preset: its input, normalisation, head and where its layers are."""
    config = spec.make_config(preset)
    adapter = _adapter(spec)
    return {
        **_data_cfg(spec, config),
        "fixed_input_size": True,
        "interpolation": "bilinear",
        "crop_pct": 1.0,
        "crop_mode": "center",
        "num_classes": config.num_labels,
        "first_conv": f"hf_model.{adapter.first_conv(config)}",
        "classifier": "hf_model.classifier",
        "paper_name": spec.paper,
        "description": f"hfdl preset {preset!r} ({spec.name}, Deep Learning Mastery ch. {spec.chapter})",
        "notes": ("No pretrained weights: the model starts from hfdl's initialisation.",),
    }


# --------------------------------------------------------------------------------------------- the model
class HfdlTimmModel(nn.Module):
    """An hfdl CNN classifier with timm's model API; ``hf_model`` is the hfdl ``PreTrainedModel`` itself.

    Build it through ``timm.create_model("hfdl_<preset>", ...)`` (which attaches ``pretrained_cfg`` and handles
    ``features_only``), or directly as ``HfdlTimmModel("resnet18", num_classes=10)``.

    Attributes follow timm: ``num_classes``, ``in_chans``, ``num_features`` (channels of the last feature maps),
    ``head_hidden_size`` (width of the pre-logits features: ``num_features`` for ResNet, the last hidden FC layer
    for LeNet-5, AlexNet and VGG), ``global_pool``, ``drop_rate``, ``feature_info`` and ``grad_checkpointing``.
    """

    def __init__(
        self,
        preset: str,
        num_classes: int | None = None,
        in_chans: int | None = None,
        img_size: int | Sequence[int] | None = None,
        global_pool: str | None = None,
        drop_rate: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        hf_model: PreTrainedModel | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        spec, preset = resolve_preset(preset)
        self.adapter = _adapter(spec)
        if hf_model is None:
            config = make_hfdl_config(preset, num_classes, in_chans, img_size, drop_rate, **overrides)
            hf_model = spec.task("image-classification").model_class(config)
            self.model_name = timm_model_name(preset)
        else:
            given = {"num_classes": num_classes, "in_chans": in_chans, "img_size": img_size, **overrides}
            given = sorted(key for key, value in given.items() if value is not None)
            if given:
                raise ValueError(f"A wrapped hfdl model keeps its own config; got {', '.join(given)} as well.")
            self.model_name = f"{spec.name} ({type(hf_model).__name__})"
        self.hf_model = hf_model
        config = hf_model.config
        self._check_global_pool(global_pool)
        self.global_pool = self.adapter.pool_type
        self.in_chans = config.num_channels
        self.img_size = (config.image_size, config.image_size)
        self.feature_info = [
            {"num_chs": channels, "reduction": reduction, "module": f"hf_model.{path}"}
            for (channels, reduction), path in zip(
                self.adapter.channels_and_reductions(config), self.adapter.stage_paths(config), strict=True
            )
        ]
        self.num_features = self.feature_info[-1]["num_chs"]
        self.head_hidden_size = self.adapter.head_hidden_size(config)
        self.drop_rate = float(drop_rate or 0.0)
        # Only where the config has no dropout of its own (ResNet): timm's classifier dropout. It has no weights,
        # so the state dict stays the hfdl model's.
        use_head_drop = self.adapter.dropout_field is None and self.drop_rate > 0
        self.head_drop = nn.Dropout(self.drop_rate) if use_head_drop else nn.Identity()
        self.grad_checkpointing = False
        self.num_levels = len(self.feature_info)  # feature levels still computed (prune_intermediate_layers cuts)
        self.head_pruned = False
        self.num_classes = config.num_labels
        if num_classes == 0:
            self.reset_classifier(0)
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)

    @classmethod
    def from_hfdl(cls, model: PreTrainedModel | str, **kwargs: Any) -> HfdlTimmModel:
        """Wrap an existing hfdl classifier, or load one (a folder or Hub id) with ``from_pretrained``.

        ``kwargs`` go to ``from_pretrained`` when ``model`` is a path. The wrapper is built without timm's factory,
        so it has no ``pretrained_cfg``; ``timm.create_model("hfdl_<preset>", pretrained=True,
        pretrained_cfg_overlay={"state_dict": wrapper.state_dict()})`` gives one with it.
        """
        from ..registry import get_architecture

        if isinstance(model, str):
            from transformers import AutoModelForImageClassification

            model = AutoModelForImageClassification.from_pretrained(model, **kwargs)
        spec = get_architecture(getattr(model.config, "model_type", ""))
        expected = spec.task("image-classification").model_class
        if not isinstance(model, expected):
            raise ValueError(f"Expected an hfdl {expected.__name__}, got {type(model).__name__}.")
        return cls(spec.name, hf_model=model)

    # ----------------------------------------------------------------------------------------- classifier
    def _check_global_pool(self, global_pool: str | None) -> None:
        if global_pool is not None and global_pool != self.adapter.pool_type:
            raise ValueError(
                f"{self.model_name} pools its last feature maps with {self.adapter.pool_type!r} (part "
                f"of the hfdl architecture); `global_pool` must be None or {self.adapter.pool_type!r}, got "
                f"{global_pool!r}."
            )

    def get_classifier(self) -> nn.Module:
        """The final linear layer (``hf_model.classifier``), or ``nn.Identity`` without classes."""
        return self.hf_model.classifier

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes`` (0: none).

        The hfdl config follows (``num_labels`` and its ``id2label``), so ``hf_model.save_pretrained`` saves a
        consistent checkpoint; with 0 the config keeps its labels and the saved model lacks its classifier.
        """
        _check_num_classes(num_classes)
        self._check_global_pool(global_pool)
        if self.head_pruned and num_classes:
            raise ValueError(
                "The head was removed by prune_intermediate_layers (features_only); a classifier on the pruned "
                "feature maps is not an hfdl model. Build the model again without pruning to classify."
            )
        self.num_classes = num_classes
        if num_classes == 0:
            self.hf_model.classifier = nn.Identity()
            return
        reference = next(self.hf_model.parameters())
        classifier = nn.Linear(self.head_hidden_size, num_classes, device=reference.device, dtype=reference.dtype)
        self.hf_model._init_weights(classifier)  # the architecture's own init, as a new hfdl model would have
        self.hf_model.classifier = classifier
        self.hf_model.config.num_labels = num_classes  # transformers rebuilds id2label / label2id to match

    # ----------------------------------------------------------------------------------------- forward
    def _stages(self) -> list[nn.Module]:
        paths = self.adapter.stage_paths(self.hf_model.config)[: self.num_levels]
        return [self.hf_model.get_submodule(path) for path in paths]

    def _run_stage(self, stage: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and self.training and not torch.jit.is_scripting():
            return torch.utils.checkpoint.checkpoint(self.adapter.run_stage, stage, hidden_states, use_reentrant=False)
        return self.adapter.run_stage(stage, hidden_states)

    def _check_input(self, x: torch.Tensor) -> None:
        config = self.hf_model.config
        check_image_tensor(x, config.num_channels, config.image_size)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature maps (B, num_features, H', W'), before any pooling."""
        self._check_input(x)
        for stage in self._stages():
            x = self._run_stage(stage, x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature maps -> logits (B, num_classes), or with ``pre_logits`` the features the classifier reads."""
        if self.head_pruned:
            return x  # as timm's pruned models: no pooling, no classifier
        x = self.adapter.pre_logits(self.hf_model, x)
        if pre_logits:
            return x
        return self.hf_model.classifier(self.head_drop(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | tuple[int, ...] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The feature maps of the levels in ``indices`` (timm's semantics), and the last feature maps.

        Args:
            x: Images (B, in_chans, img_size, img_size).
            indices: ``None``: every level; an int ``n``: the last ``n``; a sequence: those levels (negative from
                the end).
            norm: Accepted for timm's API; these networks have no final norm, so it changes nothing.
            stop_early: Stop after the last level asked for (the returned final maps are then that level's).
            output_fmt: Only ``"NCHW"``.
            intermediates_only: Return only the list of maps.
        """
        if Format(output_fmt) is not Format.NCHW:
            raise ValueError(f"hfdl CNNs give NCHW feature maps; `output_fmt` must be 'NCHW', got {output_fmt!r}.")
        self._check_input(x)
        stages = self._stages()
        take_indices, max_index = feature_take_indices(len(stages), indices)
        if stop_early or intermediates_only:
            stages = stages[: max_index + 1]
        intermediates = []
        for index, stage in enumerate(stages):
            x = self._run_stage(stage, x)
            if index in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
        self,
        indices: int | list[int] | tuple[int, ...] = 1,
        prune_norm: bool = False,
        prune_head: bool = True,
    ) -> list[int]:
        """Remove the levels after the last one in ``indices`` and, with ``prune_head``, the head.

        timm's feature extractor (``features_only=True``) calls this so that no parameter goes unused (DDP refuses
        those). The removed modules become ``nn.Identity`` inside ``hf_model``, which then no longer matches its
        config: save an hfdl checkpoint before pruning, not after.

        Returns:
            The absolute indices of the levels kept for output.
        """
        take_indices, max_index = feature_take_indices(self.num_levels, indices)
        config = self.hf_model.config
        for path in self.adapter.stage_paths(config)[max_index + 1 : self.num_levels]:
            self.hf_model.set_submodule(path, nn.Identity())
        self.num_levels = max_index + 1
        prune_end = max_index < len(self.feature_info) - 1
        if prune_end:  # the head reads the last level's maps, so it goes with them
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
        if (prune_head or prune_end) and not self.head_pruned:
            for path in self.adapter.head_paths(config):
                self.hf_model.set_submodule(path, nn.Identity())
            self.hf_model.classifier = nn.Identity()
            self.head_drop = nn.Identity()
            self.num_classes = 0
            self.global_pool = ""
            self.head_pruned = True
        return take_indices

    # ----------------------------------------------------------------------------------------- training helpers
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each feature level's activations in the backward pass instead of keeping them (timm's API)."""
        self.grad_checkpointing = enable

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups for timm's layer-wise learning-rate decay: the first level, then one per level.

        The pre-logits layers and the classifier fall in timm's last group (names no pattern matches).
        """
        paths = [f"hf_model.{path}" for path in self.adapter.stage_paths(self.hf_model.config)]
        return {
            "stem": rf"^{re.escape(paths[0])}\.",
            "blocks": [(rf"^{re.escape(path)}\.", (index,)) for index, path in enumerate(paths[1:])],
        }

    def extra_repr(self) -> str:
        return f"{self.model_name}, num_classes={self.num_classes}, in_chans={self.in_chans}"


# --------------------------------------------------------------------------------------------- registration
def _create(preset: str, variant: str, pretrained: bool = False, **kwargs: Any) -> HfdlTimmModel:
    """Build a preset through timm's ``build_model_with_cfg`` (pretrained_cfg, features_only, weight loading)."""
    spec, preset = resolve_preset(preset)
    timm_args = {key: kwargs.get(key) for key in ("num_classes", "in_chans", "img_size", "drop_rate")}
    overrides = {
        key: value
        for key, value in kwargs.items()
        if key not in timm_args
        and key not in ("global_pool", "device", "dtype", "features_only", "out_indices", "feature_cls")
        and key not in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir", "pretrained_model_args")
    }
    # The built model's own input and classes in its pretrained_cfg, so that resolve_data_config(model=model) feeds
    # a 1-channel or resized model correctly (hfdl has no pretrained weights whose source input it should describe).
    config = make_hfdl_config(preset, **timm_args, **overrides)
    overlay = {**_data_cfg(spec, config), "num_classes": config.num_labels}
    overlay.update(kwargs.pop("pretrained_cfg_overlay", None) or {})
    if pretrained:
        source = {**_default_cfg(spec, preset), **overlay}
        given = kwargs.get("pretrained_cfg")
        if isinstance(given, dict):
            source.update(given)
        if not any(source.get(key) for key in _WEIGHT_SOURCES):
            raise ValueError(
                f"{variant} has no pretrained weights (hfdl models are trained by you). Use pretrained=False, or "
                "point to a state dict of this model with pretrained_cfg_overlay={'file': path} (or 'state_dict')."
            )
    num_levels = len(_adapter(spec).stage_paths(config))
    return build_model_with_cfg(
        HfdlTimmModel,
        variant,
        pretrained,
        pretrained_cfg_overlay=overlay,
        # timm's getter-based feature extractor: forward_intermediates + prune_intermediate_layers, every level.
        feature_cfg={"feature_cls": "getter", "out_indices": tuple(range(num_levels))},
        preset=preset,
        **kwargs,
    )


def _make_entrypoint(preset: str, variant: str) -> Callable[..., HfdlTimmModel]:
    def entrypoint(pretrained: bool = False, **kwargs: Any) -> HfdlTimmModel:
        return _create(preset, variant, pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = variant
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"hfdl's {preset!r} preset as a timm model (see :class:`HfdlTimmModel`)."
    return entrypoint


#: timm reads each model's pretrained_cfg from its module's ``default_cfgs`` when it registers the entrypoint.
default_cfgs: dict[str, Any] = {}


def register_timm_models() -> list[str]:
    """Register every CNN preset with timm's model registry (idempotent); returns the timm names.

    Each entrypoint is also a function of this module (``hfdl.integrations.timm.hfdl_resnet18(num_classes=10)``), as
    timm's own entrypoints are functions of their modules. A name already registered by this module is skipped, so
    calling this again (or re-importing) neither re-registers nor makes timm warn about overwriting.
    """
    names = timm_model_names()
    cfgs = {}
    for variant, preset in names.items():
        spec, _ = resolve_preset(preset)
        cfgs[variant] = _default_cfg(spec, preset)
    default_cfgs.update(generate_default_cfgs(cfgs))
    module = globals()
    for variant, preset in names.items():
        if is_model(variant) and getattr(model_entrypoint(variant), "__module__", None) == __name__:
            continue
        entrypoint = module.get(variant) or _make_entrypoint(preset, variant)
        module[variant] = entrypoint
        register_model(entrypoint)
    return list(names)


def run_script(path: str, argv: Sequence[str] = ()) -> None:
    """Run a timm script (``train.py``, ``validate.py``, ``inference.py`` of a timm checkout) with hfdl's models.

    timm's scripts are not in its wheel and import no plugins, so they only see ``hfdl_*`` models once this module
    is imported in their process: this runs ``path`` as ``__main__`` with ``sys.argv = [path, *argv]`` after
    registration. From the shell: ``python -m hfdl.integrations.timm train.py --model hfdl_resnet20_cifar ...``.
    """
    import runpy
    import sys

    saved = sys.argv
    sys.argv = [str(path), *argv]
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = saved


if __name__ == "__main__":
    import sys

    # Run as a script, this file is the module "__main__": the registration belongs to the importable module, so
    # that timm's registry and pickled entrypoints name hfdl.integrations.timm.
    from hfdl.integrations.timm import run_script as _run_script

    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print("usage: python -m hfdl.integrations.timm SCRIPT.py [script arguments...]", file=sys.stderr)
        print("Runs a timm script (train.py, validate.py, ...) with hfdl's hfdl_* models registered.", file=sys.stderr)
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    _run_script(sys.argv[1], sys.argv[2:])
else:
    register_timm_models()
