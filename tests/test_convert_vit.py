"""`hfdl convert` for Vision Transformers: transformers' ViTModel/ViTForImageClassification and timm's vit_*.

Small random models (seeded, with every layer norm and bias randomised so that a tensor mapped onto the wrong place
shows) are converted and compared output for output: logits, hidden states, attention weights, and outputs at
another image size with interpolated positions. The CLI is run end to end on a transformers `save_pretrained`
folder (old, v4-style tensor names on disk) and on a timm state dict saved as safetensors, and the written folders
are reloaded through the Auto classes with `trust_remote_code=True`. Features hfdl's ViT does not have must be
refused with an error that names them.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import timm
import torch
import transformers
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer

from hfdl import cli
from hfdl.convert import build_timm_vit, convert_state_dict, convert_timm_vit, find_source_model, timm_vit_config
from hfdl.convert_transformers import convert_transformers, convert_transformers_model
from hfdl.models.vit import ViTConfig, ViTForImageClassification, ViTModel
from hfdl.registry import resolve_preset

ATOL = 1e-4
HF_CONFIG = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 48,
    "image_size": 32,
    "patch_size": 8,
    "layer_norm_eps": 1e-12,
    "num_labels": 3,
    "id2label": {0: "cat", 1: "dog", 2: "bird"},
    "label2id": {"cat": 0, "dog": 1, "bird": 2},
}
TIMM_SMALL = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 4, "num_classes": 5}


def randomise(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Norms start as (1, 0), biases and tokens at 0: make every one distinct so that a misplaced tensor shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if parameter.dim() == 1 and "norm" in name and name.endswith("weight"):
                parameter.copy_(1 + 0.3 * noise)
            elif parameter.dim() == 1 or "token" in name or "pos" in name:
                parameter.copy_(0.3 * noise)
    return model.eval()


def images(height: int = 32, width: int = 32, batch: int = 2, seed: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def assert_close(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= ATOL
    assert expected.abs().max().item() > 1e-2  # not two near-zero outputs


def tiny_hf_vit(architecture: str, **overrides) -> transformers.PreTrainedModel:
    torch.manual_seed(0)
    config = transformers.ViTConfig(**{**HF_CONFIG, **overrides})
    config._attn_implementation = "eager"  # attention weights to compare with output_attentions
    return randomise(getattr(transformers, architecture)(config))


def tiny_timm_vit(**overrides) -> VisionTransformer:
    torch.manual_seed(0)
    return randomise(VisionTransformer(**{**TIMM_SMALL, **overrides}))


# --------------------------------------------------------------------------------------------- transformers
@pytest.mark.parametrize("architecture", ["ViTModel", "ViTForImageClassification"])
def test_transformers_vit_gives_equal_outputs_attentions_and_interpolated_outputs(architecture):
    source = tiny_hf_vit(architecture)
    model = convert_transformers_model(source).eval()
    assert type(model).__name__ == architecture and model.config.layer_norm_eps == 1e-12
    with torch.no_grad():
        for pixel_values, interpolate in ((images(), False), (images(48, 40), True)):
            expected = source(pixel_values, output_attentions=True, interpolate_pos_encoding=interpolate)
            got = model(pixel_values, output_attentions=True, interpolate_pos_encoding=interpolate)
            main = "logits" if architecture == "ViTForImageClassification" else "last_hidden_state"
            assert_close(getattr(got, main), getattr(expected, main))
            assert len(got.attentions) == len(expected.attentions) == 2
            for got_weights, expected_weights in zip(got.attentions, expected.attentions, strict=True):
                assert_close(got_weights, expected_weights)
    if architecture == "ViTForImageClassification":
        assert model.config.id2label == {0: "cat", 1: "dog", 2: "bird"} and model.config.label2id["dog"] == 1


def test_transformers_vit_pooler_is_dropped_with_a_warning(caplog):
    source = tiny_hf_vit("ViTModel")
    with caplog.at_level(logging.WARNING, logger="hfdl.convert_transformers"):
        model = convert_transformers_model(source).eval()
    assert "pooler.dense.weight" in caplog.text and "dense + tanh" in caplog.text
    with torch.no_grad():
        expected, got = source(images()), model(images())
    # hfdl's pooler_output is the normed class token itself, transformers' is tanh(dense(...)) of it.
    assert_close(got.pooler_output, expected.last_hidden_state[:, 0])


def test_cli_converts_a_saved_transformers_folder_with_its_image_processor(tmp_path, capsys):
    source = tiny_hf_vit("ViTForImageClassification")
    source.save_pretrained(tmp_path / "source")  # v4-style names on disk: encoder.layer.0.attention.attention.query
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    hf_processor = transformers.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=mean, image_std=std)
    hf_processor.save_pretrained(tmp_path / "source")

    assert cli.main(["convert", "transformers", str(tmp_path / "source"), str(tmp_path / "out")]) == 0
    assert "ViTForImageClassification" in capsys.readouterr().out
    model = transformers.AutoModelForImageClassification.from_pretrained(tmp_path / "out", trust_remote_code=True)
    processor = transformers.AutoImageProcessor.from_pretrained(tmp_path / "out", trust_remote_code=True)
    assert isinstance(model.config, ViTConfig) and model.config.id2label[2] == "bird"
    assert processor.size == 32 and list(processor.image_mean) == mean and list(processor.image_std) == std

    # The same picture through both processors and both models: equal pixels, equal logits.
    picture = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    hf_pixels = hf_processor(picture, return_tensors="pt")["pixel_values"]
    pixels = processor(picture, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(pixels, hf_pixels, atol=1e-5, rtol=0)
    with torch.no_grad():
        assert_close(model.eval()(pixels).logits, source(hf_pixels).logits)


def test_transformers_vit_variants_hfdl_cannot_represent_are_refused(tmp_path):
    with pytest.raises(ValueError, match="`qkv_bias` is False"):
        convert_transformers_model(tiny_hf_vit("ViTModel", qkv_bias=False))
    with pytest.raises(ValueError, match=r"`patch_size` is \[8, 4\]"):
        convert_transformers_model(tiny_hf_vit("ViTModel", patch_size=[8, 4]))
    # A head hfdl does not have: the error lists what it converts.
    torch.manual_seed(0)
    masked = transformers.ViTForMaskedImageModeling(transformers.ViTConfig(**{**HF_CONFIG, "encoder_stride": 8}))
    masked.save_pretrained(tmp_path / "masked")
    with pytest.raises(ValueError, match="ViTForMaskedImageModeling, which hfdl does not convert.*ViTModel"):
        convert_transformers(tmp_path / "masked", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------- timm
TIMM_VARIANTS = {
    "token": {},
    "avg-fc_norm": {"global_pool": "avg"},
    "avg-fc_norm-no-class-token": {"global_pool": "avg", "class_token": False},
    "avg-final-norm": {"global_pool": "avg", "fc_norm": False},
    "no_embed_class": {"no_embed_class": True},
    "no-bias": {
        "qkv_bias": False,
        "proj_bias": False,
        "norm_layer": lambda dim, **kw: torch.nn.LayerNorm(dim, **kw, bias=False),
    },
    "headless": {"num_classes": 0},
}


@pytest.mark.parametrize("overrides", list(TIMM_VARIANTS.values()), ids=list(TIMM_VARIANTS))
def test_timm_vit_gives_equal_logits(overrides):
    source = tiny_timm_vit(**overrides)
    model = convert_timm_vit(source)
    assert isinstance(model, ViTModel if overrides.get("num_classes") == 0 else ViTForImageClassification)
    with torch.no_grad():
        expected = source(images())
        outputs = model(images())
        got = outputs.pooler_output if isinstance(model, ViTModel) else outputs.logits
        assert_close(got, expected)
        if isinstance(model, ViTModel):  # every token, normed as timm's forward_features norms them
            assert_close(outputs.last_hidden_state, source.forward_features(images()))
    expected_pooling = "mean" if overrides.get("global_pool") == "avg" else "cls"
    assert model.config.pooling == expected_pooling
    assert model.config.norm_after_pooling == (overrides.get("global_pool") == "avg" and "fc_norm" not in overrides)


def test_timm_vit_interpolated_positions_match_the_same_model_in_transformers():
    """timm resamples positions its own way; hfdl follows transformers. A ViT converted from timm must give, at
    another image size, what the same weights give in transformers' ViT."""
    source = tiny_timm_vit(num_classes=3)
    model = convert_timm_vit(source)
    hf_model = tiny_hf_vit("ViTForImageClassification", layer_norm_eps=1e-6, intermediate_size=128)
    hf_weights = {}
    for key, value in model.state_dict().items():  # hfdl -> transformers names, the inverse of the conversion
        key = key.replace("embeddings.patch_embedding", "embeddings.patch_embeddings.projection")
        key = key.replace("attention_norm", "layernorm_before").replace("mlp_norm", "layernorm_after")
        key = key.replace("attention.out", "attention.o_proj").replace("fc_in", "fc1").replace("fc_out", "fc2")
        key = key.replace("vit.norm", "vit.layernorm")
        if "attention.qkv" in key:
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3), strict=True):
                hf_weights[key.replace("qkv", name)] = part
            continue
        hf_weights[key] = value
    hf_model.load_state_dict(hf_weights, strict=True)
    with torch.no_grad():
        assert_close(model(images()).logits, source(images()))
        pixel_values = images(48, 56)
        assert_close(
            model(pixel_values, interpolate_pos_encoding=True).logits,
            hf_model(pixel_values, interpolate_pos_encoding=True).logits,
        )


