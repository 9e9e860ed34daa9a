"""Shared fixtures: offline environment, registry parametrization and tiny models."""

from __future__ import annotations

import os
from pathlib import Path

# Before anything imports huggingface_hub/datasets/gradio: tests never reach the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

import hfdl  # noqa: E402
from hfdl.registry import REGISTRY  # noqa: E402
from hfdl.specs import ArchitectureSpec, TaskSpec  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# Under pytest-xdist (`make test` runs two workers) each worker gets its share of the cores: two workers with two
# threads each on two cores would oversubscribe them, which slows tiny tensor ops by an order of magnitude.
if os.environ.get("PYTEST_XDIST_WORKER"):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def pytest_collection_modifyitems(config, items) -> None:
    """Run the slow tests first (stable order otherwise): with several workers, a long test started last would
    leave the other workers idle while it finishes."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def auto_from_pretrained(auto_class, source, **kwargs):
    """``auto_class.from_pretrained(source)``, but around a transformers 5 bug for ``AutoBackbone``.

    transformers 5's ``AutoBackbone.from_pretrained`` first asks the Hub whether ``source`` is a repo (to route timm
    names to its timm wrapper): that rejects any absolute local path and needs the network for anything else, so it
    fails on local folders and offline. The generic Auto loader it then calls for real repos is called directly
    here. transformers 4.57 has no such check.
    """
    from transformers import AutoBackbone
    from transformers.models.auto.auto_factory import _BaseAutoModelClass

    if auto_class is AutoBackbone:
        return _BaseAutoModelClass.from_pretrained.__func__(auto_class, source, **kwargs)
    return auto_class.from_pretrained(source, **kwargs)


def flat(value) -> torch.Tensor:
    """A main output as one tensor: a backbone's tuple of feature maps becomes (batch, n), flattened and concatenated;
    a tensor is returned as it is."""
    if isinstance(value, (tuple, list)):
        return torch.cat([item.flatten(1) for item in value], dim=1)
    return value


#: Every (architecture, head) pair of the registry: a new architecture is tested the day it is registered.
ARCH_TASKS = [
    pytest.param(spec, task, id=f"{spec.name}-{task.task}") for spec in REGISTRY.values() for task in spec.tasks
]
#: The pairs that have a transformers Auto class (and so can be Hub remote code).
AUTO_ARCH_TASKS = [p for p in ARCH_TASKS if p.values[1].auto_class is not None]
ARCHITECTURES = [pytest.param(spec, id=spec.name) for spec in REGISTRY.values()]


def build_model(spec: ArchitectureSpec, task: TaskSpec, seed: int = 0, **overrides) -> torch.nn.Module:
    """A tiny, seeded model of ``task``'s class from the architecture's test config."""
    torch.manual_seed(seed)
    config = spec.config_class(**{**spec.test_config, **overrides})
    return task.model_class(config).eval()


def example_inputs(model: torch.nn.Module, task: TaskSpec, batch_size: int = 3, seed: int = 1) -> dict:
    """Valid seeded inputs for ``model`` as its task spec describes them."""
    return task.make_inputs(model.config, batch_size=batch_size, seed=seed)


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    """Environment for subprocesses: offline, an empty HF_HOME, and no way to reach the repo's hfdl by accident."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    env.pop("PYTHONPATH", None)
    return env


__all__ = ["hfdl"]
