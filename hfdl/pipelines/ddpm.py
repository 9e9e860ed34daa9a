"""The DDPM comparator: a small diffusers ``UNet2DModel`` + ``DDPMScheduler``, behind hfdl's pipeline interface.

Chapter 8 of the course closes on diffusion models; this module gives the GANs and VAEs of issue 9 a diffusion
baseline trained on the same data (``recipes/train_ddpm.py``) and sampled through the same call::

    from hfdl.pipelines import DDPMPipeline
    from hfdl.pipelines.ddpm import make_ddpm_scheduler, make_ddpm_unet

    pipe = DDPMPipeline(make_ddpm_unet(image_size=28, num_channels=1), make_ddpm_scheduler())
    images = pipe(num_images=16, generator=torch.Generator().manual_seed(0), num_inference_steps=1000).images

The model is Ho et al. (2020), "Denoising Diffusion Probabilistic Models": a U-Net predicts the noise ``eps`` added
to an image at step ``t`` of a fixed 1000-step forward process, and sampling runs the reverse chain from pure noise.
Everything here is diffusers' own (the U-Net blocks, the scheduler, the folder format); hfdl only picks a U-Net small
enough to train on two CPU cores and aligns the call with :class:`~hfdl.pipelines.GANPipeline`.

A folder written by ``DDPMPipeline.save_pretrained`` is a plain diffusers DDPM folder (``_class_name`` is
``DDPMPipeline``, components ``unet`` and ``scheduler`` from ``diffusers``), so ``diffusers.DiffusionPipeline
.from_pretrained(folder)`` loads it as diffusers' own ``DDPMPipeline`` without hfdl or remote code, and for an
unconditional model that pipeline gives the same images for the same generator (``batch_size`` there is the number of
images; here it is the chunk size, and ``num_images`` the number).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import torch
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor

from .base import HfdlImagePipeline, check_positive_int

#: ``beta_schedule`` values of :func:`make_ddpm_scheduler`: Ho et al.'s linear betas, or Nichol & Dhariwal's (2021)
#: cosine schedule (diffusers' ``squaredcos_cap_v2``), which destroys information more evenly over the steps.
BETA_SCHEDULES = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


def make_ddpm_unet(
    image_size: int = 28,
    num_channels: int = 1,
    block_out_channels: tuple[int, ...] = (32, 64, 64),
    layers_per_block: int = 1,
    attention: bool = True,
    num_classes: int = 0,
    norm_num_groups: int = 8,
    attention_head_dim: int = 16,
    dropout: float = 0.0,
) -> UNet2DModel:
    """A U-Net for small images that trains on a CPU: ``len(block_out_channels)`` levels, a downsampling between
    consecutive levels, self-attention at the lowest resolution only.

    The defaults (1.1M parameters) take 28x28 MNIST down twice, 28 -> 14 -> 7: a third halving would not divide 7,
    and diffusers' U-Net needs every level's size to halve exactly. Attention costs ``(H*W)^2``; at 7x7 that is
    2,401 pairs per head, at 28x28 it would be 614,656, so it only appears at the lowest level (Ho et al. put it at
    16x16 in their 32x32 model). Cost, measured as CPU time on these machines: a training step of 64 MNIST images
    takes 0.8 CPU-seconds on one thread, so an epoch of 8k images is about 100 CPU-seconds (an estimated 1-1.5
    minutes on two idle cores; the machines were shared when measured); ``block_out_channels=(16, 32, 32)`` (0.28M
    parameters) takes 40 % of that.
    ``norm_num_groups`` must divide every width (diffusers' default of 32 would forbid widths below 32).
    ``num_classes > 0`` adds a class embedding to the time embedding (a class-conditional DDPM); diffusers' own
    ``DDPMPipeline`` cannot sample such a U-Net, hfdl's :class:`DDPMPipeline` can.
    """
    check_positive_int("image_size", image_size)
    check_positive_int("num_channels", num_channels)
    if not block_out_channels or any(
        isinstance(width, bool) or not isinstance(width, int) or width < 1 for width in block_out_channels
    ):
        raise ValueError(
            f"`block_out_channels` must be a non-empty tuple of positive ints, got {block_out_channels!r}."
        )
    bad_widths = [width for width in block_out_channels if width % norm_num_groups]
    if bad_widths:
        raise ValueError(f"`norm_num_groups`={norm_num_groups} must divide every block width; {bad_widths} are not.")
    factor = 2 ** (len(block_out_channels) - 1)
    if image_size % factor:
        raise ValueError(
            f"`image_size`={image_size} must be divisible by {factor}: {len(block_out_channels)} levels halve it "
            f"{len(block_out_channels) - 1} times. Use fewer levels or another image size."
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"`num_classes` must be 0 (unconditional) or a positive int, got {num_classes!r}.")
    num_levels = len(block_out_channels)
    lowest = "AttnDownBlock2D" if attention else "DownBlock2D"
    down_block_types = ("DownBlock2D",) * (num_levels - 1) + (lowest,)
    up_block_types = ("AttnUpBlock2D" if attention else "UpBlock2D",) + ("UpBlock2D",) * (num_levels - 1)
    return UNet2DModel(
        sample_size=image_size,
        in_channels=num_channels,
        out_channels=num_channels,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        down_block_types=down_block_types,
        up_block_types=up_block_types,
        add_attention=attention,  # the middle block's attention, at the lowest resolution too
        attention_head_dim=attention_head_dim,
        norm_num_groups=norm_num_groups,
        dropout=dropout,
        num_class_embeds=num_classes or None,
    )


def make_ddpm_scheduler(num_train_timesteps: int = 1000, beta_schedule: str = "linear") -> DDPMScheduler:
    """Ho et al.'s forward process: ``num_train_timesteps`` steps, betas from 1e-4 to 0.02 (``"linear"``) or the
    cosine schedule (``"cosine"``); epsilon prediction; samples clipped to [-1, 1] (the data's range)."""
    check_positive_int("num_train_timesteps", num_train_timesteps)
    if beta_schedule not in BETA_SCHEDULES:
        raise ValueError(f"`beta_schedule` must be one of {tuple(BETA_SCHEDULES)}, got {beta_schedule!r}.")
    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule=BETA_SCHEDULES[beta_schedule],
        prediction_type="epsilon",
        clip_sample=True,
    )


class DDPMPipeline(HfdlImagePipeline):
    """Denoising diffusion sampling with hfdl's pipeline call (``num_images``, ``class_labels``, ``batch_size``).

    Args:
        unet: A diffusers ``UNet2DModel`` that predicts the noise (see :func:`make_ddpm_unet`); with
            ``num_class_embeds`` set it is class-conditional and ``class_labels`` are required.
        scheduler: ``DDPMScheduler`` (ancestral sampling, as trained), or any diffusers scheduler with
            ``set_timesteps``/``step`` built from its config, e.g. ``DDIMScheduler.from_config(pipe.scheduler.config)``
            for good samples in 50 steps instead of 1000.

    Sampling is the expensive part: one U-Net pass over 64 28x28 images with the default U-Net is 0.3 CPU-seconds,
    so 1,000 images with all 1000 DDPM steps cost about 5,000 CPU-seconds, and 50 DDIM steps about 250.

    The noise is drawn exactly as in diffusers' ``DDPMPipeline`` (the initial image, then the scheduler's noise at each
    step, all from ``generator``), which is what makes the two give the same images.
    """

    model_cpu_offload_seq = "unet"

    def __init__(self, unet: UNet2DModel, scheduler: SchedulerMixin) -> None:
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)

    @property
    def num_classes(self) -> int:
        return int(self.unet.config.num_class_embeds or 0)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> DDPMPipeline:
        """Load a DDPM pipeline folder (this class's or diffusers' ``DDPMPipeline``'s), locally or from the Hub.

        Weights are read from safetensors only: ``use_safetensors=True`` makes diffusers refuse a folder that has
        only pickled ``.bin`` weights rather than unpickle them.
        """
        index_path = Path(pretrained_model_name_or_path) / "model_index.json"
        if index_path.is_file():
            class_name = json.loads(index_path.read_text()).get("_class_name")
            if class_name != cls.__name__:
                raise ValueError(f"{pretrained_model_name_or_path} holds a {class_name}, not a DDPMPipeline folder.")
        elif Path(pretrained_model_name_or_path).is_dir():
            raise ValueError(f"{pretrained_model_name_or_path} has no model_index.json: it is not a pipeline folder.")
        kwargs["use_safetensors"] = True
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Write a diffusers DDPM folder (``model_index.json``, ``unet/``, ``scheduler/``), weights as safetensors."""
        kwargs["safe_serialization"] = True
        super().save_pretrained(save_directory, **kwargs)

    def _sample_batch(
        self,
        num_images: int,
        generator: torch.Generator | None,
        class_labels: torch.Tensor | None,
        num_inference_steps: int = 1000,
    ) -> torch.Tensor:
        size = self.unet.config.sample_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        shape = (num_images, self.unet.config.in_channels, *size)
        image = randn_tensor(shape, generator=generator, device=self.device, dtype=self.unet.dtype)  # x_T ~ N(0, I)
        # A scheduler keeps the timesteps of its last set_timesteps: a copy per call lets concurrent calls (a Space's
        # requests) with different step counts share one pipeline.
        scheduler = copy.deepcopy(self.scheduler)
        scheduler.set_timesteps(num_inference_steps)
        was_training = self.unet.training
        self.unet.eval()
        try:
            for timestep in self.progress_bar(scheduler.timesteps):
                noise = self.unet(image, timestep, class_labels=class_labels).sample  # eps_theta(x_t, t[, y])
                image = scheduler.step(noise, timestep, image, generator=generator).prev_sample  # x_{t-1}
        finally:
            self.unet.train(was_training)
        return image / 2 + 0.5  # [-1, 1] -> [0, 1]

    @torch.no_grad()
    def __call__(
        self,
        num_images: int | None = None,
        generator: torch.Generator | None = None,
        class_labels: int | list[int] | torch.Tensor | None = None,
        output_type: str = "pil",
        batch_size: int | None = None,
        num_inference_steps: int | None = None,
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """Generate images by running the reverse diffusion chain from Gaussian noise.

        Args:
            num_images: How many images; None means one, or one per entry of a list/tensor ``class_labels``.
            generator: The ``torch.Generator`` all noise is drawn from (None: torch's global generator).
            class_labels: Only for a class-conditional U-Net: an int for every image, or one class per image.
            output_type: ``"pil"`` (list of PIL images), ``"np"`` ((N, H, W, C) in [0, 1]) or ``"pt"``
                ((N, C, H, W) in [0, 1]).
            batch_size: Images denoised together (default 64). Unlike the GAN and VAE pipelines, this changes the
                images: each chunk runs its own chain, so the generator's draws interleave differently.
            num_inference_steps: Reverse steps, at most the scheduler's ``num_train_timesteps`` (None: all of them,
                which a DDPM scheduler needs to sample well; a DDIM scheduler gives good images in far fewer).
            return_dict: False returns a 1-tuple ``(images,)``, as diffusers' pipelines do.
        """
        num_train_timesteps = self.scheduler.config.num_train_timesteps
        num_inference_steps = num_train_timesteps if num_inference_steps is None else num_inference_steps
        check_positive_int("num_inference_steps", num_inference_steps)
        if num_inference_steps > num_train_timesteps:
            raise ValueError(
                f"`num_inference_steps` must be at most the scheduler's num_train_timesteps ({num_train_timesteps}), "
                f"got {num_inference_steps}."
            )
        return self._generate(
            num_images,
            generator,
            class_labels,
            output_type,
            batch_size,
            return_dict,
            num_inference_steps=num_inference_steps,
        )


__all__ = ["BETA_SCHEDULES", "DDPMPipeline", "make_ddpm_scheduler", "make_ddpm_unet"]
