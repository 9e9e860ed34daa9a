"""ResNet and VGG backbones, as transformers' ``AutoBackbone`` users take them (detection / segmentation heads).

The contract suite already runs the backbone heads through round trips, remote code, LoRA and bad inputs; this file
checks what is backbone-specific: stage selection by index or name, the maps' channels and strides, equality with
the base model's hidden states, and loading a classifier checkpoint into a backbone.
"""

from __future__ import annotations

import pytest
import torch
from conftest import auto_from_pretrained
from transformers import AutoBackbone, AutoConfig

import hfdl  # noqa: F401 - registers the Auto classes
from hfdl.registry import REGISTRY

#: Small configs of each backbone: basic and bottleneck ResNets (ImageNet and deep stems) and VGG with batch norm.
CONFIGS = {
    "resnet-basic": ("resnet", {"image_size": 32, "stage_depths": [1, 1, 1], "stage_channels": [4, 8, 16]}),
    "resnet-bottleneck-deep": (
        "resnet",
        {**REGISTRY["resnet"].test_config, "image_size": 32, "stage_depths": [1, 1, 1], "stage_channels": [4, 8, 8]},
    ),
    "vgg-bn": (
        "vgg",
        REGISTRY["vgg"].test_config | {"image_size": 32, "stage_channels": [4, 8, 8], "stage_depths": [1, 2, 1]},
    ),
}


def build_classifier(arch: str, overrides: dict) -> torch.nn.Module:
    spec = REGISTRY[arch]
    torch.manual_seed(0)
    model = spec.task("image-classification").model_class(spec.config_class(**{**overrides, "num_labels": 3}))
    # Non-trivial batch norm statistics, so that a map taken before or after the wrong layer shows.
    model.train()
    with torch.no_grad():
        model(pixel_values=torch.randn(4, model.config.num_channels, overrides["image_size"], overrides["image_size"]))
    return model.eval()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_auto_backbone_from_a_classifier_checkpoint(tmp_path, name):
    arch, overrides = CONFIGS[name]
    classifier = build_classifier(arch, overrides)
    classifier.save_pretrained(tmp_path)
    config = classifier.config
    num_stages = len(config.stage_names)
    out_indices = list(range(1, num_stages))  # every stage but the first, as an FPN takes them

    backbone = auto_from_pretrained(AutoBackbone, tmp_path, out_indices=out_indices).eval()
    assert type(backbone).__name__ == f"{REGISTRY[arch].config_class.__name__.removesuffix('Config')}Backbone"
    assert backbone.config.out_indices == out_indices
    assert backbone.out_features == [config.stage_names[i] for i in out_indices]

    side = overrides["image_size"]
    pixel_values = torch.randn(2, config.num_channels, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        maps = backbone(pixel_values).feature_maps
        hidden_states = classifier(pixel_values, output_hidden_states=True).hidden_states
    assert len(maps) == len(out_indices) == len(backbone.channels) == len(backbone.strides)
    for feature_map, channels, stride, index in zip(maps, backbone.channels, backbone.strides, out_indices):
        assert feature_map.shape == (2, channels, side // stride, side // stride)
        # The backbone's maps are the classifier's own stage outputs: the checkpoint loaded into the right layers.
        torch.testing.assert_close(feature_map, hidden_states[index], rtol=0, atol=0)


def test_stage_selection_by_name_negative_index_and_round_trip(tmp_path):
    config = REGISTRY["resnet"].make_config("resnet18")
    assert config.stage_names == ["stem", "stage1", "stage2", "stage3", "stage4"]
    assert config.out_features == ["stage4"] and config.out_indices == [4]  # transformers' default: the last stage
    assert (config.hidden_channels, config.reductions) == ([64, 64, 128, 256, 512], [4, 4, 8, 16, 32])

    config.out_features = ["stage2", "stage4"]
    assert config.out_indices == [2, 4]
    config.out_indices = [-3, -1]
    assert config.out_features == ["stage2", "stage4"]
    config.save_pretrained(tmp_path)
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert reloaded.out_indices == [2, 4] and reloaded.out_features == ["stage2", "stage4"]
    assert AutoConfig.from_pretrained(tmp_path, out_features=["stem"]).out_indices == [0]

    vgg = REGISTRY["vgg"].make_config("vgg16", out_indices=[0, 2, 4])
    assert vgg.out_features == ["stage1", "stage3", "stage5"] and vgg.reductions == [2, 4, 8, 16, 32]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"out_indices": [7]}, "is not a stage index; the stages are 0: stem"),
        ({"out_indices": [3, 1]}, "distinct and in stage order"),
        ({"out_indices": 2}, "non-empty list"),
        ({"out_features": ["layer4"]}, "stage names among"),
        ({"out_indices": [1], "out_features": ["stage2"]}, "name different stages"),
    ],
)
def test_bad_stage_selections_name_the_stages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        REGISTRY["resnet"].make_config("resnet18", **kwargs)


def test_vgg_backbone_has_no_fully_connected_layers_and_stops_early():
    spec = REGISTRY["vgg"]
    backbone = spec.task("backbone").model_class(spec.make_config("vgg16", out_indices=[1])).eval()
    # 14.7M of VGG-16's 138.4M weights: the convolutions only.
    assert backbone.num_parameters() == 14_714_688
    calls = []
    for stage in backbone.vgg.stages:
        stage.register_forward_hook(lambda module, args, output: calls.append(output.shape))
    with torch.no_grad():
        (feature_map,) = backbone(torch.randn(1, 3, 224, 224)).feature_maps
    assert feature_map.shape == (1, 128, 56, 56) and len(calls) == 2  # stages 3-5 never ran
