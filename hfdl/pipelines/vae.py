"""``VAEPipeline``: images from an hfdl VAE's prior, in the diffusers call style.

::

    from hfdl.pipelines import VAEPipeline

    pipe = VAEPipeline.from_pretrained("outputs/vae/best")  # a saved VAEModel or a saved VAEPipeline folder
    images = pipe(num_images=16, generator=torch.Generator().manual_seed(0)).images

Each image is the decoder's mean at z ~ N(0, I) (``VAEModel.sample``): the pipeline draws nothing of its own, so
``pipe(num_images=n, generator=g, output_type="pt").images`` equals ``model.sample(n, generator=g)`` bit for bit
when ``n <= batch_size``.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from transformers import PreTrainedModel  # noqa: F401  (diffusers finds the component's loadable base here)

from ..models.vae import VAEModel
from .base import HfdlModelPipeline


class VAEPipeline(HfdlModelPipeline):
    """Sample a :class:`~hfdl.models.vae.VAEModel`: z ~ N(0, I) -> decoder mean in [0, 1].

    The VAE is unconditional, so ``class_labels`` must stay None (a ValueError says so otherwise). Loading, saving
    and ``diffusers.DiffusionPipeline`` support: :class:`~hfdl.pipelines.base.HfdlModelPipeline`.
    """

    component_module = "hfdl.pipelines.vae"
    model_cpu_offload_seq = "model"

    @classmethod
    def model_class(cls) -> type:
        return VAEModel

    def __init__(self, model: VAEModel) -> None:
        super().__init__(model)

    def _sample_batch(
        self, num_images: int, generator: torch.Generator | None, class_labels: torch.Tensor | None, **kwargs: Any
    ) -> torch.Tensor:
        return self._sample_model(lambda: self.model.sample(num_images, generator=generator))

    @torch.no_grad()
    def __call__(
        self,
        num_images: int | None = None,
        generator: torch.Generator | None = None,
        class_labels: None = None,
        output_type: str = "pil",
        batch_size: int | None = None,
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """Generate images.

        Args:
            num_images: How many images (None: one).
            generator: The ``torch.Generator`` all noise is drawn from (None: torch's global generator).
            class_labels: Must be None (the VAE is unconditional); accepted for the shared pipeline interface.
            output_type: ``"pil"`` (list of PIL images), ``"np"`` ((N, H, W, C) in [0, 1]) or ``"pt"``
                ((N, C, H, W) in [0, 1]).
            batch_size: Images per decoder pass (default 64), to bound memory. Each pass draws its own noise,
                so the same seed gives the same images for the same ``num_images`` and ``batch_size``.
            return_dict: False returns a 1-tuple ``(images,)``, as diffusers' pipelines do.
        """
        return self._generate(num_images, generator, class_labels, output_type, batch_size, return_dict)


__all__ = ["VAEModel", "VAEPipeline"]
