"""LeNet-5 (LeCun et al., 1998), course chapter 5: its classes and its entry in the registry."""

from ...specs import ArchitectureSpec, image_classification, image_feature_extraction
from .configuration_lenet5 import LeNet5Config
from .image_processing_lenet5 import LeNet5ImageProcessor
from .modeling_lenet5 import LeNet5ForImageClassification, LeNet5Model, LeNet5PreTrainedModel

ARCHITECTURE = ArchitectureSpec(
    name="lenet5",
    model_type=LeNet5Config.model_type,
    chapter="5 CNNs",
    paper="LeCun et al., 1998",
    config_class=LeNet5Config,
    tasks=(image_classification(LeNet5ForImageClassification), image_feature_extraction(LeNet5Model)),
    presets={
        "lenet5-1998": {"activation": "tanh", "pooling": "average", "num_labels": 10},
        "lenet5-modern": {"activation": "relu", "pooling": "max", "num_labels": 10},
    },
    default_preset="lenet5-modern",
    test_config={"image_size": 16, "conv_channels": [2, 4], "hidden_sizes": [8, 6], "num_labels": 3},
    image_processor_class=LeNet5ImageProcessor,
    spaces=("digit-recognizer", "cnn-explorer"),
    notebooks=("01_foundations_mlp_lenet5", "05_cnns"),
)

__all__ = [
    "ARCHITECTURE",
    "LeNet5Config",
    "LeNet5ForImageClassification",
    "LeNet5ImageProcessor",
    "LeNet5Model",
    "LeNet5PreTrainedModel",
]