def test_cli_converts_a_timm_state_dict_into_a_folder_auto_classes_load(tmp_path, capsys):
    """A registered timm name, fine-tuned for 32 px and 5 classes: both are read off the checkpoint."""
    torch.manual_seed(0)
    source = randomise(timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, num_classes=5))
    checkpoint = tmp_path / "model.safetensors"
    save_file({key: value.contiguous() for key, value in source.state_dict().items()}, checkpoint)
    argv = ["convert", "timm", "vit_tiny_patch16_224.augreg_in21k_ft_in1k", "--checkpoint", str(checkpoint)]
    assert cli.main([*argv, str(tmp_path / "out")]) == 0
    assert "wrote" in capsys.readouterr().out
    model = transformers.AutoModelForImageClassification.from_pretrained(tmp_path / "out", trust_remote_code=True)
    processor = transformers.AutoImageProcessor.from_pretrained(tmp_path / "out", trust_remote_code=True)
    assert (model.config.image_size, model.config.num_labels, model.config.hidden_size) == (32, 5, 192)
    assert processor.size == 32 and list(processor.image_mean) == [0.5, 0.5, 0.5]  # the augreg ViTs' statistics
    with torch.no_grad():
        assert_close(model.eval()(images()).logits, source(images()))

    # The checkpoint of one ViT given as another: the error names what does not fit.
    capsys.readouterr()
    assert cli.main(["convert", "timm", "vit_small_patch16_224", "--checkpoint", str(checkpoint), str(tmp_path / "x")])
    error = capsys.readouterr().err
    assert error.startswith("hfdl: error:") and "mismatched: cls_token (1, 1, 192)" in error
    assert not (tmp_path / "x").exists()


