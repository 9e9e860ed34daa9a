"""What every hfdl training recipe needs and no recipe should have to spell out: optimizers, schedules, checkpoints
that survive ``kill -9``, a JSON-lines log, classification metrics and plots.

The recipes in ``recipes/`` stay scripts a person reads in one sitting (data -> model -> loop -> evaluate -> save),
as accelerate's ``cv_example.py`` does, because the parts below live here, tested once:

* :func:`create_optimizer` / :func:`create_scheduler` — the course's optimizers and learning-rate schedules by name;
* :class:`TrainingState`, :func:`save_checkpoint`, :func:`resume_from_checkpoint`, :func:`prepare_checkpoint_dir` —
  checkpoints written by ``accelerator.save_state`` under accelerate's automatic naming
  (``checkpoints/checkpoint_<i>``, the oldest removed past ``total_limit``), made safe against a process killed in
  the middle of a save and against a new run mixing its checkpoints with an old run's;
* :class:`JsonlTracker` — an accelerate tracker that writes every ``accelerator.log`` call to ``train_log.jsonl``
  beside TensorBoard, W&B, ... and that travels with the checkpoints, so a resumed run's log is the whole run's;
* :func:`classification_metrics`, :func:`predict_classes`, :func:`plot_learning_curves`,
  :func:`plot_confusion_matrix`, :func:`save_json`.

accelerate, scikit-learn and matplotlib are training extras: the functions import them where they need them, so
``import hfdl.training`` works with the core dependencies (accelerate comes in only with the tracker and checkpoints).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:  # for type hints only; accelerate is imported where it is used
    from accelerate import Accelerator

try:  # an accelerate tracker when accelerate is installed (it is a training extra), a plain class otherwise
    from accelerate.tracking import GeneralTracker
except ImportError:  # pragma: no cover - depends on the environment
    GeneralTracker = object

#: The optimizers of the course, chapter 4 (``momentum`` is SGD with Nesterov momentum 0.9).
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adagrad", "adam", "adamw")
#: Learning-rate schedules, stepped once per optimizer step (see :func:`create_scheduler`).
LR_SCHEDULERS = ("none", "constant", "linear", "cosine", "step", "onecycle")
#: Written into a checkpoint after everything else: a checkpoint folder without it was cut short.
TRAINER_STATE_NAME = "trainer_state.json"


# ---------------------------------------------------------------------------------------------------------------
# Optimizers and schedules
# ---------------------------------------------------------------------------------------------------------------


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split the trainable parameters into a decayed group (weight matrices, kernels) and an undecayed one.

    Weight decay pulls weights toward zero to keep the function smooth; biases and normalisation scales (every
    parameter with at most one dimension) only shift or scale activations, and decaying them just costs accuracy.
    That is the rule of timm's ``param_groups_weight_decay`` and of transformers' Trainer (which names LayerNorm).
    """
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim <= 1 or name.endswith(".bias") else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def create_optimizer(
    model: torch.nn.Module, name: str, learning_rate: float, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """One of :data:`OPTIMIZERS` over ``model``'s trainable parameters, weight decay skipping biases and norms.

    Args:
        model: The model (before or after ``accelerator.prepare``).
        name: ``sgd``, ``momentum`` (Nesterov, 0.9), ``rmsprop``, ``adagrad``, ``adam`` or ``adamw``.
        learning_rate: The base (peak) learning rate.
        weight_decay: L2 penalty for ``sgd``..``adam``, decoupled decay for ``adamw`` (Loshchilov & Hutter, 2019).
    """
    groups = parameter_groups(model, weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=learning_rate)
    if name == "momentum":
        return torch.optim.SGD(groups, lr=learning_rate, momentum=0.9, nesterov=True)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=learning_rate)
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=learning_rate)
    if name == "adam":
        return torch.optim.Adam(groups, lr=learning_rate)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=learning_rate)
    raise ValueError(f"Unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}.")


