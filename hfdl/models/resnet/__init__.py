"""ResNet (He, Zhang, Ren & Sun, 2016), course chapter 5: its classes and its entry in the registry."""

from ...specs import ArchitectureSpec, backbone, image_classification, image_feature_extraction
from .configuration_resnet import ResNetConfig
from .image_processing_resnet import ResNetImageProcessor
from .modeling_resnet import ResNetBackbone, ResNetForImageClassification, ResNetModel, ResNetPreTrainedModel

#: The paper's ImageNet networks (Table 1): blocks per stage and block type; torchvision's parameter counts.
_IMAGENET_DEPTHS = {
    "resnet18": ([2, 2, 2, 2], "basic"),  # 11,689,512 parameters
    "resnet34": ([3, 4, 6, 3], "basic"),  # 21,797,672
    "resnet50": ([3, 4, 6, 3], "bottleneck"),  # 25,557,032
    "resnet101": ([3, 4, 23, 3], "bottleneck"),  # 44,549,160
    "resnet152": ([3, 8, 36, 3], "bottleneck"),  # 60,192,808
}
#: The paper's CIFAR-10 networks (section 4.2): 6n + 2 layers, three stages of n basic blocks at 16/32/64 channels on
#: 32x32 images. The paper's option A shortcut (zero-padded identity) is replaced by option B (1x1 projections),
#: which it found slightly better: 272,474 parameters against option A's 269,722 (the paper's "0.27M").
_CIFAR = {"stem": "small", "stem_channels": 16, "stage_channels": [16, 32, 64], "image_size": 32, "num_labels": 10}

ARCHITECTURE = ArchitectureSpec(
    name="resnet",
    model_type=ResNetConfig.model_type,
    chapter="5 CNNs",
    paper="He, Zhang, Ren & Sun, 2016",
    config_class=ResNetConfig,
    tasks=(
        image_classification(ResNetForImageClassification),
        image_feature_extraction(ResNetModel),
        backbone(ResNetBackbone),
    ),
    presets={
        **{
            name: {"stage_depths": depths, "block_type": block, "num_labels": 1000}
            for name, (depths, block) in _IMAGENET_DEPTHS.items()
        },
        # ResNet-50 with the "bag of tricks" stem and shortcuts (He et al., 2019): timm's resnet50d, 25,576,264.
        "resnet50-d": {
            "stage_depths": [3, 4, 6, 3],
            "block_type": "bottleneck",
            "stem": "deep",
            "avg_down": True,
            "num_labels": 1000,
        },
        "resnet20-cifar": {**_CIFAR, "stage_depths": [3, 3, 3]},
        "resnet56-cifar": {**_CIFAR, "stage_depths": [9, 9, 9]},
        # ResNet-18's stages behind the small-image stem, for 28-32 px grayscale digits (MNIST resized to 32).
        "resnet18-small": {"stem": "small", "num_channels": 1, "image_size": 32, "num_labels": 10},
    },
    # ResNet-50 is the network most users mean by "ResNet" (the common transfer-learning and benchmark baseline).
    default_preset="resnet50",
    test_config={
        "image_size": 16,
        "block_type": "bottleneck",
        "stage_depths": [1, 2],
        "stage_channels": [4, 8],
        "stem_channels": 8,
        "stem": "deep",
        "avg_down": True,
        "num_labels": 3,
    },
    image_processor_class=ResNetImageProcessor,
    spaces=("cnn-explorer",),
    notebooks=("05_cnns",),
)

__all__ = [
    "ARCHITECTURE",
    "ResNetBackbone",
    "ResNetConfig",
    "ResNetForImageClassification",
    "ResNetImageProcessor",
    "ResNetModel",
    "ResNetPreTrainedModel",
]