UNSUPPORTED_TIMM = {
    "layer scale": {"init_values": 1e-5},
    "register tokens": {"reg_tokens": 2},
    "pre_norm=True": {"pre_norm": True},
    "qk_norm=True": {"qk_norm": True},
    "dynamic_img_size=True": {"dynamic_img_size": True},
    "non-square patches": {"patch_size": (8, 4)},
    "global_pool='map'": {"global_pool": "map"},
    "global_pool='max'": {"global_pool": "max"},
    "biases in some layers only": {"qkv_bias": False},
    "final_norm=False": {"final_norm": False},
}


@pytest.mark.parametrize(("feature", "overrides"), list(UNSUPPORTED_TIMM.items()), ids=list(UNSUPPORTED_TIMM))
def test_timm_features_hfdl_cannot_represent_are_refused_by_name(feature, overrides):
    with torch.device("meta"):  # only the architecture is read
        source = VisionTransformer(**{**TIMM_SMALL, **overrides})
    with pytest.raises(ValueError, match=f"uses {feature}.*cannot represent"):
        timm_vit_config(source)


def test_timm_names_build_on_the_meta_device_and_match_hfdl_presets():
    """ViT-B/16 read off timm's definition without allocating it: the hfdl preset's sizes and timm's eps."""
    with torch.device("meta"):
        timm_model = timm.create_model("vit_base_patch16_224", pretrained=False)
    config = timm_vit_config(timm_model)
    spec, preset = resolve_preset("vit-base-patch16-224")
    expected = spec.make_config(preset)
    for field in ("image_size", "patch_size", "hidden_size", "num_hidden_layers", "num_attention_heads"):
        assert config[field] == getattr(expected, field), field
    assert config["intermediate_size"] == expected.intermediate_size and config["layer_norm_eps"] == 1e-6
    # A higher-resolution checkpoint finds its grid: 384 px = 24x24 patches of 16.
    state_dict = {"patch_embed.proj.weight": torch.empty(768, 3, 16, 16), "pos_embed": torch.empty(1, 577, 768)}
    assert build_timm_vit("vit_base_patch16_224", state_dict).patch_embed.img_size == (384, 384)
    assert find_source_model("timm", "deit_small_patch16_224").preset == "vit"
    with torch.device("meta"):
        distilled = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False).state_dict()
    with pytest.raises(ValueError, match="VisionTransformerDistilled"):
        convert_state_dict("timm", "deit_tiny_distilled_patch16_224", distilled)
    with pytest.raises(ValueError, match="any vit_\\* or deit_\\* Vision Transformer"):
        find_source_model("timm", "not_a_timm_model")
