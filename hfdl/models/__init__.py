"""One folder per architecture; each folder stands alone (see hfdl.layers for why) and declares its
``ARCHITECTURE`` (an :class:`hfdl.specs.ArchitectureSpec`) in its ``__init__.py``.

:func:`discover_architectures` finds the folders, so adding an architecture never means editing a list here.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..specs import ArchitectureSpec


def discover_architectures() -> list[ArchitectureSpec]:
    """Import every model folder of this package and return their ``ARCHITECTURE``s, in folder-name order."""
    specs = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if not module_info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        spec = getattr(module, "ARCHITECTURE", None)
        if not isinstance(spec, ArchitectureSpec):
            raise TypeError(f"{module.__name__} must define ARCHITECTURE = ArchitectureSpec(...).")
        specs.append(spec)
    return specs