def create_scheduler(
    optimizer: torch.optim.Optimizer, name: str, num_training_steps: int, num_warmup_steps: int = 0
) -> torch.optim.lr_scheduler.LRScheduler:
    """A learning-rate schedule over ``num_training_steps`` optimizer steps, peaking at the optimizer's rate.

    * ``none`` / ``constant``: the base rate throughout (after a linear warmup, if any);
    * ``linear`` / ``cosine``: linear warmup, then linear or cosine decay to 0 (transformers' schedules);
    * ``step``: the base rate, times 0.1 at 50 % and again at 75 % of training (the classic ImageNet recipe);
    * ``onecycle``: up over the warmup (default: the first 25 %), then cosine down to ~0 (Smith & Topin, 2017):
      the ramp acts as warmup and the long descent anneals into a flat minimum. Momentum (SGD's, or Adam's beta1)
      is cycled against the rate where the optimizer has one.

    The schedule is stepped once per optimizer step, after ``optimizer.step()``.
    """
    from transformers import get_scheduler

    if num_training_steps <= 0:
        raise ValueError(f"`num_training_steps` must be positive, got {num_training_steps}.")
    warmup = min(max(num_warmup_steps, 0), num_training_steps)
    if name in ("none", "constant"):
        return get_scheduler("constant_with_warmup" if warmup else "constant", optimizer, num_warmup_steps=warmup)
    if name in ("linear", "cosine"):
        return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=num_training_steps)
    if name == "step":
        milestones = [num_training_steps // 2, (3 * num_training_steps) // 4]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if name == "onecycle":
        if num_training_steps < 4:  # too short for a step up and a step down: keep the rate constant
            return get_scheduler("constant", optimizer)
        ramp_steps = min(max(warmup or round(0.25 * num_training_steps), 2), num_training_steps - 2)
        has_momentum = "betas" in optimizer.defaults or optimizer.defaults.get("momentum", 0) > 0
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=num_training_steps,
            pct_start=ramp_steps / num_training_steps,
            cycle_momentum=has_momentum,
        )
    raise ValueError(f"Unknown learning-rate schedule {name!r}; allowed: {', '.join(LR_SCHEDULERS)}.")


# ---------------------------------------------------------------------------------------------------------------
# Loop state, checkpoints, resume
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class TrainingState:
    """The loop's own counters, checkpointed with the model (``accelerator.register_for_checkpointing(state)``).

    ``steps_per_epoch`` is fixed by the data, ``--batch_size`` and the number of processes; a checkpoint taken with
    another value would resume at the wrong batch. ``total_steps`` is the length of the run, which the learning-rate
    schedule was built for (a resumed OneCycleLR keeps its saved length and fails past it). :meth:`load_state_dict`
    refuses a checkpoint that differs in either.
    """

    steps_per_epoch: int
    total_steps: int
    completed_steps: int = 0
    #: Sum of the logged mean training losses, each times its number of steps (the run's mean is this / steps).
    train_loss_sum: float = 0.0
    best_eval_accuracy: float = -1.0
    best_epoch: float | None = None

    @property
    def epoch(self) -> float:
        """Epochs done, as a fraction (2.5 = halfway through the third), as transformers' logs count them."""
        return round(self.completed_steps / self.steps_per_epoch, 4)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["steps_per_epoch"] != self.steps_per_epoch:
            raise ValueError(
                f"The checkpoint was saved with {state['steps_per_epoch']} steps per epoch, this run has "
                f"{self.steps_per_epoch}: resume with the same data, --batch_size and number of processes."
            )
        if state.get("total_steps", self.total_steps) != self.total_steps:
            raise ValueError(
                f"The checkpoint was saved by a run of {state['total_steps']} steps, this run has {self.total_steps} "
                "(--num_epochs x steps per epoch, or --max_steps): its learning-rate schedule was built for "
                f"{state['total_steps']} steps, so resume with the same --num_epochs and --max_steps."
            )
        for name, value in state.items():
            setattr(self, name, value)


def _checkpoint_number(folder: Path) -> int:
    """accelerate's ``checkpoint_<i>`` folders are ordered by ``i``."""
    return int(re.findall(r"\d+", folder.name)[-1])


def _checkpoint_folders(project_dir: str | os.PathLike) -> list[Path]:
    folder = Path(project_dir) / "checkpoints"
    found = [path for path in folder.glob("checkpoint_*") if path.is_dir() and re.search(r"\d+$", path.name)]
    return sorted(found, key=_checkpoint_number)


def find_last_checkpoint(project_dir: str | os.PathLike) -> Path | None:
    """The newest *complete* checkpoint under ``project_dir/checkpoints`` (see :func:`save_checkpoint`), or None."""
    complete = [path for path in _checkpoint_folders(project_dir) if (path / TRAINER_STATE_NAME).is_file()]
    return complete[-1] if complete else None


def _check_automatic_naming(accelerator: Accelerator) -> None:
    config = accelerator.project_configuration
    if not config.automatic_checkpoint_naming or config.project_dir is None:
        raise ValueError(
            "Checkpoints need Accelerator(project_config=ProjectConfiguration(project_dir=..., "
            "automatic_checkpoint_naming=True)): accelerate then names and prunes them."
        )


