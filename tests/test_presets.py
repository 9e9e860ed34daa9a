"""Every preset's head, pinned: its parameter count and a seeded output slice.

A silent architecture change (a layer resized, an activation swapped, an init scheme changed) keeps every shape
test green; it cannot keep these numbers. A new preset or head fails here until its values are pinned, which is
the point: pin them from a run you have checked (seed 0 weights, ``task.make_inputs(config, 2, seed=0)``).
"""

from __future__ import annotations

import pytest
import torch

from hfdl.registry import REGISTRY

#: (preset, task) -> (number of parameters, first four values of the first example's main output).
PINNED: dict[tuple[str, str], tuple[int, list[float]]] = {
    ("lenet5-1998", "image-classification"): (61_706, [0.0649, -0.0235, -0.1067, -0.0506]),
    ("lenet5-1998", "image-feature-extraction"): (60_856, [0.1146, 0.1506, -0.0314, -0.1527]),
    ("lenet5-modern", "image-classification"): (61_706, [-4.2282, -0.7626, -2.9388, 2.2936]),
    ("lenet5-modern", "image-feature-extraction"): (60_856, [0.0, 3.2326, 0.0, 2.3325]),
    ("mlp-digits", "image-classification"): (17_226, [0.6189, -0.8791, 0.3821, -0.2528]),
    ("mlp-digits", "tabular-regression"): (17_226, [0.6189, -0.8791, 0.3821, -0.2528]),
    ("mlp-digits", "feature-extraction"): (16_576, [0.0, 0.0, 0.0, 1.0559]),
    ("mlp-mnist", "image-classification"): (235_146, [-1.2352, 1.3972, 0.5079, -0.7213]),
    ("mlp-mnist", "tabular-regression"): (235_146, [-1.2352, 1.3972, 0.5079, -0.7213]),
    ("mlp-mnist", "feature-extraction"): (233_856, [0.0, 1.6512, 0.0, 0.0]),
}

CASES = [
    pytest.param(spec, preset, task, id=f"{preset}-{task.task}")
    for spec in REGISTRY.values()
    for preset in spec.presets
    for task in spec.tasks
]


def test_every_preset_and_head_is_pinned():
    registered = {(preset, task.task) for _, preset, task in (case.values for case in CASES)}
    assert registered == set(PINNED), f"unpinned: {registered - set(PINNED)}; stale: {set(PINNED) - registered}"


@pytest.mark.parametrize(("spec", "preset", "task"), CASES)
def test_preset_parameter_count_and_seeded_output(spec, preset, task):
    num_parameters, expected = PINNED[(preset, task.task)]
    torch.manual_seed(0)
    model = task.model_class(spec.make_config(preset)).eval()
    assert model.num_parameters() == num_parameters
    with torch.no_grad():
        output = model(**task.make_inputs(model.config, batch_size=2, seed=0))[task.main_output]
    torch.testing.assert_close(output[0, :4], torch.tensor(expected), rtol=0, atol=1e-4)


def test_lenet5_1998_has_the_papers_parameter_count():
    """C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850 = 61,706 (with C3 fully connected, as here)."""
    model = REGISTRY["lenet5"].task().model_class(REGISTRY["lenet5"].make_config("lenet5-1998"))
    sizes = {name: sum(p.numel() for p in module.parameters()) for name, module in model.lenet5.named_children()}
    assert sizes["stage1"] == 6 * (5 * 5 + 1) and sizes["stage2"] == 16 * (6 * 5 * 5 + 1)
    assert sizes["c5"] == 120 * (16 * 5 * 5 + 1) and sizes["f6"] == 84 * (120 + 1)
    assert sum(p.numel() for p in model.classifier.parameters()) == 10 * (84 + 1)
