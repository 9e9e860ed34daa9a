"""The ViT's own behaviour beyond the contract every model meets: patches and positions, interpolation to other
image sizes, pooling variants, stochastic depth, and attention rollout checked against hand-computed values."""

from __future__ import annotations

import pytest
import torch

import hfdl
from hfdl.models.vit import ViTConfig, ViTForImageClassification, ViTModel, attention_rollout, rollout_map

SMALL = {
    "image_size": 16,
    "patch_size": 4,
    "num_channels": 3,
    "hidden_size": 16,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 32,
    "num_labels": 5,
}


def small_model(**overrides) -> ViTForImageClassification:
    torch.manual_seed(0)
    return ViTForImageClassification(ViTConfig(**{**SMALL, **overrides})).eval()


def test_patches_become_tokens_in_row_major_order_after_the_class_token():
    model = small_model()
    embeddings = model.vit.embeddings
    torch.manual_seed(1)
    pixels = torch.randn(1, 3, 16, 16)
    tokens = embeddings(pixels) - embeddings.position_embeddings
    assert tokens.shape == (1, 1 + 16, 16)
    torch.testing.assert_close(tokens[0, 0], embeddings.cls_token[0, 0])
    # Patch (row 1, column 2) is token 1 + 1 * 4 + 2: the convolution is a linear map of that 4x4 patch.
    patch = pixels[0, :, 4:8, 8:12].flatten()
    weight = embeddings.patch_embedding.weight.flatten(1)
    expected = weight @ patch + embeddings.patch_embedding.bias
    torch.testing.assert_close(tokens[0, 1 + 4 + 2], expected, rtol=1e-5, atol=1e-5)


def test_interpolated_positions_leave_the_trained_size_unchanged_and_serve_other_sizes():
    model = small_model()
    pixels = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        plain = model(pixels).logits
        interpolated = model(pixels, interpolate_pos_encoding=True).logits
        torch.testing.assert_close(plain, interpolated)
        larger = model.vit(torch.randn(2, 3, 32, 24), interpolate_pos_encoding=True)
    assert larger.last_hidden_state.shape == (2, 1 + 8 * 6, 16)
    # Resampling a constant table gives the same constant: bicubic weights sum to one.
    table = model.vit.embeddings.position_embeddings
    with torch.no_grad():
        table[:, 1:] = 0.25
    resampled = model.vit.embeddings.interpolate_pos_encoding(8, 6)
    torch.testing.assert_close(resampled[:, 1:], torch.full((1, 48, 16), 0.25))
    torch.testing.assert_close(resampled[:, :1], table[:, :1])


def test_wrong_image_sizes_say_what_to_do():
    model = small_model()
    with pytest.raises(ValueError, match=r"interpolate_pos_encoding=True"):
        model(torch.randn(1, 3, 20, 20))
    with pytest.raises(ValueError, match=r"multiples of patch_size=4"):
        model(torch.randn(1, 3, 18, 20), interpolate_pos_encoding=True)
    with pytest.raises(ValueError, match=r"\(batch_size, 3, 16, 16\)"):
        model(torch.randn(1, 1, 16, 16))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"patch_size": 5}, "must divide `image_size`"),
        ({"class_token": False}, "needs `class_token=True`"),
        ({"pooling": "max"}, "pooling"),
        ({"drop_path_rate": 1.5}, "drop_path_rate"),
        ({"num_attention_heads": 3}, "multiple of `num_attention_heads`"),
    ],
)
def test_bad_configs_name_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        ViTConfig(**{**SMALL, **overrides})


