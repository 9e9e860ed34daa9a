"""The Vision Transformer (Dosovitskiy et al., 2021), course chapter 9: its classes, attention rollout, and its entry
in the registry."""

from ...specs import ArchitectureSpec, image_classification, image_feature_extraction
from .configuration_vit import ViTConfig
from .image_processing_vit import ViTImageProcessor
from .modeling_vit import (
    ViTForImageClassification,
    ViTModel,
    ViTPreTrainedModel,
    attention_rollout,
    rollout_map,
)


def _vit(hidden: int, layers: int, heads: int, patch: int = 16) -> dict:
    """A published ViT size at 224 px with a 1,000-class ImageNet head; parameter counts equal timm's ``vit_*``."""
    return {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "patch_size": patch,
        "num_labels": 1000,
    }


ARCHITECTURE = ArchitectureSpec(
    name="vit",
    model_type=ViTConfig.model_type,
    chapter="9 Transformers",
    paper="Dosovitskiy et al., 2021",
    config_class=ViTConfig,
    tasks=(image_classification(ViTForImageClassification), image_feature_extraction(ViTModel)),
    presets={
        # DeiT's Tiny and Small (Touvron et al., 2021) and the paper's Base and Large; timm's vit_*_224 counts:
        "vit-tiny-patch16-224": _vit(192, 12, 3),  # 5,717,416 parameters
        "vit-small-patch16-224": _vit(384, 12, 6),  # 22,050,664
        "vit-base-patch16-224": _vit(768, 12, 12),  # 86,567,656 (transformers' ViTForImageClassification too)
        "vit-base-patch32-224": _vit(768, 12, 12, patch=32),  # 88,224,232
        "vit-large-patch16-224": _vit(1024, 24, 16),  # 304,326,632
        # The course's ViT for 28 px digits: 7x7 patches of 4x4 pixels (49 tokens + the class token), 4 blocks of
        # 128 dims, 4 heads and an MLP of 512; the configuration of the benchmark against timm.
        "vit-mnist": {
            "image_size": 28,
            "patch_size": 4,
            "num_channels": 1,
            "hidden_size": 128,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "intermediate_size": 512,
            "num_labels": 10,
        },
        # A small ViT for 32 px CIFAR-10 images: 8x8 patches of 4x4 pixels, 6 blocks of 256 dims.
        "vit-cifar": {
            "image_size": 32,
            "patch_size": 4,
            "hidden_size": 256,
            "num_hidden_layers": 6,
            "num_attention_heads": 8,
            "intermediate_size": 512,
            "num_labels": 10,
        },
    },
    # ViT-B/16 is what "ViT" means in most papers and in transformers' and timm's model hubs.
    default_preset="vit-base-patch16-224",
    test_config={
        "image_size": 16,
        "patch_size": 4,
        "num_channels": 3,
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 24,
        "num_labels": 3,
    },
    image_processor_class=ViTImageProcessor,
    spaces=("vit-attention",),
    notebooks=("09_vision_transfer",),
)

__all__ = [
    "ARCHITECTURE",
    "ViTConfig",
    "ViTForImageClassification",
    "ViTImageProcessor",
    "ViTModel",
    "ViTPreTrainedModel",
    "attention_rollout",
    "rollout_map",
]
