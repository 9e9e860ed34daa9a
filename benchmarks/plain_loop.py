"""The reference a recipe is measured against: the shortest correct PyTorch training loop.

No accelerate, no DataLoader, no logging: shuffle the indices, slice the preprocessed tensors, step. Whatever the
recipe costs on top of this (data loading, progress bars, checkpoints, metrics) shows up as the ratio of the two
times per epoch in ``bench_mnist.py``.
"""

from __future__ import annotations

import time

import torch


def train_plain(
    model: torch.nn.Module,
    train: dict[str, torch.Tensor],
    test: dict[str, torch.Tensor],
    num_epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> dict:
    """Train ``model`` with Adam (constant learning rate) on ``train`` and return its test accuracy per epoch and the
    seconds each epoch's training took (evaluation excluded, as in the recipe's ``train_epoch_seconds``)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    pixel_values, labels = train["pixel_values"], train["labels"]
    num_samples = len(labels)
    epoch_seconds, accuracies = [], []
    for _ in range(num_epochs):
        model.train()
        start = time.perf_counter()
        permutation = torch.randperm(num_samples, generator=generator)
        for first in range(0, num_samples, batch_size):
            batch = permutation[first : first + batch_size]
            loss = model(pixel_values=pixel_values[batch], labels=labels[batch]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        epoch_seconds.append(time.perf_counter() - start)
        accuracies.append(accuracy(model, test))
    return {"epoch_seconds": epoch_seconds, "accuracies": accuracies}


@torch.no_grad()
def accuracy(model: torch.nn.Module, test: dict[str, torch.Tensor], batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for first in range(0, len(test["labels"]), batch_size):
        logits = model(pixel_values=test["pixel_values"][first : first + batch_size]).logits
        correct += int((logits.argmax(dim=-1) == test["labels"][first : first + batch_size]).sum())
    return correct / len(test["labels"])