def test_mean_pooling_with_and_without_a_class_token():
    for class_token in (True, False):
        model = small_model(pooling="mean", class_token=class_token)
        with torch.no_grad():
            outputs = model.vit(torch.randn(2, 3, 16, 16))
        prefix = 1 if class_token else 0
        assert outputs.last_hidden_state.shape == (2, prefix + 16, 16)
        torch.testing.assert_close(outputs.pooler_output, outputs.last_hidden_state[:, prefix:].mean(dim=1))
    # timm's fc_norm: the norm applies to the pooled vector; the tokens stay un-normalised.
    model = small_model(pooling="mean", norm_after_pooling=True)
    with torch.no_grad():
        outputs = model.vit(torch.randn(2, 3, 16, 16))
    expected = model.vit.norm(outputs.last_hidden_state[:, 1:].mean(dim=1))
    torch.testing.assert_close(outputs.pooler_output, expected)


def test_eager_attention_gives_the_fused_kernels_answer():
    model = small_model()
    pixels = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        fused = model(pixels).logits
        eager = model(pixels, output_attentions=True)
    torch.testing.assert_close(eager.logits, fused, rtol=1e-5, atol=1e-5)
    assert len(eager.attentions) == 3 and eager.attentions[0].shape == (2, 4, 17, 17)
    torch.testing.assert_close(eager.attentions[0].sum(-1), torch.ones(2, 4, 17))


def test_stochastic_depth_rises_with_depth_and_is_off_in_eval():
    model = small_model(drop_path_rate=0.5)
    assert [layer.drop_path for layer in model.vit.layers] == [0.0, 0.25, 0.5]
    pixels = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        reference = small_model()(pixels).logits
        torch.testing.assert_close(model(pixels).logits, reference)  # eval: identical to the model without it
        model.train()
        torch.manual_seed(0)
        first = model(pixels).logits
        second = model(pixels).logits
    assert not torch.allclose(first, second)


