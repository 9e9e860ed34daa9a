"""hfdl's CNN presets as timm models: registration, timm's model API, features, data config and training.

Fast: the smallest presets (LeNet-5, AlexNet-small, ResNet-20) and VGG-11 shrunk through config overrides, on 32 px.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config
from timm.optim import create_optimizer_v2
from transformers import AutoModelForImageClassification

from hfdl.integrations.timm import (
    CNN_ARCHITECTURES,
    HfdlTimmModel,
    preset_from_timm_name,
    register_timm_models,
    timm_model_name,
)
from hfdl.registry import REGISTRY

#: (timm name, extra create_model arguments, side of each feature level's maps on a 32 px input). The sides are
#: worked out by hand from the architectures: LeNet-5's unpadded 5x5 convolutions (32 -> 28 -> 14 -> 10 -> 5),
#: AlexNet-small's 3x3/2 overlapping poolings (32 -> 15 -> 7 -> 3), ResNet-20's stride-1 stem, VGG's 2x2 poolings.
CASES = [
    pytest.param("hfdl_lenet5_modern", {}, [14, 5], id="lenet5"),
    pytest.param("hfdl_alexnet_small", {}, [15, 7, 7, 7, 3], id="alexnet"),
    pytest.param("hfdl_resnet20_cifar", {}, [32, 32, 16, 8], id="resnet"),
    pytest.param(
        "hfdl_vgg11", {"img_size": 32, "pooled_size": 1, "hidden_sizes": [32, 16]}, [16, 8, 4, 2, 1], id="vgg"
    ),
]


def create(name: str, extra: dict, seed: int = 0, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model(name, **{**extra, **kwargs}).eval()


def images(model: torch.nn.Module, batch_size: int = 2, seed: int = 1) -> torch.Tensor:
    channels, height, width = resolve_data_config(model=model)["input_size"]
    return torch.randn(batch_size, channels, height, width, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------------------------- registration
def test_every_cnn_preset_is_registered_with_its_pretrained_cfg():
    presets = [preset for name in ("lenet5", "alexnet", "vgg", "resnet") for preset in REGISTRY[name].presets]
    assert set(CNN_ARCHITECTURES) == {"lenet5", "alexnet", "vgg", "resnet"}
    assert sorted(timm.list_models("hfdl_*")) == sorted(timm_model_name(preset) for preset in presets)
    assert timm.list_models("hfdl_*", pretrained=True) == []  # no weights are claimed
    assert timm_model_name("resnet50-d") == "hfdl_resnet50_d"
    for preset in presets:
        name = timm_model_name(preset)
        assert preset_from_timm_name(name) == preset
        spec = next(spec for spec in REGISTRY.values() if preset in spec.presets)
        config = spec.make_config(preset)
        cfg = timm.models.get_pretrained_cfg(name).to_dict()
        assert cfg["input_size"] == (config.num_channels, config.image_size, config.image_size)
        assert cfg["num_classes"] == config.num_labels
        assert cfg["fixed_input_size"] is True
        assert cfg["interpolation"] == "bilinear" and cfg["crop_pct"] == 1.0
        assert len(cfg["mean"]) == len(cfg["std"]) == config.num_channels
        assert cfg["classifier"] == "hf_model.classifier"
        assert cfg["first_conv"].startswith("hf_model.") and cfg["first_conv"].endswith(".conv")
    rgb = timm.models.get_pretrained_cfg("hfdl_resnet18").to_dict()
    assert rgb["mean"] == (0.485, 0.456, 0.406) and rgb["std"] == (0.229, 0.224, 0.225)
    with pytest.raises(ValueError, match="not an hfdl timm model"):
        preset_from_timm_name("resnet18")


def test_registration_is_idempotent():
    before = timm.list_models("hfdl_*")
    entrypoint = timm.models.model_entrypoint("hfdl_resnet18")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # timm warns when a name is registered twice
        names = register_timm_models()
    assert sorted(names) == sorted(before) == sorted(timm.list_models("hfdl_*"))
    assert timm.models.model_entrypoint("hfdl_resnet18") is entrypoint


def test_first_conv_and_classifier_paths_name_real_modules():
    model = timm.create_model("hfdl_resnet20_cifar")
    first_conv = model.get_submodule(model.pretrained_cfg["first_conv"])
    assert isinstance(first_conv, torch.nn.Conv2d) and first_conv.in_channels == 3
    assert model.get_submodule(model.pretrained_cfg["classifier"]) is model.get_classifier()
    for info in model.feature_info:
        model.get_submodule(info["module"])  # raises if the path is wrong


# --------------------------------------------------------------------------------------------- model API
@pytest.mark.parametrize(("name", "extra", "sides"), CASES)
def test_create_model_maps_timm_arguments_onto_the_hfdl_config(name, extra, sides):
    model = create(name, extra, num_classes=7, in_chans=1)
    config = model.hf_model.config
    assert (config.num_labels, config.num_channels, config.image_size) == (7, 1, 32)
    assert (model.num_classes, model.in_chans) == (7, 1)
    assert len(config.id2label) == 7
    x = images(model)
    assert x.shape == (2, 1, 32, 32)
    assert model(x).shape == (2, 7)
    assert model.pretrained_cfg["input_size"] == (1, 32, 32)
    assert model.pretrained_cfg["num_classes"] == 7


@pytest.mark.parametrize(("name", "extra", "sides"), CASES)
def test_forward_is_head_of_features_and_equals_the_hfdl_model(name, extra, sides):
    model = create(name, extra, num_classes=7, in_chans=1)
    x = images(model)
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model(x)
        hf_logits = model.hf_model(pixel_values=x).logits
        pre_logits = model.forward_head(features, pre_logits=True)
    assert features.shape == (2, model.num_features, sides[-1], sides[-1])
    torch.testing.assert_close(model.forward_head(features), logits, rtol=0, atol=0)
    torch.testing.assert_close(logits, hf_logits, rtol=0, atol=0)
    assert pre_logits.shape == (2, model.head_hidden_size)
    torch.testing.assert_close(model.get_classifier()(pre_logits), logits, rtol=0, atol=0)
    if name.startswith("hfdl_resnet"):  # pooled last maps: pre-logits width is the feature maps' channels
        assert model.head_hidden_size == model.num_features == features.shape[1]
        torch.testing.assert_close(pre_logits, features.mean(dim=(2, 3)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("name", "extra", "sides"), CASES)
def test_reset_classifier_follows_into_the_hfdl_config(name, extra, sides):
    model = create(name, extra, num_classes=7, in_chans=1)
    x = images(model)
    model.reset_classifier(5)
    classifier = model.get_classifier()
    assert isinstance(classifier, torch.nn.Linear)
    assert (classifier.in_features, classifier.out_features) == (model.head_hidden_size, 5)
    assert model.num_classes == model.hf_model.config.num_labels == 5
    assert len(model.hf_model.config.id2label) == 5
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (2, 5)
        torch.testing.assert_close(logits, model.hf_model(pixel_values=x).logits, rtol=0, atol=0)
        model.reset_classifier(0)
        assert isinstance(model.get_classifier(), torch.nn.Identity) and model.num_classes == 0
        pooled = model(x)
        torch.testing.assert_close(pooled, model.forward_head(model.forward_features(x), pre_logits=True))
    assert pooled.shape == (2, model.head_hidden_size)
    with pytest.raises(ValueError, match="global_pool"):
        model.reset_classifier(3, global_pool="max")


def test_num_classes_zero_builds_a_feature_model():
    model = create("hfdl_resnet20_cifar", {}, num_classes=0)
    assert model.num_classes == 0 and isinstance(model.get_classifier(), torch.nn.Identity)
    assert model(images(model)).shape == (2, 64)


# --------------------------------------------------------------------------------------------- features
@pytest.mark.parametrize(("name", "extra", "sides"), CASES)
def test_features_only_matches_feature_info_and_forward_intermediates(name, extra, sides):
    full = create(name, extra, in_chans=1)
    levels = len(full.feature_info)
    assert levels == len(sides)
    out_indices = tuple(sorted({1, levels - 1}))  # (1,) for LeNet-5's two levels
    features = create(name, extra, in_chans=1, features_only=True, out_indices=out_indices)
    # The feature model shares the full model's weights up to its last level and has nothing after it.
    missing, _ = features.model.load_state_dict(full.state_dict(), strict=False)
    assert missing == []
    x = images(full)
    with torch.no_grad():
        maps = features(x)
        final, intermediates = full.forward_intermediates(x)
        last_two = full.forward_intermediates(x, indices=2, intermediates_only=True)
        early = full.forward_intermediates(x, indices=[0], stop_early=True)
        full_features = full.forward_features(x)
        logits = full(x)
    assert features.feature_info.channels() == [full.feature_info[i]["num_chs"] for i in out_indices]
    assert features.feature_info.reduction() == [full.feature_info[i]["reduction"] for i in out_indices]
    for level, (index, feature_map) in enumerate(zip(out_indices, maps, strict=True)):
        assert feature_map.shape == (2, features.feature_info.channels()[level], sides[index], sides[index])
        torch.testing.assert_close(feature_map, intermediates[index], rtol=0, atol=0)
    for info, feature_map, side in zip(full.feature_info, intermediates, sides, strict=True):
        assert feature_map.shape == (2, info["num_chs"], side, side)
        # The reduction is the cumulative stride; unpadded convolutions (LeNet-5's 5x5: 2 pixels a side) and 3x3
        # poolings trim a border, so a map may be a little smaller than input / reduction, never larger.
        assert 0 <= 32 // info["reduction"] - side <= 3
    torch.testing.assert_close(final, full_features, rtol=0, atol=0)
    torch.testing.assert_close(full.forward_head(final), logits, rtol=0, atol=0)
    assert [m.shape for m in last_two] == [m.shape for m in intermediates[-2:]]
    torch.testing.assert_close(early[0], intermediates[0], rtol=0, atol=0)
    torch.testing.assert_close(early[1][0], intermediates[0], rtol=0, atol=0)


def test_resnet_levels_are_the_hfdl_hidden_states():
    model = create("hfdl_resnet20_cifar", {})
    x = images(model)
    with torch.no_grad():
        intermediates = model.forward_intermediates(x, intermediates_only=True)
        hidden_states = model.hf_model.resnet(pixel_values=x, output_hidden_states=True).hidden_states
    assert len(intermediates) == len(hidden_states) == 4
    for ours, theirs in zip(intermediates, hidden_states, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_pruned_feature_model_uses_every_parameter():
    features = create("hfdl_resnet20_cifar", {}, features_only=True, out_indices=(1, 2))
    full = create("hfdl_resnet20_cifar", {})
    assert sum(p.numel() for p in features.parameters()) < sum(p.numel() for p in full.parameters())
    assert isinstance(features.model.get_classifier(), torch.nn.Identity)
    features.train()
    sum(m.square().mean() for m in features(images(full))).backward()
    assert all(p.grad is not None for p in features.parameters())  # DDP needs no unused parameter


def test_forward_intermediates_refuses_other_layouts():
    model = create("hfdl_lenet5_modern", {})
    with pytest.raises(ValueError, match="NCHW"):
        model.forward_intermediates(images(model), output_fmt="NHWC")


# --------------------------------------------------------------------------------------------- data and training
@pytest.mark.parametrize(("name", "extra", "sides"), CASES)
def test_timm_eval_transform_reproduces_the_hfdl_image_processor(name, extra, sides):
    model = create(name, extra)
    config = resolve_data_config(model=model)
    channels = model.hf_model.config.num_channels
    assert config["input_size"] == (channels, 32, 32)
    assert config["interpolation"] == "bilinear" and config["crop_pct"] == 1.0
    spec = next(spec for spec in REGISTRY.values() if spec.config_class is type(model.hf_model.config))
    processor = spec.make_image_processor(model.hf_model.config)
    mode = "L" if channels == 1 else "RGB"
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)).convert(mode)
    ours = torch.from_numpy(processor(image)["pixel_values"][0])
    theirs = create_transform(**config)(image)
    assert theirs.shape == ours.shape == (channels, 32, 32)
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)


def test_data_config_follows_in_chans():
    model = timm.create_model("hfdl_resnet20_cifar", in_chans=1, img_size=40)
    config = resolve_data_config(model=model)
    assert config["input_size"] == (1, 40, 40)
    assert config["mean"] == (0.5,) and config["std"] == (0.5,)
    assert model.hf_model.config.image_size == 40
    four = timm.create_model("hfdl_resnet20_cifar", in_chans=4)  # hfdl's processor reads 1 or 3 channels only
    assert resolve_data_config(model=four)["mean"] == (0.5,) * 4
    assert four(torch.randn(1, 4, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize(
    ("name", "extra", "optimizer", "lr"),
    [
        pytest.param("hfdl_lenet5_modern", {}, "sgd", 0.03, id="lenet5"),
        pytest.param("hfdl_alexnet_small", {}, "sgd", 0.003, id="alexnet"),
        pytest.param("hfdl_resnet20_cifar", {}, "sgd", 0.03, id="resnet"),
        # VGG's fully connected layers start from the paper's N(0, 0.01); at the narrow widths that keep this test
        # fast their product scales the logits' gradients down to nothing for plain SGD, so VGG takes AdamW here.
        pytest.param(
            "hfdl_vgg11",
            {"img_size": 32, "pooled_size": 1, "stage_channels": [8, 16, 32, 32, 32], "hidden_sizes": [64, 64]},
            "adamw",
            0.003,
            id="vgg",
        ),
    ],
)
def test_timm_optimizer_lowers_the_loss(name, extra, optimizer, lr):
    model = create(name, extra, num_classes=4, in_chans=1, drop_rate=0.0).train()
    momentum = {"momentum": 0.9} if optimizer == "sgd" else {}
    optimizer = create_optimizer_v2(model, opt=optimizer, lr=lr, weight_decay=1e-4, **momentum)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 32, 32, generator=generator)
    y = torch.randint(0, 4, (16,), generator=generator)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < 0.75 * losses[0], losses


def test_grad_checkpointing_gives_the_same_gradients():
    model = create("hfdl_resnet20_cifar", {}).train()
    x = images(model)
    model(x).sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.set_grad_checkpointing(True)
    model(x).sum().backward()
    for grad, p in zip(expected, model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, grad, rtol=1e-5, atol=1e-6)


def test_drop_rate_sets_the_config_dropout_or_the_head_dropout():
    lenet = timm.create_model("hfdl_lenet5_modern", drop_rate=0.3)
    assert lenet.hf_model.config.dropout == 0.3
    vgg = timm.create_model("hfdl_vgg11", img_size=32, pooled_size=1, hidden_sizes=[8, 8], drop_rate=0.0)
    assert vgg.hf_model.config.dropout == 0.0  # timm's scripts pass --drop (0.0 by default) as drop_rate
    resnet = timm.create_model("hfdl_resnet20_cifar", drop_rate=0.2)
    assert isinstance(resnet.head_drop, torch.nn.Dropout) and resnet.head_drop.p == 0.2
    assert not any(key.startswith("head_drop") for key in resnet.state_dict())


# --------------------------------------------------------------------------------------------- hfdl round trips
def test_hf_model_saves_and_loads_back_as_hfdl_and_timm(tmp_path):
    model = create("hfdl_resnet20_cifar", {}, num_classes=3, in_chans=1)
    x = images(model)
    model.hf_model.save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    wrapped = HfdlTimmModel.from_hfdl(str(tmp_path)).eval()
    reloaded = timm.create_model(
        "hfdl_resnet20_cifar",
        num_classes=3,
        in_chans=1,
        pretrained=True,
        pretrained_cfg_overlay={"state_dict": model.state_dict()},
    ).eval()
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(loaded(pixel_values=x).logits, expected, rtol=0, atol=0)
        torch.testing.assert_close(wrapped(x), expected, rtol=0, atol=0)
        torch.testing.assert_close(reloaded(x), expected, rtol=0, atol=0)
    assert wrapped.num_classes == 3 and wrapped.in_chans == 1


# --------------------------------------------------------------------------------------------- user errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drop_path_rate": 0.1}, "does not take 'drop_path_rate'.*stage_depths"),
        ({"num_labels": 3}, "Pass timm's `num_classes` instead of `num_labels`"),
        ({"num_channels": 1}, "Pass timm's `in_chans`"),
        ({"out_indices": (1,)}, "does not take 'out_indices'"),
        ({"global_pool": "max"}, "global_pool` must be None or 'avg'"),
        ({"img_size": (32, 48)}, "square images"),
        ({"num_classes": -1}, "`num_classes` must be an integer >= 0"),
        ({"drop_rate": 1.5}, r"`drop_rate` must be a number in \[0, 1\)"),
        ({"stage_depths": [1]}, "stage_channels"),  # the config's own check
        ({"pretrained": True}, "has no pretrained weights"),
    ],
)
def test_user_errors_name_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        timm.create_model("hfdl_resnet20_cifar", **kwargs)


def test_wrong_input_size_is_a_clear_error():
    model = timm.create_model("hfdl_resnet20_cifar")
    with pytest.raises(ValueError, match="pixel_values"):
        model(torch.randn(1, 3, 64, 64))


def test_layer_decay_groups_from_group_matcher():
    model = timm.create_model("hfdl_resnet20_cifar")
    optimizer = create_optimizer_v2(model, opt="sgd", lr=0.1, layer_decay=0.5)
    scales = {}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            scales[id(parameter)] = group["lr_scale"]
    named = dict(model.named_parameters())
    assert len(scales) == len(named)  # every parameter in exactly one group
    stem = scales[id(named["hf_model.resnet.stem.layers.0.conv.weight"])]
    stage3 = scales[id(named["hf_model.resnet.stages.2.blocks.0.conv1.weight"])]
    head = scales[id(named["hf_model.classifier.weight"])]
    assert stem < stage3 < head == 1.0


# --------------------------------------------------------------------------------------------- timm's scripts
#: What timm's train.py does with a model name, reduced to its model and data calls (the script is not in timm's
#: wheel): create_model with the script's arguments (None where a flag is unset), then the data config and transform.
TRAIN_SCRIPT = """
import argparse

