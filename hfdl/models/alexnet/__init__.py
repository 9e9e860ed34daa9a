"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012), course chapter 5: its classes and its entry in the registry."""

from ...specs import ArchitectureSpec, image_classification, image_feature_extraction
from .configuration_alexnet import AlexNetConfig
from .image_processing_alexnet import AlexNetImageProcessor
from .modeling_alexnet import AlexNetForImageClassification, AlexNetModel, AlexNetPreTrainedModel

#: torchvision's single-GPU layout of the 2012 network, 224x224 RGB in, 1000 ImageNet classes out (61.1M parameters).
_IMAGENET = {"num_channels": 3, "image_size": 224, "num_labels": 1000}

ARCHITECTURE = ArchitectureSpec(
    name="alexnet",
    model_type=AlexNetConfig.model_type,
    chapter="5 CNNs",
    paper="Krizhevsky, Sutskever & Hinton, 2012",
    config_class=AlexNetConfig,
    tasks=(image_classification(AlexNetForImageClassification), image_feature_extraction(AlexNetModel)),
    presets={
        "alexnet-imagenet": dict(_IMAGENET),
        # The paper's local response normalisation after conv1 and conv2, everything else as above: an ablation.
        "alexnet-imagenet-lrn": {**_IMAGENET, "local_response_norm": True},
        # AlexNet's shape scaled down for 28-64 px grayscale images (MNIST resized to 32): 3x3 convolutions that
        # keep the side, the same three overlapping poolings (32 -> 15 -> 7 -> 3), narrower layers.
        "alexnet-small": {
            "num_channels": 1,
            "image_size": 32,
            "conv_channels": [32, 64, 128, 128, 64],
            "conv_kernel_sizes": [3, 3, 3, 3, 3],
            "conv_strides": [1, 1, 1, 1, 1],
            "conv_paddings": [1, 1, 1, 1, 1],
            "adaptive_pool_size": 3,
            "hidden_sizes": [512, 512],
            "num_labels": 10,
        },
    },
    default_preset="alexnet-imagenet",
    test_config={
        "image_size": 32,
        "conv_channels": [4, 8, 8, 8, 4],
        "conv_kernel_sizes": [5, 3, 3, 3, 3],
        "conv_strides": [2, 1, 1, 1, 1],
        "conv_paddings": [2, 1, 1, 1, 1],
        "adaptive_pool_size": 1,
        "hidden_sizes": [16, 8],
        "local_response_norm": True,
        "num_labels": 3,
    },
    image_processor_class=AlexNetImageProcessor,
    spaces=("cnn-explorer",),
    notebooks=("05_cnns",),
)

__all__ = [
    "ARCHITECTURE",
    "AlexNetConfig",
    "AlexNetForImageClassification",
    "AlexNetImageProcessor",
    "AlexNetModel",
    "AlexNetPreTrainedModel",
]