def prepare_checkpoint_dir(accelerator: Accelerator, overwrite: bool = False) -> None:
    """For a run that starts from scratch: refuse, or with ``overwrite`` remove, an earlier run's checkpoints.

    accelerate numbers checkpoints from ``checkpoint_0`` in every new process and prunes the lowest numbers first,
    so a new run's checkpoints would mix with the old ones: ``"latest"`` would then pick a stale run, and a save
    onto an existing number fails mid-run. Call it on every process, before any training; with ``overwrite`` the
    main process removes ``checkpoints/`` while the others wait. Not for a resumed run.
    """
    _check_automatic_naming(accelerator)
    project_dir = accelerator.project_configuration.project_dir
    if overwrite:
        if accelerator.is_main_process:
            shutil.rmtree(Path(project_dir) / "checkpoints", ignore_errors=True)
        accelerator.wait_for_everyone()
    elif _checkpoint_folders(project_dir):
        raise ValueError(
            f"{project_dir}/checkpoints holds the checkpoints of an earlier run. Continue it with "
            "--resume_from_checkpoint latest, start over with --overwrite_output_dir (removes them), or choose "
            "another --output_dir."
        )


def save_checkpoint(accelerator: Accelerator, state: TrainingState) -> Path:
    """``accelerator.save_state()`` into the next ``checkpoints/checkpoint_<i>``, then mark it complete.

    With ``ProjectConfiguration(automatic_checkpoint_naming=True, total_limit=N)`` accelerate names the folder and
    removes the oldest beyond ``N``. It writes the files in place, so a process killed mid-save leaves a partial
    folder; :data:`TRAINER_STATE_NAME` (a readable copy of ``state``) is written last, once every process has
    finished its part, and resuming only ever picks folders that have it. Call it on every process.

    Returns:
        The checkpoint folder.
    """
    _check_automatic_naming(accelerator)
    path = Path(accelerator.save_state())
    accelerator.wait_for_everyone()  # every process has written its random states
    if accelerator.is_main_process:
        save_json(path / TRAINER_STATE_NAME, state.state_dict())
    accelerator.wait_for_everyone()
    return path


def resume_from_checkpoint(accelerator: Accelerator, checkpoint: str | os.PathLike) -> Path:
    """Load a checkpoint of :func:`save_checkpoint` (a folder, or ``"latest"``) into everything ``accelerator``
    prepared or has registered for checkpointing; call it on every process, after ``accelerator.prepare``.

    ``"latest"`` is the newest complete checkpoint of this run (``accelerator.project_dir``). Partial folders left by
    a save that was cut short are removed, and the next ``save_state`` is numbered after the checkpoints kept
    (accelerate starts at ``checkpoint_0`` in a new process, and refuses to write into an existing folder).

    Returns:
        The checkpoint folder that was loaded.
    """
    _check_automatic_naming(accelerator)
    project_dir = accelerator.project_configuration.project_dir
    if str(checkpoint) == "latest":
        path = find_last_checkpoint(project_dir)
        if path is None:
            raise ValueError(f"--resume_from_checkpoint latest: no complete checkpoint in {project_dir}/checkpoints.")
    else:
        path = Path(checkpoint)
        if not (path / TRAINER_STATE_NAME).is_file():
            raise ValueError(f"{path} is not a complete checkpoint (it has no {TRAINER_STATE_NAME}).")
    accelerator.load_state(str(path))
    if accelerator.is_main_process:
        for folder in _checkpoint_folders(project_dir):
            if not (folder / TRAINER_STATE_NAME).is_file():
                shutil.rmtree(folder)
    accelerator.wait_for_everyone()
    kept = _checkpoint_folders(project_dir)
    accelerator.project_configuration.iteration = _checkpoint_number(kept[-1]) + 1 if kept else 0
    return path


# ---------------------------------------------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------------------------------------------


