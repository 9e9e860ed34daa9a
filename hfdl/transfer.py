"""Transfer learning for any hfdl classifier: which parameters train, at which rate, from which step.

``recipes/transfer.py`` is built from these pieces, and a notebook can use them on its own:

* :func:`apply_mode` — ``feature-extraction`` (a frozen body, only the head trains), ``full`` (everything trains) or
  ``lora`` (peft low-rank adapters on the body's Linear/Conv layers, the head trained in full; see
  :func:`hfdl.lora.make_lora_config`);
* :func:`layer_groups` — the model cut into embeddings, blocks and the top (head), bottom to top, read off the
  parameter names so every architecture works without a hand-written table;
* :func:`optimizer_parameter_groups` — layer-wise learning-rate decay (Clark et al. 2020, ELECTRA; Bao et al. 2021,
  BEiT): the top gets the rate, block ``i`` of ``L`` the rate times ``decay ** (L - i)``, the embeddings
  ``decay ** (L + 1)``, so lower layers, which hold the most general features, move least;
* :class:`GradualUnfreezing` — ULMFiT's schedule (Howard & Ruder 2018): the top first, one more group every
  ``interval`` optimizer steps, as a pure function of the step so that a resumed run continues it;
* :func:`count_parameters`, :class:`PeakMemory`, :func:`reset_head`, :func:`scale_learning_rate`,
  :func:`resolve_trackers` — what a transfer table reports and how runs are tracked.
"""

from __future__ import annotations

import os
import re
import resource
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

#: The three ways to transfer a pretrained model to a new task.
MODES = ("feature-extraction", "full", "lora")
#: accelerate trackers ``--report_to`` accepts, and the pip package each needs.
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "trackio": "trackio", "wandb": "wandb"}

GroupKind = Literal["embeddings", "block", "top"]


def task_model(model: nn.Module) -> nn.Module:
    """The hfdl model inside ``model``: unwraps DistributedDataParallel (``.module``) and peft (``get_base_model``).

    peft injects its layers into that model, so its parameter names are the hfdl ones (``vit.layers.3...``) with
    peft's parts inside (``...qkv.lora_A.default.weight``, ``classifier.modules_to_save.default.weight``).
    """
    model = getattr(model, "module", model)
    if hasattr(model, "peft_config") and hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def _body_prefix(model: nn.Module) -> str:
    prefix = getattr(model, "base_model_prefix", "")
    if not prefix or getattr(model, prefix, None) is None or not isinstance(getattr(model, prefix), nn.Module):
        raise ValueError(
            f"{type(model).__name__} has no body under base_model_prefix {prefix!r}: transfer learning needs a task "
            "model (a body and a head), e.g. AutoModelForImageClassification / AutoModelForSequenceClassification."
        )
    return prefix


def head_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters outside the body (the new head: ``classifier``, ``lm_head``...)."""
    model = task_model(model)
    prefix = _body_prefix(model)
    return [name for name, _ in model.named_parameters() if name.split(".", 1)[0] != prefix]


def head_module_names(model: nn.Module) -> list[str]:
    """The model's direct children that hold parameters and are not the body (what a new task replaces)."""
    model = task_model(model)
    prefix = _body_prefix(model)
    return [name for name, child in model.named_children() if name != prefix and any(True for _ in child.parameters())]


# ---------------------------------------------------------------------------------------------------------------
# Layer groups
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerGroup:
    """A depth of the model: ``embeddings`` (below the blocks), one ``block``, or the ``top`` (head and whatever the
    body has above its stack of blocks: a final norm, a pooler, fully connected layers)."""

    name: str
    kind: GroupKind
    parameter_names: tuple[str, ...]


def _unit(relative_name: str) -> tuple[str, str | None]:
    """``(unit, container)`` of a body parameter: the path down to its first numeric part (``stages.2``, container
    ``stages``), or, without one, the body's child that holds it (``embeddings``, container ``None``)."""
    parts = relative_name.split(".")
    for index, part in enumerate(parts[:-1]):
        if part.isdigit():
            return ".".join(parts[: index + 1]), ".".join(parts[:index])
    return parts[0], None


