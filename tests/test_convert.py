"""``hfdl convert``: torchvision and timm checkpoints become hfdl Hub folders with the source's logits.

The source networks get random weights *and* random batch norm statistics and affine parameters: with torchvision's
defaults (mean 0, variance 1, scale 1, shift 0) a batch norm mapped onto the wrong layer, or left out, would change
nothing and the test would prove nothing.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoModelForImageClassification

import hfdl  # noqa: F401 - registers the Auto classes
from hfdl import cli
from hfdl.convert import SOURCE_MODELS, convert_checkpoint, convert_state_dict, find_source_model, load_checkpoint

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

#: The issue's bar: converted logits within 1e-5 of the source's.
MAX_ABS_DIFF = 1e-5


def build_source(source: str, name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if source == "torchvision":
        model = torchvision.models.get_model(name, weights=None)
    else:
        model = timm.create_model(name, pretrained=False)
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
    return model.eval()


def save_checkpoint(model: torch.nn.Module, path: Path) -> Path:
    state_dict = {key: value.contiguous() for key, value in model.state_dict().items()}
    if path.suffix == ".safetensors":
        save_file(state_dict, path)
    else:
        torch.save(state_dict, path)
    return path


def assert_same_logits(source_model: torch.nn.Module, folder: Path) -> AutoModelForImageClassification:
    converted = AutoModelForImageClassification.from_pretrained(folder).eval()
    pixel_values = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = source_model(pixel_values)
        got = converted(pixel_values).logits
    assert (got - expected).abs().max().item() <= MAX_ABS_DIFF
    assert expected.abs().max().item() > 1e-2  # the comparison is not between two near-zero outputs
    return converted


CASES = [
    pytest.param("torchvision", "alexnet", ".pth", id="torchvision-alexnet"),
    pytest.param("torchvision", "resnet18", ".safetensors", id="torchvision-resnet18"),
    pytest.param("timm", "resnet50d", ".pth", id="timm-resnet50d"),
    pytest.param("timm", "vgg11_bn", ".safetensors", id="timm-vgg11_bn"),
    pytest.param("torchvision", "vgg11", ".pth", id="torchvision-vgg11", marks=pytest.mark.slow),
    pytest.param("torchvision", "resnet50", ".pth", id="torchvision-resnet50", marks=pytest.mark.slow),
    pytest.param("timm", "resnet34", ".safetensors", id="timm-resnet34", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("source", "name", "suffix"), CASES)
def test_converted_folder_gives_the_source_logits(tmp_path, source, name, suffix):
    source_model = build_source(source, name)
    checkpoint = save_checkpoint(source_model, tmp_path / f"weights{suffix}")
    folder = convert_checkpoint(source, name, checkpoint, tmp_path / "converted")
    converted = assert_same_logits(source_model, folder)
    assert (
        converted.config.model_type
        == f"hfdl-{find_source_model(source, name).preset.split('-')[0].rstrip('0123456789')}"
    )
    # ImageNet class names come from the source library's offline metadata.
    assert converted.config.num_labels == 1000 and "goldfish" in converted.config.id2label[1]
    assert (folder / "preprocessor_config.json").is_file() and (folder / "README.md").is_file()
    assert not list(tmp_path.glob(".*convert*"))  # no staging folder left behind


def test_cli_converts_and_reports_user_errors_in_one_line(tmp_path, capsys):
    source_model = build_source("torchvision", "resnet18")
    checkpoint = save_checkpoint(source_model, tmp_path / "resnet18.pth")
    assert cli.main(["convert", "torchvision", "resnet18", "--checkpoint", str(checkpoint), str(tmp_path / "out")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert_same_logits(source_model, tmp_path / "out")
    capsys.readouterr()  # loading prints progress bars on stderr

    # An existing, non-empty output folder is left alone without --overwrite, and replaced with it.
    argv = ["convert", "torchvision", "resnet18", "--checkpoint", str(checkpoint), str(tmp_path / "out")]
    assert cli.main(argv) == 1
    error = capsys.readouterr().err
    assert error.startswith("hfdl: error:") and "--overwrite" in error and error.count("\n") == 1
    assert cli.main([*argv, "--overwrite"]) == 0

    # The checkpoint of one network given as another: the error names what is missing.
    assert cli.main(["convert", "torchvision", "resnet34", "--checkpoint", str(checkpoint), str(tmp_path / "x")]) == 1
    error = capsys.readouterr().err
    assert "missing: resnet.stages.0.blocks.2.conv1.weight" in error and "resnet34" in error
    assert not (tmp_path / "x").exists()


def test_a_fine_tuned_checkpoint_keeps_its_classes_and_channels():
    """num_labels and num_channels are read off the checkpoint (a 10-class, grayscale ResNet-18)."""
    torch.manual_seed(0)
    source_model = torchvision.models.resnet18(num_classes=10)
    source_model.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    source_model.eval()
    model = convert_state_dict("torchvision", "resnet18", source_model.state_dict())
    assert (model.config.num_labels, model.config.num_channels) == (10, 1)
    pixel_values = torch.randn(2, 1, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values).logits, source_model(pixel_values), atol=MAX_ABS_DIFF, rtol=0)


def test_every_listed_source_model_maps_onto_its_preset_without_gaps():
    """Key tables alone (meta device: no memory, no init): every source tensor lands on a same-shaped hfdl one."""
    for source, name in SOURCE_MODELS:
        with torch.device("meta"):
            if source == "torchvision":
                source_model = torchvision.models.get_model(name, weights=None)
            else:
                source_model = timm.create_model(name, pretrained=False)
            model = convert_state_dict(source, name, source_model.state_dict())
        assert model.config.num_labels == 1000, (source, name)
        assert model.num_parameters() == sum(p.numel() for p in source_model.parameters()), (source, name)


class NotATensor:
    """Anything a pickle could carry besides tensors; weights_only loading must refuse it."""


def test_checkpoints_are_never_unpickled_beyond_tensors(tmp_path):
    path = tmp_path / "evil.pth"
    with path.open("wb") as handle:
        pickle.dump({"conv1.weight": torch.zeros(1), "payload": NotATensor()}, handle)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_checkpoint(path)

    truncated = tmp_path / "truncated.safetensors"
    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(ValueError, match="safetensors"):
        load_checkpoint(truncated)

    nested = tmp_path / "trainer.pth"
    torch.save({"state_dict": {"module.fc.weight": torch.ones(2, 2)}, "epoch": 3}, nested)
    assert list(load_checkpoint(nested)) == ["fc.weight"]  # unwrapped, DDP prefix removed


def test_unknown_sources_and_networks_are_named():
    with pytest.raises(ValueError, match="allowed: torchvision, timm"):
        find_source_model("keras", "resnet18")
    with pytest.raises(ValueError, match="cannot convert timm model 'alexnet'.*resnet50d"):
        find_source_model("timm", "alexnet")
    assert find_source_model("torchvision", "vgg16-bn").name == "vgg16_bn"  # hfdl preset names work too