class JsonlTracker(GeneralTracker):
    """An accelerate tracker that writes every ``accelerator.log(values, step)`` as one line of a JSON-lines file.

    Pass it with the others, ``Accelerator(log_with=[JsonlTracker(path), "tensorboard"])``: the file needs no
    service and is what tests, plots and ``jq`` read. It also keeps the entries in :attr:`history` and is
    checkpointable (``accelerator.register_for_checkpointing(tracker)``), so a resumed run's file starts with the log
    of the steps before its checkpoint and none of the steps a killed run did after it.

    Only the main process writes the file because accelerate's ``Accelerator.init_trackers`` and ``Accelerator.log``
    run there only. The methods below are not wrapped in ``accelerate.tracking.on_main_process`` (the only thing
    that reads a tracker's ``main_process_only``): called directly, they write from any process.
    """

    name = "jsonl"
    requires_logging_directory = False

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        self.path = Path(path)
        self.history: list[dict[str, Any]] = []

    @property
    def tracker(self) -> list[dict[str, Any]]:
        return self.history

    def start(self) -> None:
        """Write the history so far (empty, or a resumed checkpoint's) over whatever an older run left."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(entry) + "\n" for entry in self.history)
        _write_atomically(self.path, lambda temporary: temporary.write_text(lines, encoding="utf-8"))

    def log(self, values: dict[str, Any], step: int | None = None, **kwargs: Any) -> None:
        from accelerate.utils import listify

        entry = {"step": step, **listify(values)} if step is not None else listify(dict(values))
        self.history.append(entry)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state["history"])


# ---------------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------------


def predict_classes(logits: torch.Tensor) -> torch.Tensor:
    """Class indices from a classification head's logits (batch, num_labels).

    A one-logit head is a binary classifier trained with binary cross-entropy (transformers'
    ``multi_label_classification`` with ``num_labels=1``): class 1 where the logit is positive (sigmoid > 0.5).
    """
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).long()
    return logits.argmax(dim=-1)


def classification_metrics(
    references: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray, num_classes: int
) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1 and the confusion matrix (rows: true class, columns: predicted).

    Macro averages weigh every class the same, so a model that ignores a rare class is seen to; classes absent
    from both references and predictions count as 0 rather than warn (scikit-learn's ``zero_division=0``).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(range(num_classes))
    precision, recall, f1, _ = precision_recall_fscore_support(
        references, predictions, labels=labels, average="macro", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(references, predictions)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        "confusion_matrix": confusion_matrix(references, predictions, labels=labels).tolist(),
    }


# ---------------------------------------------------------------------------------------------------------------
# Files and plots
# ---------------------------------------------------------------------------------------------------------------


def _write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(temporary_path)`` and rename the result onto ``path``, so readers never see half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def save_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (a crash leaves the old file or the new one, never half)."""
    text = json.dumps(data, indent=2) + "\n"
    _write_atomically(Path(path), lambda temporary: temporary.write_text(text, encoding="utf-8"))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, safe in worker processes and CI
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(log_history: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Training and eval loss per step (log scale), and eval accuracy per epoch, side by side, from a log of
    ``{"step", "loss"}`` and ``{"step", "epoch", "eval_loss", "eval_accuracy"}`` entries."""
    plt = _pyplot()
    train = [entry for entry in log_history if "loss" in entry]
    evals = [entry for entry in log_history if "eval_accuracy" in entry]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot([e["step"] for e in train], [e["loss"] for e in train], linewidth=0.8, label="train")
    loss_axis.plot([e["step"] for e in evals], [e["eval_loss"] for e in evals], "o-", label="eval")
    loss_axis.set(xlabel="step", ylabel="loss", title="Loss", yscale="log")
    loss_axis.legend()
    accuracy_axis.plot([e["epoch"] for e in evals], [e["eval_accuracy"] for e in evals], "o-")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", title="Eval accuracy")
    figure.tight_layout()
    _write_atomically(Path(path), lambda temporary: figure.savefig(temporary, format="png", dpi=100))
    plt.close(figure)


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: str | os.PathLike) -> None:
    """Counts of (true class, predicted class), numbers written in the cells up to 20 classes; the off-diagonal
    cells are the mistakes."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    size = max(4.0, 0.45 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    ticks = range(len(class_names))
    axis.set(xticks=ticks, yticks=ticks, xticklabels=class_names, yticklabels=class_names)
    axis.set(xlabel="predicted", ylabel="true", title="Confusion matrix (eval)")
    if len(class_names) <= 20:
        for (row, column), count in np.ndenumerate(matrix):
            color = "white" if count > matrix.max() / 2 else "black"
            axis.text(column, row, str(count), ha="center", va="center", color=color, fontsize=8)
    figure.tight_layout()
    _write_atomically(Path(path), lambda temporary: figure.savefig(temporary, format="png", dpi=100))
    plt.close(figure)


# ---------------------------------------------------------------------------------------------------------------
# Command lines
# ---------------------------------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """An ``argparse`` type: a whole number > 0, or a usage error that names the value."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """An ``argparse`` type: a number > 0, or a usage error that names the value."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


__all__ = [
    "LR_SCHEDULERS",
    "OPTIMIZERS",
    "TRAINER_STATE_NAME",
    "JsonlTracker",
    "TrainingState",
    "classification_metrics",
    "create_optimizer",
    "create_scheduler",
    "find_last_checkpoint",
    "parameter_groups",
    "plot_confusion_matrix",
    "plot_learning_curves",
    "positive_float",
    "positive_int",
    "predict_classes",
    "prepare_checkpoint_dir",
    "resume_from_checkpoint",
    "save_checkpoint",
    "save_json",
]
