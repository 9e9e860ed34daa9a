"""VGG (Simonyan & Zisserman, 2015), course chapter 5: its classes and its entry in the registry."""

from ...specs import ArchitectureSpec, backbone, image_classification, image_feature_extraction
from .configuration_vgg import VGGConfig
from .image_processing_vgg import VGGImageProcessor
from .modeling_vgg import VGGBackbone, VGGForImageClassification, VGGModel, VGGPreTrainedModel

#: Convolutions per stage of the paper's configurations A (VGG-11), B (VGG-13), D (VGG-16) and E (VGG-19).
STAGE_DEPTHS = {"vgg11": [1, 1, 2, 2, 2], "vgg13": [2, 2, 2, 2, 2], "vgg16": [2, 2, 3, 3, 3], "vgg19": [2, 2, 4, 4, 4]}

ARCHITECTURE = ArchitectureSpec(
    name="vgg",
    model_type=VGGConfig.model_type,
    chapter="5 CNNs",
    paper="Simonyan & Zisserman, 2015",
    config_class=VGGConfig,
    tasks=(
        image_classification(VGGForImageClassification),
        image_feature_extraction(VGGModel),
        backbone(VGGBackbone),
    ),
    presets={
        f"{name}{suffix}": {"stage_depths": depths, "batch_norm": batch_norm, "num_labels": 1000}
        for name, depths in STAGE_DEPTHS.items()
        for suffix, batch_norm in (("", False), ("-bn", True))
    },
    default_preset="vgg16",
    test_config={
        "image_size": 16,
        "stage_channels": [4, 8],
        "stage_depths": [1, 1],
        "batch_norm": True,
        "pooled_size": 2,
        "hidden_sizes": [16, 8],
        "num_labels": 3,
    },
    image_processor_class=VGGImageProcessor,
    spaces=("cnn-explorer",),
    notebooks=("05_cnns",),
)

__all__ = [
    "ARCHITECTURE",
    "VGGBackbone",
    "VGGConfig",
    "VGGForImageClassification",
    "VGGImageProcessor",
    "VGGModel",
    "VGGPreTrainedModel",
]
