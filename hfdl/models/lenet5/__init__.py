from .configuration_lenet5 import LeNet5Config
from .image_processing_lenet5 import LeNet5ImageProcessor
from .modeling_lenet5 import LeNet5ForImageClassification, LeNet5Model, LeNet5PreTrainedModel

__all__ = [
    "LeNet5Config",
    "LeNet5ForImageClassification",
    "LeNet5ImageProcessor",
    "LeNet5Model",
    "LeNet5PreTrainedModel",
]