def test_a_tiny_vit_learns_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = torch.tensor(digits.images[:256], dtype=torch.float32)[:, None] / 8 - 1
    labels = torch.tensor(digits.target[:256])
    torch.manual_seed(0)
    model = hfdl.create_model("vit-mnist", image_size=8, patch_size=4, hidden_size=32, num_hidden_layers=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(60):  # ViTs leave the uniform guess slowly at first, as timm's does at equal dims
        batch = slice(32 * (step % 8), 32 * (step % 8 + 1))
        loss = model(pixels[batch], labels=labels[batch]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


# --------------------------------------------------------------------------------------------- attention rollout
def test_rollout_of_one_layer_is_half_attention_half_identity():
    torch.manual_seed(0)
    weights = torch.rand(2, 3, 5, 5).softmax(dim=-1)
    rollout = attention_rollout([weights])
    expected = 0.5 * weights.mean(dim=1) + 0.5 * torch.eye(5)
    torch.testing.assert_close(rollout, expected)
    torch.testing.assert_close(attention_rollout([weights], head=1), 0.5 * weights[:, 1] + 0.5 * torch.eye(5))
    fused = weights.amax(dim=1)
    expected_max = (0.5 * fused + 0.5 * torch.eye(5)) / (0.5 * fused + 0.5 * torch.eye(5)).sum(-1, keepdim=True)
    torch.testing.assert_close(attention_rollout([weights], head_fusion="max"), expected_max)


def test_rollout_multiplies_layers_in_order_and_keeps_rows_stochastic():
    torch.manual_seed(0)
    layers = [torch.rand(1, 2, 4, 4).softmax(dim=-1) for _ in range(3)]
    mixed = [0.5 * a.mean(dim=1) + 0.5 * torch.eye(4) for a in layers]
    torch.testing.assert_close(attention_rollout(layers), mixed[2] @ mixed[1] @ mixed[0])
    torch.testing.assert_close(attention_rollout(layers, num_layers=2), mixed[1] @ mixed[0])
    sharpened = attention_rollout(layers, discard_ratio=0.5)
    torch.testing.assert_close(sharpened.sum(-1), torch.ones(1, 4))
    assert not torch.allclose(sharpened, attention_rollout(layers))


def test_rollout_map_reads_the_class_token_row_over_the_patch_grid():
    rollout = torch.zeros(1, 5, 5)
    rollout[0, 0] = torch.tensor([0.2, 0.1, 0.4, 0.0, 0.3])
    heat = rollout_map(rollout, 2)
    torch.testing.assert_close(heat, torch.tensor([[[0.25, 1.0], [0.0, 0.75]]]))
    with pytest.raises(ValueError, match="does not fit a 3x3 patch grid"):
        rollout_map(rollout, 3)


def test_rollout_points_at_the_patch_the_class_token_attends_to():
    """Two layers in which the class token attends to patch 5 only (the others to themselves): the map peaks there,
    and the model's own attentions give a map in [0, 1] of the grid's shape."""
    attention = torch.eye(17).repeat(1, 2, 1, 1)
    attention[:, :, 0] = 0
    attention[:, :, 0, 1 + 5] = 1
    heat = rollout_map(attention_rollout([attention, attention]), 4)
    assert heat.flatten(1).argmax().item() == 5 and heat[0].flatten()[5] == 1.0
    model = small_model(num_hidden_layers=1)
    with torch.no_grad():
        outputs = model(torch.randn(1, 3, 16, 16), output_attentions=True)
    heat = rollout_map(attention_rollout(outputs.attentions), 4)
    assert heat.shape == (1, 4, 4) and heat.min() == 0 and heat.max() == 1


def test_rollout_rejects_what_it_cannot_use():
    weights = [torch.rand(1, 2, 4, 4).softmax(-1)]
    with pytest.raises(ValueError, match="output_attentions=True"):
        attention_rollout([])
    with pytest.raises(ValueError, match="head_fusion"):
        attention_rollout(weights, head_fusion="sum")
    with pytest.raises(ValueError, match=r"head index in \[0, 2\)"):
        attention_rollout(weights, head=2)
    with pytest.raises(ValueError, match="between 1 and 1"):
        attention_rollout(weights, num_layers=2)
    with pytest.raises(ValueError, match="discard_ratio"):
        attention_rollout(weights, discard_ratio=1.0)


def test_vit_model_is_the_feature_extractor_under_the_classifier():
    model = small_model()
    assert isinstance(model.vit, ViTModel)
    pixels = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        pooled = model.vit(pixels).pooler_output
        torch.testing.assert_close(model(pixels).logits, model.classifier(pooled))


def test_readme_vit_snippet_runs_as_written():
    """The README's ViT example, pasted as written: rollout map shape and interpolated positions at 56 px."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## ViT and transfer learning", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert namespace["heat"].shape == (1, 7, 7) and namespace["bigger"].shape == (1, 10)
    assert len(namespace["outputs"].attentions) == 4


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_the_classifier_runs_the_last_block_for_the_class_token_only_with_the_same_result(norm_position):
    """The classifier reads the class token alone, so its last block skips the other tokens' queries and MLP: the
    logits and every gradient equal those of the full forward; asked for hidden states or attentions, the full
    block runs."""
    model = small_model(norm_position=norm_position)
    pixels = torch.randn(3, 3, 16, 16)
    labels = torch.tensor([0, 1, 4])
    shortcut = model.vit(pixels, class_token_only=True)
    full = model.vit(pixels)
    assert shortcut.last_hidden_state.shape == (3, 1, 16) and full.last_hidden_state.shape == (3, 17, 16)
    torch.testing.assert_close(shortcut.pooler_output, full.pooler_output, rtol=1e-5, atol=1e-6)

    model(pixels, labels=labels).loss.backward()
    fast = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    pooled = model.vit(pixels).pooler_output  # the full last block
    torch.nn.functional.cross_entropy(model.classifier(pooled), labels).backward()
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(fast[name], parameter.grad, rtol=1e-5, atol=1e-6, msg=name)
    assert model(pixels, output_hidden_states=True).hidden_states[-1].shape == (3, 17, 16)