def layer_groups(model: nn.Module, stack: str | None = None) -> list[LayerGroup]:
    """Cut ``model`` into depth groups, bottom to top, from its parameter names alone.

    The body's parameters are split into *units*: the path down to the first numbered module (``layers.3``,
    ``stages.0``, ``fully_connected.1``) or, for a path without a number, the body's child (``embeddings``, ``stem``,
    ``pooler``, ``c5``). The *stack* is the numbered container with the most units (more parameters breaks a tie):
    ``layers`` in BERT, GPT and ViT, ``stages`` in ResNet and VGG, ``features`` in AlexNet, ``layers`` in the MLP.
    Its units are the blocks; what comes before the first block (embeddings, a CNN stem) is the ``embeddings``
    group; what comes after the last (a final norm, BERT's pooler, VGG/AlexNet's fully connected layers) joins the
    head in the ``top`` group, as BEiT's layer decay puts the final norm with the head. A body without numbered
    modules (LeNet-5: ``stage1``, ``stage2``, ``c5``, ``f6``) has one block per child and no embeddings group.

    Args:
        model: An hfdl task model, optionally wrapped by peft or DDP (names are read on the hfdl model).
        stack: The container to take as the stack (``"stages"``) instead of the one found.

    Returns:
        The groups bottom to top; every parameter of ``model`` is in exactly one.
    """
    model = task_model(model)
    prefix = _body_prefix(model)
    units: dict[str, list[str]] = {}
    containers: dict[str, str | None] = {}
    sizes: dict[str | None, int] = {}
    head: list[str] = []
    for name, parameter in model.named_parameters():
        if name.split(".", 1)[0] != prefix:
            head.append(name)
            continue
        unit, container = _unit(name[len(prefix) + 1 :])
        units.setdefault(unit, []).append(name)
        containers[unit] = container
        sizes[container] = sizes.get(container, 0) + parameter.numel()
    counts: dict[str, int] = {}
    for container in containers.values():
        if container is not None:
            counts[container] = counts.get(container, 0) + 1
    if stack is None and counts:
        stack = max(counts, key=lambda c: (counts[c], sizes[c]))
    elif stack is not None and stack not in counts:
        raise ValueError(f"stack={stack!r} is not a numbered container of the body; found: {sorted(counts) or 'none'}.")
    ordered = list(units)
    if stack is None:  # no numbered modules: every child of the body is a block
        blocks = [LayerGroup(unit, "block", tuple(units[unit])) for unit in ordered]
        return [*blocks, LayerGroup("top", "top", tuple(head))]
    positions = [i for i, unit in enumerate(ordered) if containers[unit] == stack]
    first, last = positions[0], positions[-1]
    groups: list[LayerGroup] = []
    below = [name for unit in ordered[:first] for name in units[unit]]
    if below:
        groups.append(LayerGroup("embeddings", "embeddings", tuple(below)))
    for unit in ordered[first : last + 1]:
        if containers[unit] == stack:
            groups.append(LayerGroup(unit, "block", tuple(units[unit])))
        else:  # something between two blocks belongs with the block below it
            previous = groups[-1]
            groups[-1] = LayerGroup(previous.name, "block", previous.parameter_names + tuple(units[unit]))
    above = [name for unit in ordered[last + 1 :] for name in units[unit]]
    groups.append(LayerGroup("top", "top", tuple(above + head)))
    return groups


def layer_decay_scales(groups: Sequence[LayerGroup], layer_decay: float) -> dict[str, float]:
    """The learning-rate factor of each group: top 1, block ``i`` of ``L`` ``decay ** (L - i)``, embeddings
    ``decay ** (L + 1)`` (BEiT's ``LayerDecayValueAssigner`` with block ``i`` at layer id ``i + 1``)."""
    if not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}.")
    num_blocks = sum(group.kind == "block" for group in groups)
    scales, block = {}, 0
    for group in groups:
        if group.kind == "embeddings":
            scales[group.name] = layer_decay ** (num_blocks + 1)
        elif group.kind == "block":
            scales[group.name] = layer_decay ** (num_blocks - block)
            block += 1
        else:
            scales[group.name] = 1.0
    return scales


