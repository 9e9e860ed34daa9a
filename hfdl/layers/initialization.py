"""Weight initialisation schemes of the course (ch. 4): zeros, random normal, Xavier/Glorot and He/Kaiming.

``transformers`` 5 ships guarded init functions (``transformers.initialization``) that leave weights loaded from a
checkpoint untouched when ``_init_weights`` runs again after loading; transformers 4 does not have them, and remote
code must run on both, so we fall back to ``torch.nn.init``.
"""

from __future__ import annotations

import torch
from torch import nn

try:  # transformers >= 5
    from transformers import initialization as init
except ImportError:  # transformers 4.x: plain torch initialisers
    from torch.nn import init

INITIALIZERS = ("zeros", "normal", "xavier_uniform", "kaiming_normal")


def initialize_weight(weight: torch.Tensor, scheme: str, std: float = 0.02, nonlinearity: str = "relu") -> None:
    """Initialise a Linear/Conv weight in place with one of :data:`INITIALIZERS`.

    ``zeros`` is there to show why it fails (every unit of a layer gets the same gradient, the symmetry is never
    broken); Xavier keeps the variance of tanh/sigmoid activations constant across layers (Glorot & Bengio, 2010);
    He doubles it to make up for ReLU zeroing half the inputs (He et al., 2015).
    """
    if scheme == "zeros":
        init.zeros_(weight)
    elif scheme == "normal":
        init.normal_(weight, mean=0.0, std=std)
    elif scheme == "xavier_uniform":
        init.xavier_uniform_(weight)
    elif scheme == "kaiming_normal":
        # torch's gain table knows relu and leaky_relu; other activations get the plain sqrt(2) ReLU gain.
        mode_nonlinearity = nonlinearity if nonlinearity in ("relu", "leaky_relu") else "relu"
        init.kaiming_normal_(weight, nonlinearity=mode_nonlinearity)
    else:
        raise ValueError(f"Unknown initializer {scheme!r}; allowed: {', '.join(INITIALIZERS)}.")


def initialize_module(module: nn.Module, scheme: str, std: float = 0.02, nonlinearity: str = "relu") -> None:
    """Initialise Linear and Conv layers with ``scheme``, biases with zeros; leave other modules alone."""
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
        initialize_weight(module.weight, scheme, std=std, nonlinearity=nonlinearity)
        if module.bias is not None:
            init.zeros_(module.bias)
