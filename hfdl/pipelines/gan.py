"""``GANPipeline``: images from an hfdl GAN (MLP GAN, DCGAN or conditional GAN) in the diffusers call style.

::

    from hfdl.pipelines import GANPipeline

    pipe = GANPipeline.from_pretrained("outputs/cgan/best")  # a saved GANModel or a saved GANPipeline folder
    images = pipe(class_labels=list(range(10)), generator=torch.Generator().manual_seed(0)).images  # 10 PIL images

The pipeline adds no randomness of its own: a call draws exactly what ``model.sample`` draws, from ``generator``,
so ``pipe(num_images=n, generator=g, class_labels=c, output_type="pt").images`` equals
``model.sample(n, generator=g, class_labels=c)`` bit for bit when ``n <= batch_size``.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from transformers import PreTrainedModel  # noqa: F401  (diffusers finds the component's loadable base here)

from ..models.gan import GANModel
from .base import HfdlModelPipeline


class GANPipeline(HfdlModelPipeline):
    """Sample a :class:`~hfdl.models.gan.GANModel`'s generator: z ~ N(0, I) -> G(z[, y]) -> images in [0, 1].

    ``class_labels`` is required for a conditional GAN (``config.num_classes > 0``) and refused for an
    unconditional one; see :func:`hfdl.pipelines.base.normalize_class_labels`. Loading, saving and
    ``diffusers.DiffusionPipeline`` support: :class:`~hfdl.pipelines.base.HfdlModelPipeline`.
    """

    component_module = "hfdl.pipelines.gan"
    model_cpu_offload_seq = "model"

    @classmethod
    def model_class(cls) -> type:
        return GANModel

    def __init__(self, model: GANModel) -> None:
        super().__init__(model)

    def _sample_batch(
        self, num_images: int, generator: torch.Generator | None, class_labels: torch.Tensor | None, **kwargs: Any
    ) -> torch.Tensor:
        return self._sample_model(lambda: self.model.sample(num_images, generator=generator, class_labels=class_labels))

    @torch.no_grad()
    def __call__(
        self,
        num_images: int | None = None,
        generator: torch.Generator | None = None,
        class_labels: int | list[int] | torch.Tensor | None = None,
        output_type: str = "pil",
        batch_size: int | None = None,
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """Generate images.

        Args:
            num_images: How many images; None means one, or one per entry of a list/tensor ``class_labels``.
            generator: The ``torch.Generator`` all noise is drawn from (None: torch's global generator).
            class_labels: For a conditional GAN: an int for every image, or one class per image.
            output_type: ``"pil"`` (list of PIL images), ``"np"`` ((N, H, W, C) in [0, 1]) or ``"pt"``
                ((N, C, H, W) in [0, 1]).
            batch_size: Images per generator pass (default 64), to bound memory. Each pass draws its own noise,
                so the same seed gives the same images for the same ``num_images`` and ``batch_size``.
            return_dict: False returns a 1-tuple ``(images,)``, as diffusers' pipelines do.
        """
        return self._generate(num_images, generator, class_labels, output_type, batch_size, return_dict)


__all__ = ["GANModel", "GANPipeline"]
