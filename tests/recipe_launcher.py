"""Run ``recipes/train_image_classifier.py`` with test instruments wrapped around it, never written into it.

    python tests/recipe_launcher.py [--record DIR] [--fetch_delay SECONDS] -- RECIPE ARGUMENTS ...
    accelerate launch ... tests/recipe_launcher.py --record DIR -- RECIPE ARGUMENTS ...

``--record DIR``: every process writes ``DIR/rank<N>.json`` with the rows of the train split its DataLoader fetched,
in order, and a SHA-256 of its model's final weights: how the DDP test sees that ranks train on disjoint shards
and end with identical weights.

``--fetch_delay S``: every train row takes S seconds longer to fetch, so that a test can kill a run between two
checkpoints. It slows the loop down and changes nothing the loop computes.

Both work from outside: the recipe's ``get_dataloaders`` is wrapped to instrument the train dataset before
``accelerator.prepare`` shards it, and ``Accelerator.prepare`` to keep a handle on the prepared model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState

from hfdl.data import TensorDictDataset
from hfdl.recipes import train_image_classifier as recipe

FETCHED: list[int] = []
PREPARED_MODELS: list[torch.nn.Module] = []


def instrument(record: bool, fetch_delay: float) -> None:
    class InstrumentedDataset(TensorDictDataset):
        def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
            if record:
                FETCHED.append(int(index))
            if fetch_delay:
                time.sleep(fetch_delay)
            return super().__getitem__(index)

    get_dataloaders = recipe.get_dataloaders

    def instrumented_get_dataloaders(*args, **kwargs):
        train_dataloader, eval_dataloader, class_names = get_dataloaders(*args, **kwargs)
        train_dataloader.dataset.__class__ = InstrumentedDataset  # same tensors, same rows, one more step per fetch
        return train_dataloader, eval_dataloader, class_names

    prepare = Accelerator.prepare

    def recording_prepare(self, *args, **kwargs):
        prepared = prepare(self, *args, **kwargs)
        PREPARED_MODELS.extend(obj for obj in prepared if isinstance(obj, torch.nn.Module))
        return prepared

    recipe.get_dataloaders = instrumented_get_dataloaders
    Accelerator.prepare = recording_prepare


def weights_sha256(model: torch.nn.Module) -> str:
    model = getattr(model, "module", model)  # DistributedDataParallel wraps the model
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, default=None)
    parser.add_argument("--fetch_delay", type=float, default=0.0)
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    instrument(record=args.record is not None, fetch_delay=args.fetch_delay)
    recipe.main(argv[split + 1 :])
    if args.record is not None:
        state = PartialState()
        args.record.mkdir(parents=True, exist_ok=True)
        report = {
            "process_index": state.process_index,
            "num_processes": state.num_processes,
            "fetched": FETCHED,
            "weights_sha256": weights_sha256(PREPARED_MODELS[0]),
        }
        (args.record / f"rank{state.process_index}.json").write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    main()