def optimizer_parameter_groups(
    model: nn.Module,
    learning_rate: float,
    weight_decay: float = 0.0,
    layer_decay: float | None = None,
    groups: Sequence[LayerGroup] | None = None,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups over ``model``'s trainable parameters, with layer-wise learning-rate decay.

    One group per (layer group, decayed or not): weight decay skips biases and 1-D parameters (norm scales), as
    :func:`hfdl.training.parameter_groups` does. Each dict also carries ``name`` and ``lr_scale`` for logs and tests
    (torch keeps extra keys). Without ``layer_decay`` every group has ``learning_rate``. Empty groups are dropped.

    Call it before :class:`GradualUnfreezing` freezes anything: the groups hold every parameter the mode trains.
    """
    groups = list(groups) if groups is not None else layer_groups(model)
    scales = layer_decay_scales(groups, layer_decay) if layer_decay is not None else {g.name: 1.0 for g in groups}
    named = dict(task_model(model).named_parameters())
    result = []
    for group in groups:
        decay, no_decay = [], []
        for name in group.parameter_names:
            parameter = named[name]
            if parameter.requires_grad:
                (no_decay if parameter.ndim <= 1 or name.endswith(".bias") else decay).append(parameter)
        lr = learning_rate * scales[group.name]
        for suffix, params, decay_value in (("decay", decay, weight_decay), ("no_decay", no_decay, 0.0)):
            if params:
                result.append(
                    {
                        "params": params,
                        "lr": lr,
                        "weight_decay": decay_value,
                        "name": f"{group.name}/{suffix}",
                        "lr_scale": scales[group.name],
                    }  # fmt: skip
                )
    if not result:
        raise ValueError(f"{type(task_model(model)).__name__} has no trainable parameter to optimize.")
    return result


# ---------------------------------------------------------------------------------------------------------------
# Modes
# ---------------------------------------------------------------------------------------------------------------


def freeze_body(model: nn.Module) -> None:
    """Feature extraction: no body parameter trains; the head's stay as they are."""
    model = task_model(model)
    getattr(model, _body_prefix(model)).requires_grad_(False)


def apply_mode(
    model: nn.Module, mode: str, lora_r: int = 8, lora_alpha: int = 16, lora_dropout: float = 0.0
) -> nn.Module:
    """Make ``model`` train as ``mode`` says; returns the model to train (a ``PeftModel`` for ``lora``).

    * ``feature-extraction``: the body is frozen (:func:`freeze_body`); only the head trains;
    * ``full``: every parameter trains;
    * ``lora``: ``peft.get_peft_model`` with :func:`hfdl.lora.make_lora_config` — LoRA on every Linear/Conv layer of
      the body, the head in ``modules_to_save`` (trained in full and saved with the adapter).
    """
    if mode not in MODES:
        raise ValueError(f"Unknown transfer mode {mode!r}; allowed: {', '.join(MODES)}.")
    if mode == "feature-extraction":
        if not head_parameter_names(model):
            raise ValueError(f"{type(model).__name__} has no head to train: feature extraction needs a task model.")
        model.requires_grad_(True)
        freeze_body(model)
        return model
    if mode == "full":
        return model.requires_grad_(True)
    from peft import get_peft_model

    from .lora import make_lora_config

    config = make_lora_config(model, r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout)
    return get_peft_model(model, config)


def reset_head(model: nn.Module) -> list[str]:
    """Re-initialise the head's modules with the model's own ``_init_weights``; returns their names.

    ``from_pretrained(..., ignore_mismatched_sizes=True)`` keeps a saved head whose shape happens to fit (a 10-class
    MNIST head on 10-class digits): a transfer's new head must start fresh whatever its shape.
    """
    model = task_model(model)
    names = head_module_names(model)
    for name in names:
        for module in getattr(model, name).modules():
            model._init_weights(module)
    return names


def count_parameters(model: nn.Module) -> dict[str, int]:
    """``{"trainable_parameters", "total_parameters"}`` of ``model`` (peft's adapters and head copies included)."""
    seen: dict[int, nn.Parameter] = {id(p): p for p in getattr(model, "module", model).parameters()}
    return {
        "trainable_parameters": sum(p.numel() for p in seen.values() if p.requires_grad),
        "total_parameters": sum(p.numel() for p in seen.values()),
    }


def scale_learning_rate(
    learning_rate: float, batch_size: int, num_processes: int, accumulation: int, reference_batch: int | None = None
) -> float:
    """The linear scaling rule (Goyal et al. 2017): the rate grows with the effective batch.

    The effective batch is ``batch_size x num_processes x accumulation``; ``learning_rate`` is taken as the rate
    for ``reference_batch`` samples per step (default: ``batch_size``, i.e. one process without accumulation).
    """
    reference = reference_batch or batch_size
    return learning_rate * batch_size * num_processes * accumulation / reference


# ---------------------------------------------------------------------------------------------------------------
# Gradual unfreezing
# ---------------------------------------------------------------------------------------------------------------


class GradualUnfreezing:
    """ULMFiT's gradual unfreezing: the top group trains first, then one more group from the top every ``interval``
    optimizer steps, until all train.

    Rule: before optimizer step ``s`` (0-based: ``s`` steps done), the ``min(len(groups), 1 + s // interval)``
    highest groups train. It depends on ``s`` alone, so a run resumed from a checkpoint at step ``s`` continues the
    schedule where it was. Only parameters that trained when this object was made (what the mode trains: LoRA
    factors, not frozen base weights) are ever unfrozen.

    Two ways to hold a group still, with the same result:

    * ``"requires_grad"`` (one process): frozen parameters get no gradient, and backward skips their work;
    * ``"mask"`` (DDP): every trainable parameter keeps ``requires_grad`` (DDP fixes the set it synchronises when
      it wraps the model, and would not all-reduce a parameter unfrozen later), and :meth:`mask_gradients` drops
      the frozen ones' gradients before the optimizer step; optimizers skip parameters without a gradient.

    Batch-norm layers of frozen groups run in eval mode (:meth:`train_mode`), so their statistics stay too.
    """

    def __init__(
        self,
        model: nn.Module,
        interval: int,
        groups: Sequence[LayerGroup] | None = None,
        method: Literal["requires_grad", "mask"] = "requires_grad",
    ) -> None:
        if interval <= 0:
            raise ValueError(f"The unfreezing interval must be a positive number of steps, got {interval}.")
        if method not in ("requires_grad", "mask"):
            raise ValueError(f"method must be 'requires_grad' or 'mask', got {method!r}.")
        self.model = model
        self.interval = interval
        self.method = method
        self.groups = list(groups) if groups is not None else layer_groups(model)
        named = dict(task_model(model).named_parameters())
        self._parameters = [
            [named[name] for name in group.parameter_names if named[name].requires_grad] for group in self.groups
        ]
        self._module_names = {name: module for name, module in task_model(model).named_modules()}
        self.current: int | None = None

    def num_unfrozen(self, step: int) -> int:
        """How many groups, counted from the top, train at optimizer step ``step``."""
        return min(len(self.groups), 1 + step // self.interval)

    def trainable_groups(self, step: int) -> list[str]:
        """Names of the groups that train at ``step``, bottom to top."""
        return [group.name for group in self.groups[len(self.groups) - self.num_unfrozen(step) :]]

    def apply(self, step: int) -> bool:
        """Set the flags for ``step``; returns whether they changed."""
        count = self.num_unfrozen(step)
        if count == self.current:
            return False
        self.current = count
        if self.method == "requires_grad":
            first = len(self.groups) - count
            for index, parameters in enumerate(self._parameters):
                for parameter in parameters:
                    parameter.requires_grad_(index >= first)
        return True

    def mask_gradients(self) -> None:
        """Drop the gradients of the frozen groups (``"mask"``; harmless with ``"requires_grad"``)."""
        first = len(self.groups) - (self.current or 1)
        for parameters in self._parameters[:first]:
            for parameter in parameters:
                parameter.grad = None

    def train_mode(self, model: nn.Module) -> None:
        """``model.train()``, then eval mode for batch norms whose parameters are all in frozen groups."""
        model.train()
        frozen = {
            id(p) for parameters in self._parameters[: len(self.groups) - (self.current or 1)] for p in parameters
        }
        keep_statistics(task_model(self.model), frozen)


def keep_statistics(model: nn.Module, frozen: Iterable[int] | None = None) -> None:
    """Put the batch norms whose parameters are frozen into eval mode: a frozen body should not drift through its
    running statistics (Keras' transfer-learning guide does the same). ``frozen`` holds parameter ids; default:
    those without ``requires_grad``."""
    frozen_ids = set(frozen) if frozen is not None else None
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            parameters = list(module.parameters(recurse=False))
            if frozen_ids is None:
                is_frozen = all(not p.requires_grad for p in parameters)
            else:
                is_frozen = bool(parameters) and all(id(p) in frozen_ids for p in parameters)
            if is_frozen:
                module.eval()


# ---------------------------------------------------------------------------------------------------------------
# Peak memory
# ---------------------------------------------------------------------------------------------------------------


class PeakMemory:
    """Peak memory of a stretch of code: GPU ``torch.cuda.max_memory_allocated`` on a CUDA device, else the process's
    peak resident set size (``VmHWM``).

    On Linux the RSS peak is reset at :meth:`reset` (``/proc/self/clear_refs``), so it is this stretch's peak, not
    the process's since start-up (which ``resource.getrusage`` gives, the fallback elsewhere). RSS counts the
    whole process: the model, the data, Python, the libraries; differences between runs show what a mode adds
    (gradients, optimizer state, activations kept for backward).
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.kind = "cuda_max_allocated" if self.device.type == "cuda" else "cpu_peak_rss"

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.kind = "cpu_peak_rss_since_start"

    def read_mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.kind == "cpu_peak_rss":
            status = Path("/proc/self/status").read_text()
            match = re.search(r"VmHWM:\s+(\d+)\s+kB", status)
            if match:
                return int(match.group(1)) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# ---------------------------------------------------------------------------------------------------------------
# Trackers
# ---------------------------------------------------------------------------------------------------------------


def _tracker_available(name: str) -> bool:
    from accelerate.utils import imports

    return getattr(imports, f"is_{name}_available")()


def resolve_trackers(report_to: str, output_dir: str | os.PathLike) -> list[str]:
    """``--report_to`` as accelerate tracker names, each set up to work locally and offline.

    ``none`` is no tracker; ``all`` every installed one of :data:`TRACKER_PACKAGES`; otherwise a comma-separated
    list, each installed (else an ImportError naming the pip package). Offline defaults, set only where the
    environment does not say otherwise: TensorBoard writes under ``output_dir/runs`` (the Accelerator's
    ``logging_dir``), MLflow to a ``file:`` store ``output_dir/mlruns`` (``MLFLOW_TRACKING_URI``), W&B offline
    (``WANDB_MODE=offline``, ``WANDB_DIR=output_dir``), trackio to its local database under ``output_dir/trackio``
    (``TRACKIO_DIR``).
    """
    text = report_to.strip()
    if text in ("", "none"):
        return []
    if text == "all":
        names = [name for name in TRACKER_PACKAGES if _tracker_available(name)]
    else:
        names = [name.strip() for name in text.split(",") if name.strip()]
        for name in names:
            if name not in TRACKER_PACKAGES:
                raise ValueError(
                    f"Unknown tracker {name!r} in --report_to; allowed: {', '.join(TRACKER_PACKAGES)}, all or none."
                )
            if not _tracker_available(name):
                raise ImportError(
                    f"--report_to {name} needs the {TRACKER_PACKAGES[name]!r} package: pip install "
                    f"{TRACKER_PACKAGES[name]} (or leave {name} out of --report_to)."
                )
    output_dir = Path(output_dir).resolve()
    if "mlflow" in names:
        os.environ.setdefault("MLFLOW_TRACKING_URI", (output_dir / "mlruns").as_uri())
    if "wandb" in names:
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_DIR", str(output_dir))
    if "trackio" in names:
        os.environ.setdefault("TRACKIO_DIR", str(output_dir / "trackio"))
    return names


__all__ = [
    "MODES",
    "TRACKER_PACKAGES",
    "GradualUnfreezing",
    "LayerGroup",
    "PeakMemory",
    "apply_mode",
    "count_parameters",
    "freeze_body",
    "head_module_names",
    "head_parameter_names",
    "keep_statistics",
    "layer_decay_scales",
    "layer_groups",
    "optimizer_parameter_groups",
    "reset_head",
    "resolve_trackers",
    "scale_learning_rate",
    "task_model",
]
