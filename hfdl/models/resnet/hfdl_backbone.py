"""What hfdl backbones share: which stages a backbone returns (``out_indices`` / ``out_features``), and what it
says about their maps (``channels``, ``strides``).

transformers' ``AutoBackbone`` convention: a backbone config names its stages (``stage_names``, e.g. ``stem``,
``stage1``, ...) and selects the ones the backbone returns by index or by name, ``AutoBackbone.from_pretrained(
folder, out_indices=[1, 2, 3])``; the backbone returns ``BackboneOutput(feature_maps=...)`` and says each map's
``channels``. transformers keeps its helpers for this in a module that moved between 4.x and 5.x, so remote code
that must load on both carries this small version instead. It is copied byte for byte into the model folders that
define a backbone (``python -m hfdl.tools.check_copies``); edit it here only.
"""

from __future__ import annotations

from typing import Any


class StageSelectionMixin:
    """Config mixin: ``out_indices`` and ``out_features`` kept aligned with each other and with ``stage_names``.

    Either may be set (in ``__init__``, by ``from_pretrained(..., out_indices=...)``, or later); the other follows.
    Indices may be negative (``-1`` is the last stage) and are stored non-negative. The default is the last stage,
    as in transformers.
    """

    stage_names: list[str]

    @property
    def out_indices(self) -> list[int]:
        return list(self._out_indices)

    @out_indices.setter
    def out_indices(self, indices: Any) -> None:
        names = self.stage_names
        if indices is None:
            indices = [len(names) - 1]
        if isinstance(indices, int) or not isinstance(indices, (list, tuple)) or not indices:
            raise ValueError(f"`out_indices` must be a non-empty list of stage indices, got {indices!r}.")
        resolved = []
        for index in indices:
            if isinstance(index, bool) or not isinstance(index, int) or not -len(names) <= index < len(names):
                raise ValueError(
                    f"`out_indices` entry {index!r} is not a stage index; the stages are "
                    f"{', '.join(f'{i}: {name}' for i, name in enumerate(names))} (negative indices count from the end)."
                )
            resolved.append(index % len(names))
        if resolved != sorted(set(resolved)):
            raise ValueError(f"`out_indices` must be distinct and in stage order, got {list(indices)}.")
        self._out_indices = resolved

    @property
    def out_features(self) -> list[str]:
        return [self.stage_names[index] for index in self._out_indices]

    @out_features.setter
    def out_features(self, names: Any) -> None:
        if names is None:
            self.out_indices = None
            return
        if not isinstance(names, (list, tuple)) or any(name not in self.stage_names for name in names):
            raise ValueError(f"`out_features` must be stage names among {self.stage_names}, got {names!r}.")
        self.out_indices = [self.stage_names.index(name) for name in names]

    def set_stage_selection(self, out_indices: Any = None, out_features: Any = None) -> None:
        """Set the selection from ``__init__``'s arguments: both may be given only if they agree."""
        self.out_indices = out_indices
        if out_features is not None:
            chosen = self.out_indices
            self.out_features = out_features
            if out_indices is not None and self.out_indices != chosen:
                raise ValueError(
                    f"`out_indices`={list(out_indices)} and `out_features`={list(out_features)} name different stages."
                )

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output.pop("_out_indices", None)
        output["out_indices"] = self.out_indices
        return output


class StageFeaturesMixin:
    """Model mixin of a backbone: what transformers' backbone users read about the returned maps.

    The config describes every stage (``hidden_channels``: channels of each stage's output; ``reductions``: how much
    smaller than the input it is); these properties pick the selected ones.
    """

    config: Any

    @property
    def out_features(self) -> list[str]:
        return self.config.out_features

    @property
    def channels(self) -> list[int]:
        """Channels of each returned feature map."""
        return [self.config.hidden_channels[index] for index in self.config.out_indices]

    @property
    def strides(self) -> list[int]:
        """How much smaller than the input each returned feature map is."""
        return [self.config.reductions[index] for index in self.config.out_indices]