import timm
from PIL import Image
from timm.data import create_transform, resolve_data_config

parser = argparse.ArgumentParser()
parser.add_argument("--model")
parser.add_argument("--num-classes", type=int)
parser.add_argument("--in-chans", type=int)
args = parser.parse_args()
model = timm.create_model(
    args.model, pretrained=False, in_chans=args.in_chans, num_classes=args.num_classes, drop_rate=0.0,
    drop_path_rate=None, drop_block_rate=None, global_pool=None, bn_momentum=None, bn_eps=None, scriptable=False,
    checkpoint_path=None,
)
config = resolve_data_config(vars(args), model=model)
mode = "RGB" if config["input_size"][0] == 3 else "L"  # train.py's default --input-img-mode, the dataset's mode
batch = create_transform(**config, is_training=True)(Image.new(mode, (40, 40))).unsqueeze(0)
print("logits", tuple(model(batch).shape), "input", tuple(batch.shape))
"""


def test_run_script_gives_timm_scripts_the_hfdl_models(tmp_path, capsys):
    from hfdl.integrations.timm import run_script

    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    run_script(str(script), ["--model", "hfdl_lenet5_modern", "--num-classes", "3", "--in-chans", "1"])
    assert "logits (1, 3) input (1, 1, 32, 32)" in capsys.readouterr().out


def test_module_runs_timm_scripts_from_the_shell(tmp_path, offline_env):
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    command = [sys.executable, "-m", "hfdl.integrations.timm", str(script), "--model", "hfdl_resnet20_cifar"]
    result = subprocess.run(command, capture_output=True, text=True, env=offline_env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "logits (1, 10) input (1, 3, 32, 32)" in result.stdout
    assert "Overwriting" not in result.stderr  # registered once, by the importable module
