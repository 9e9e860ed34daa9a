"""Write the course notebooks from this script, executed, so that a change to a notebook is a reviewable diff of Python.

Usage (from the repository root, with the venv that has hfdl installed)::

    python notebooks/build_notebooks.py                                    # every notebook
    python notebooks/build_notebooks.py 01_foundations_mlp_lenet5.ipynb   # only the ones named

For each notebook this renders the cells written below, executes them in a fresh ``python3`` kernel (through
nbclient, offline, with ``notebooks/`` as the working directory and a throwaway IPython profile, so that a personal
``~/.ipython`` cannot change the outputs) and writes the ``.ipynb`` *with its outputs*, so a learner browsing the
repository or the Hub sees the printed numbers and the figures without running anything. Run it after editing a
cell below and commit the result; it takes about as long as the notebook does (15-40 s on two CPU cores).

The written file is kept small and stable, so that rebuilding an unchanged notebook does not churn the diff: the
cells seed everything they train, figures are PNGs at a modest resolution without matplotlib's version stamp,
stream outputs are merged, and nothing volatile is stored (no execution timings, no kernel or Python version; the
execution counts stay). ``tests/test_notebooks.py`` checks that the cell sources on disk are what this script
renders, that the file was executed (counts in order, no errors, one PNG per ``plt.show()``), and re-executes it.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS_DIR = Path(__file__).resolve().parent
#: Seconds one cell may run before the execution is abandoned (the whole notebook takes well under a minute).
CELL_TIMEOUT_SECONDS = 300
#: Resolution of the PNG figures written into the notebooks: sharp enough to read, small enough to commit.
FIGURE_DPI = 80
#: Environment of the kernel, on top of this process's: nothing may reach the network, and `make test` exports
#: MPLBACKEND=Agg for scripts, which would replace the kernel's inline backend and leave the figures out.
KERNEL_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
#: IPython configuration of the kernel (read from a throwaway profile): how the inline backend writes a figure.
#: ``Software: None`` leaves matplotlib's version out of the PNG, so an upgrade alone does not change the bytes.
KERNEL_CONFIG = f"""
c.InlineBackend.print_figure_kwargs = {{"bbox_inches": "tight", "dpi": {FIGURE_DPI}, "metadata": {{"Software": None}}}}
"""


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str) -> nbformat.NotebookNode:
    return new_code_cell(textwrap.dedent(text).strip())


def foundations_mlp_lenet5() -> nbformat.NotebookNode:
    """Course chapters 3-5: activations, weight initialisation, LeNet-5, feature maps, save and load."""
    cells = [
        md(
            """
            # Foundations with hfdl: the MLP and LeNet-5 (chapters 3-5)

            This notebook walks the first chapters of *Deep Learning Mastery* with the `hfdl` library:

            1. **Activations** (ch. 3): the five nonlinearities and their derivatives.
            2. **Weight initialisation** (ch. 4): the same MLP trained from zeros, N(0, 0.02), Xavier and He weights.
            3. **LeNet-5** (ch. 5): the 1998 network (tanh, average pooling) against its modern variant (ReLU, max
               pooling).
            4. **Feature maps**: what the first convolution layer (C1) makes of a digit.
            5. **Save and load** in the Hugging Face format, with `from_pretrained`.

            Data: scikit-learn's 1,797 handwritten digits (8x8 pixels), which ship with scikit-learn, so everything
            runs offline. The whole notebook runs in well under a minute on two CPU cores, and each training starts
            from a fixed seed, so a rerun on the same machine prints the same numbers.
            """
        ),
        code(
            """
            import warnings

            # tqdm's notice that ipywidgets is missing (progress bars then print as text); set before the imports.
            warnings.filterwarnings("ignore", message="IProgress not found")

            import tempfile
            from pathlib import Path

            import datasets
            import matplotlib.pyplot as plt
            import numpy as np
            import torch
            import transformers
            from transformers import AutoImageProcessor, AutoModelForImageClassification
            from transformers.activations import ACT2FN

            import hfdl  # registers hfdl's architectures with the transformers Auto classes
            from hfdl.data import load_digits_dataset

            # These networks are tiny: on a CPU one thread is faster than several, whose synchronisation costs more
            # than the work they share (and far more when other programs keep the cores busy).
            torch.set_num_threads(1)
            # Keep the outputs to what the notebook is about: no progress bars or backend notices.
            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            datasets.disable_progress_bars()
            print(f"hfdl {hfdl.__version__}, torch {torch.__version__}; architectures: {', '.join(hfdl.REGISTRY)}")
            """
        ),
        md(
            """
            ## The data

            `hfdl.data.load_digits_dataset()` returns a stratified train/test `DatasetDict` (80 % / 20 %) with an
            `image` column (8x8 grayscale, 0-255) and a `label` column.
            """
        ),
        code(
            """
            digits = load_digits_dataset()
            images = {split: [np.asarray(image) for image in digits[split]["image"]] for split in ("train", "test")}
            labels = {split: torch.tensor(digits[split]["label"]) for split in ("train", "test")}

            print({split: len(images[split]) for split in images}, "images of shape", images["train"][0].shape)
            fig, axes = plt.subplots(1, 10, figsize=(10, 1.4))
            for axis, image, label in zip(axes, images["train"], labels["train"]):
                axis.imshow(image, cmap="gray")
                axis.set_title(int(label))
                axis.axis("off")
            plt.show()
            """
        ),
        md(
            """
            Two helpers used by every section. Each architecture's image processor (grayscale, resize to
            `config.image_size`, scale to [-1, 1]) runs once over the whole split, and a plain training loop
            reads the tensors: mini-batches, cross-entropy (the model computes it when given `labels`), one
            optimizer step per batch.
            """
        ),
        code(
            """
            def pixel_values_for(config):
                \"\"\"Every split through the image processor that matches `config` (8x8 for the MLP, 32x32 for LeNet-5).\"\"\"
                processor = hfdl.get_architecture(config.model_type).make_image_processor(config)
                return {split: processor(images[split], return_tensors="pt")["pixel_values"] for split in images}


            def train(model, pixel_values, targets, num_epochs, optimizer, batch_size=64, seed=0):
                \"\"\"Mini-batch training; returns the mean training loss of each epoch.\"\"\"
                generator = torch.Generator().manual_seed(seed)  # the same batches for every model we compare
                epoch_losses = []
                model.train()
                for _ in range(num_epochs):
                    order = torch.randperm(len(targets), generator=generator)
                    total = 0.0
                    for start in range(0, len(targets), batch_size):
                        batch = order[start : start + batch_size]
                        loss = model(pixel_values=pixel_values[batch], labels=targets[batch]).loss
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                        total += loss.item() * len(batch)
                    epoch_losses.append(total / len(targets))
                model.eval()
                return epoch_losses


            @torch.no_grad()
            def accuracy(model, pixel_values, targets):
                return (model(pixel_values=pixel_values).logits.argmax(-1) == targets).float().mean().item()
            """
        ),
        md(
            """
            ## 1. Activations and their derivatives (chapter 3)

            Without a nonlinearity, stacked linear layers collapse into one linear map. Backpropagation multiplies
            the derivatives of the activations layer after layer, so their size decides whether gradients survive:
            the sigmoid's derivative is at most 0.25 (gradients shrink fast in deep stacks), tanh's reaches 1 at the
            origin, ReLU passes gradients unchanged for positive inputs and blocks them for negative ones (Leaky ReLU
            keeps a slope of 0.01 there, too small to see at this scale: its dashed line covers ReLU's), and GELU is a
            smooth ReLU.

            hfdl's models take their activation by name from `transformers.activations.ACT2FN`, the table
            transformers' own models use; `ACT2FN[name]` builds a fresh `nn.Module`.
            """
        ),
        code(
            """
            x = torch.linspace(-4, 4, 401, requires_grad=True)
            fig, (ax_value, ax_slope) = plt.subplots(1, 2, figsize=(11, 3.8))
            for name in ("sigmoid", "tanh", "relu", "leaky_relu", "gelu"):
                y = ACT2FN[name](x)
                (slope,) = torch.autograd.grad(y.sum(), x)  # dy/dx at every point, by autograd
                style = "--" if name == "leaky_relu" else "-"  # dashed, so that ReLU stays visible under it
                ax_value.plot(x.detach(), y.detach(), style, label=name)
                ax_slope.plot(x.detach(), slope, style, label=name)
                print(f"{name:>10}: largest derivative {slope.max().item():.3f}")
            ax_value.set_title("activation f(x)")
            ax_slope.set_title("derivative f'(x)")
            for axis in (ax_value, ax_slope):
                axis.axhline(0, color="gray", linewidth=0.5)
                axis.legend()
            plt.show()
            """
        ),
        md(
            """
            ## 2. Weight initialisation (chapter 4)

            The MLP config's `initializer` field chooses how the weights start, and
            `hfdl.create_model("mlp-digits", initializer=...)` builds the registry's `mlp-digits` preset with that one
            field changed (like `timm.create_model`). The same MLP (64 -> 128 -> 64 -> 10, ReLU) is trained for 10
            epochs with SGD + momentum, on the same batches, from four starting points:

            * **zeros**: every unit of a layer computes the same thing and gets the same gradient; with ReLU the
              gradients of the hidden weights are exactly zero, so only the output bias learns. The loss stays at
              ln 10 ~= 2.30, chance level.
            * **normal** N(0, 0.02): random, so the symmetry is broken, but too small: the signal shrinks layer after
              layer and training stalls for the first epochs.
            * **Xavier** (Glorot & Bengio, 2010) and **He** (He et al., 2015): scaled to the layer's fan-in/fan-out
              so activations keep their variance; training starts at once.
            """
        ),
        code(
            """
            init_losses = {}
            for initializer in ("zeros", "normal", "xavier_uniform", "kaiming_normal"):
                torch.manual_seed(0)  # the same random draws for every model
                model = hfdl.create_model("mlp-digits", initializer=initializer)  # a preset, with one field changed
                mlp_pixels = pixel_values_for(model.config)
                optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
                init_losses[initializer] = train(model, mlp_pixels["train"], labels["train"], 10, optimizer)
                first_layer = model.mlp.layers[0].linear.weight
                print(
                    f"{initializer:>15}: final loss {init_losses[initializer][-1]:.3f}, "
                    f"test accuracy {accuracy(model, mlp_pixels['test'], labels['test']):.3f}, "
                    f"largest first-layer weight {first_layer.abs().max().item():.3f}"
                )

            plt.figure(figsize=(7, 4))
            for initializer, losses in init_losses.items():
                plt.plot(range(1, len(losses) + 1), losses, marker="o", label=initializer)
            plt.xlabel("epoch")
            plt.ylabel("training loss (log scale)")
            plt.yscale("log")
            plt.title("The same MLP from four initialisations")
            plt.legend()
            plt.show()
            """
        ),
        md(
            """
            With zeros the first layer's weights are still exactly 0 after training: no gradient ever reached them.

            ## 3. LeNet-5 on the digits (chapter 5)

            LeNet-5 (LeCun et al., 1998) takes 32x32 inputs, so its image processor resizes the 8x8 digits. Two
            presets of the registry: `lenet5-1998` is the 1998 network (tanh, average pooling, Xavier-like init) and
            `lenet5-modern` the variant most courses teach today (ReLU, max pooling, He init). Both are trained for 6
            epochs with Adam.
            """
        ),
        code(
            """
            lenet_models, lenet_losses = {}, {}
            for preset in ("lenet5-1998", "lenet5-modern"):
                torch.manual_seed(0)
                model = hfdl.create_model(preset)
                config = model.config
                lenet_pixels = pixel_values_for(config)  # (N, 1, 32, 32), the same for both presets
                optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
                lenet_losses[preset] = train(model, lenet_pixels["train"], labels["train"], 6, optimizer)
                lenet_models[preset] = model
                print(
                    f"{preset:>13} ({config.activation}, {config.pooling} pooling, "
                    f"{model.num_parameters():,} parameters): "
                    f"test accuracy {accuracy(model, lenet_pixels['test'], labels['test']):.3f}"
                )

            plt.figure(figsize=(7, 4))
            for preset, losses in lenet_losses.items():
                plt.plot(range(1, len(losses) + 1), losses, marker="o", label=preset)
            plt.xlabel("epoch")
            plt.ylabel("training loss (log scale)")
            plt.yscale("log")
            plt.title("LeNet-5: 1998 against modern")
            plt.legend()
            plt.show()
            """
        ),
        md(
            """
            On these small digits both variants reach about 98 % test accuracy: the 1998 design is not what holds a
            network of this size back. ReLU's advantage grows with depth, where tanh's derivatives below 1 (section 1)
            multiply layer after layer.

            ## 4. Feature maps: what the first layer sees

            With `output_hidden_states=True` LeNet-5 returns every layer's activations: C1, S2, C3, S4 (feature maps)
            then C5 and F6 (vectors). C1's six 28x28 maps are its 5x5 filters slid over the digit: each responds to a
            stroke direction or an edge. (The input looks blurred because it is the 8x8 digit resized to 32x32.)
            """
        ),
        code(
            """
            model = lenet_models["lenet5-modern"]
            digit = lenet_pixels["test"][:1]  # (1, 1, 32, 32)
            with torch.no_grad():
                outputs = model(pixel_values=digit, output_hidden_states=True)
            for name, state in zip(("C1", "S2", "C3", "S4", "C5", "F6"), outputs.hidden_states):
                print(f"{name}: {tuple(state.shape)}")
            prediction = outputs.logits.argmax(-1).item()

            c1 = outputs.hidden_states[0][0]  # (6, 28, 28)
            fig, axes = plt.subplots(1, 7, figsize=(14, 2.4))
            axes[0].imshow(digit[0, 0], cmap="gray")
            axes[0].set_title(f"input (label {labels['test'][0].item()}, predicted {prediction})", fontsize=9)
            for index, (axis, feature_map) in enumerate(zip(axes[1:], c1)):
                axis.imshow(feature_map, cmap="magma")
                axis.set_title(f"C1 map {index + 1}", fontsize=9)
            for axis in axes:
                axis.axis("off")
            plt.show()
            """
        ),
        md(
            """
            ## 5. Save and load in the Hugging Face format

            `save_pretrained` writes the config, the weights (safetensors) and the modeling code itself, so the
            folder (or a Hub repo made from it) loads with `trust_remote_code=True` where hfdl is not installed. With
            `import hfdl`, the Auto classes find the registered classes directly. To publish a model,
            `hfdl.hub.save_for_hub(model, folder, processor=processor, card_data=...)` writes the same folder plus a
            model card (`README.md`) with the Hub metadata and your evaluation results.
            """
        ),
        code(
            """
            processor = hfdl.get_architecture("lenet5").make_image_processor(model.config)
            with tempfile.TemporaryDirectory() as folder:
                model.save_pretrained(folder)
                processor.save_pretrained(folder)
                print(sorted(path.name for path in Path(folder).iterdir()))

                reloaded = AutoModelForImageClassification.from_pretrained(folder)
                reloaded_processor = AutoImageProcessor.from_pretrained(folder)

            with torch.no_grad():
                original_logits = model(pixel_values=lenet_pixels["test"]).logits
                reloaded_logits = reloaded(pixel_values=lenet_pixels["test"]).logits
            print(type(reloaded).__name__, type(reloaded_processor).__name__)
            print("identical logits after reload:", torch.equal(original_logits, reloaded_logits))
            """
        ),
        md(
            """
            ## Next

            * `recipes/train_image_classifier.py` trains any of these models with Accelerate and writes a Hub-ready
              checkpoint; `spaces/digit-recognizer` serves one in a Gradio app that shows these C1 maps for your own
              drawings.
            * `hfdl.export.export_onnx` exports a checkpoint to ONNX for ONNX Runtime.
            """
        ),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def cnns() -> nbformat.NotebookNode:
    """Course chapter 5: convolution and pooling by hand, receptive fields, LeNet -> AlexNet -> VGG -> ResNet."""
    cells = [
        md(
            """
            # Convolutional networks with hfdl (chapter 5)

            This notebook takes the convolutional network apart and puts the chapter's four landmark designs side by
            side:

            1. **Convolution by hand**: a loop and an `unfold` (im2col) version, both equal to `F.conv2d`, and the
               output-size formula.
            2. **Pooling by hand**, equal to `nn.MaxPool2d` / `nn.AvgPool2d`.
            3. **Receptive fields**: how far each layer sees, computed layer by layer (VGG's 3x3 stacks against one
               7x7 convolution, ResNet-18's stem and stages).
            4. **LeNet-5 -> AlexNet -> VGG -> ResNet** trained the same way on the same digits: parameters,
               compute and test accuracy.
            5. **Filters and feature maps** of the trained networks.

            Data: scikit-learn's 1,797 handwritten digits (8x8), which ship with scikit-learn, so everything runs
            offline, in about 40 s on two idle CPU cores (most of it twelve short trainings: four networks, three
            seeds each). Every training starts from a fixed seed, so a rerun on the same machine prints the same
            numbers.
            """
        ),
        code(
            """
            import warnings

            # tqdm's notice that ipywidgets is missing (progress bars then print as text); set before the imports.
            warnings.filterwarnings("ignore", message="IProgress not found")

            import datasets
            import matplotlib.pyplot as plt
            import numpy as np
            import torch
            import torch.nn.functional as F
            import transformers
            from torch import nn

            import hfdl
            from hfdl.data import load_digits_dataset

            # Small networks on a CPU: one thread is faster than several, whose synchronisation costs more than the work
            # they share, and the numbers do not depend on how many cores the machine has.
            torch.set_num_threads(1)
            transformers.logging.set_verbosity_error()
            datasets.disable_progress_bars()
            print(f"hfdl {hfdl.__version__}, torch {torch.__version__}")
            """
        ),
        md(
            """
            ## 1. Convolution by hand

            A convolution layer slides a small kernel over the image and, at every position, takes the dot product of
            the kernel with the patch under it (deep learning libraries compute this cross-correlation and call it
            convolution: the kernel is not flipped, which changes nothing once the kernel is learned). With
            `C_out` kernels of shape `C_in x k x k` the output has `C_out` channels, and its side is

            `out = floor((in + 2 * padding - k) / stride) + 1`

            Below, the same convolution is written twice: with an explicit loop over output positions (the
            definition), and with `F.unfold` ("im2col"), which copies every patch into a column so that the whole
            layer becomes one matrix product: how libraries run convolutions on fast matrix-multiply kernels. Both
            are checked against `nn.Conv2d` with its own weights, for several kernels, strides and paddings
            (differences are float32 rounding: the sums are added in another order).
            """
        ),
        code(
            """
            def conv_output_size(size, kernel, stride=1, padding=0):
                \"\"\"Side of a convolution's (or pooling's) output: windows that fit in the padded input.\"\"\"
                return (size + 2 * padding - kernel) // stride + 1


            def conv2d_loop(x, weight, bias=None, stride=1, padding=0):
                \"\"\"The definition: at each output position, the dot product of every kernel with the patch under it.\"\"\"
                batch, _, height, width = x.shape
                out_channels, _, kernel, _ = weight.shape
                out_height = conv_output_size(height, kernel, stride, padding)
                out_width = conv_output_size(width, kernel, stride, padding)
                x = F.pad(x, (padding, padding, padding, padding))
                out = x.new_zeros(batch, out_channels, out_height, out_width)
                for row in range(out_height):
                    for col in range(out_width):
                        patch = x[:, :, row * stride : row * stride + kernel, col * stride : col * stride + kernel]
                        out[:, :, row, col] = torch.einsum("bchw,ochw->bo", patch, weight)  # (B, C_in, k, k) . kernels
                return out if bias is None else out + bias.view(1, -1, 1, 1)


            def conv2d_unfold(x, weight, bias=None, stride=1, padding=0):
                \"\"\"im2col: every patch becomes a column of C_in * k * k numbers, and the layer one matrix product.\"\"\"
                batch, _, height, width = x.shape
                out_channels, _, kernel, _ = weight.shape
                columns = F.unfold(x, kernel, padding=padding, stride=stride)  # (B, C_in * k * k, positions)
                out = weight.view(out_channels, -1) @ columns  # (C_out, C_in * k * k) @ (...) -> (B, C_out, positions)
                out = out.view(
                    batch,
                    out_channels,
                    conv_output_size(height, kernel, stride, padding),
                    conv_output_size(width, kernel, stride, padding),
                )
                return out if bias is None else out + bias.view(1, -1, 1, 1)


            torch.manual_seed(0)
            x = torch.randn(2, 3, 11, 11)  # a batch of two 3-channel 11x11 images
            for kernel, stride, padding in [(3, 1, 1), (5, 1, 0), (3, 2, 1), (4, 3, 2)]:
                conv = nn.Conv2d(3, 4, kernel, stride=stride, padding=padding)
                with torch.no_grad():
                    reference = conv(x)
                    by_loop = conv2d_loop(x, conv.weight, conv.bias, stride, padding)
                    by_unfold = conv2d_unfold(x, conv.weight, conv.bias, stride, padding)
                assert by_loop.shape == by_unfold.shape == reference.shape
                assert torch.allclose(by_loop, reference, atol=1e-5) and torch.allclose(by_unfold, reference, atol=1e-5)
                print(
                    f"k={kernel} stride={stride} padding={padding}: formula gives "
                    f"{conv_output_size(11, kernel, stride, padding)}, nn.Conv2d {tuple(reference.shape)}; "
                    f"max |difference| loop {(by_loop - reference).abs().max():.1e}, "
                    f"unfold {(by_unfold - reference).abs().max():.1e}"
                )
            """
        ),
        md(
            """
            Why convolutions rather than fully connected layers on images: the same small kernel is used at every
            position (**weight sharing**), so a layer's parameters do not grow with the image, and a stroke is
            detected wherever it appears (translation **equivariance**: shift the input and the output shifts with
            it). Each output also depends only on a small neighbourhood (**local connectivity**), matching the
            structure of images, whose nearby pixels are related.
            """
        ),
        code(
            """
            conv = nn.Conv2d(3, 16, 3, padding=1)
            dense = nn.Linear(3 * 32 * 32, 16 * 32 * 32, device="meta")  # the same map as a dense layer (not allocated)
            print(
                f"3x32x32 -> 16x32x32: convolution {sum(p.numel() for p in conv.parameters()):,} parameters, "
                f"fully connected {sum(p.numel() for p in dense.parameters()):,}"
            )

            shift = 2  # equivariance: shifting the input shifts the output (away from the zero-padded border)
            shifted = torch.roll(x, shifts=shift, dims=3)
            with torch.no_grad():
                moved = torch.roll(conv(x), shifts=shift, dims=3)
                output_of_shifted = conv(shifted)
            inner = slice(shift + 1, -1)  # the columns no border or wrapped-around pixel reaches
            print(
                "conv(shift(x)) == shift(conv(x)) inside the border:",
                torch.allclose(output_of_shifted[..., inner], moved[..., inner], atol=1e-6),
            )
            """
        ),
        md(
            """
            ## The data

            Each architecture's image processor (grayscale, resize, scale to [-1, 1]) runs once over every split; the
            8x8 digits are resized to 16x16, the smallest side LeNet-5's 5x5 convolutions and poolings accept. Two
            hand-made 3x3
            kernels (Sobel filters, the classic edge detectors) convolved with a digit by `conv2d_loop` show what a
            first-layer filter computes: strong responses where the stroke's edges run in the kernel's direction (red
            where the image brightens to the right or downwards, blue where it darkens). Without padding the 16x16
            digit gives 14x14 maps, as the formula says.
            """
        ),
        code(
            """
            digits = load_digits_dataset()
            images = {split: [np.asarray(image) for image in digits[split]["image"]] for split in ("train", "test")}
            labels = {split: torch.tensor(digits[split]["label"]) for split in ("train", "test")}
            IMAGE_SIZE = 16


            def pixel_values_for(config):
                \"\"\"Every split through the image processor matching `config` (grayscale, `config.image_size`).\"\"\"
                processor = hfdl.get_architecture(config.model_type).make_image_processor(config)
                return {split: processor(images[split], return_tensors="pt")["pixel_values"] for split in images}


            print({split: len(images[split]) for split in images}, "digits of", images["train"][0].shape, "pixels")

            digit = pixel_values_for(hfdl.create_model("lenet5-modern", image_size=IMAGE_SIZE).config)["test"][:1]
            sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
            kernels = torch.stack([sobel, sobel.T]).unsqueeze(1)  # (2, 1, 3, 3): vertical and horizontal edges
            edges = conv2d_loop(digit, kernels)[0]  # (2, 14, 14)
            fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6))
            for axis, picture, title in zip(
                axes, (digit[0, 0], *edges), ("digit, 16x16", "vertical edges, 14x14", "horizontal edges, 14x14")
            ):
                if title.startswith("digit"):
                    axis.imshow(picture, cmap="gray")
                else:  # white is 0: red and blue are responses of opposite signs
                    axis.imshow(picture, cmap="RdBu_r", vmin=-picture.abs().max(), vmax=picture.abs().max())
                axis.set_title(title, fontsize=10)
                axis.axis("off")
            plt.show()
            """
        ),
        md(
            """
            ## 2. Pooling by hand

            Pooling summarises each window of a feature map by its maximum (or mean), channel by channel, with no
            parameters. A 2x2 window every 2 pixels halves the side: the following layers cost four times less, and
            their kernels cover twice as much of the image (section 3). Max pooling keeps the strongest response in
            each window, so a feature that moves by a pixel inside its window gives the same output: a little
            translation *invariance* on top of the convolutions' equivariance. AlexNet used overlapping 3x3 windows
            every 2 pixels; ResNet replaced most pooling by stride-2 convolutions, which learn how to downsample.

            By hand, `unfold` again gathers the windows, and a max or mean over each one is the pooling.
            """
        ),
        code(
            """
            def pool2d_by_hand(x, kernel, stride, reduce):
                \"\"\"Gather every kernel x kernel window with unfold, then reduce it (`torch.amax` or `torch.mean`).\"\"\"
                batch, channels, height, width = x.shape
                windows = F.unfold(x, kernel, stride=stride).view(batch, channels, kernel * kernel, -1)
                pooled = reduce(windows, dim=2)
                return pooled.view(
                    batch, channels, conv_output_size(height, kernel, stride), conv_output_size(width, kernel, stride)
                )


            small = torch.tensor(
                [[1.0, 3.0, 2.0, 0.0], [4.0, 6.0, 1.0, 1.0], [0.0, 2.0, 9.0, 7.0], [3.0, 1.0, 5.0, 8.0]]
            )
            print("input:", small.tolist())
            print("2x2 max pooling:", pool2d_by_hand(small.view(1, 1, 4, 4), 2, 2, torch.amax)[0, 0].tolist())
            print("2x2 mean pooling:", pool2d_by_hand(small.view(1, 1, 4, 4), 2, 2, torch.mean)[0, 0].tolist())

            x = torch.randn(2, 4, 9, 9, generator=torch.Generator().manual_seed(0))
            for name, module, kernel, stride, reduce in [
                ("nn.MaxPool2d(2)", nn.MaxPool2d(2), 2, 2, torch.amax),
                ("nn.MaxPool2d(3, stride=2)", nn.MaxPool2d(3, stride=2), 3, 2, torch.amax),  # AlexNet's, overlapping
                ("nn.AvgPool2d(2)", nn.AvgPool2d(2), 2, 2, torch.mean),
            ]:
                ours, reference = pool2d_by_hand(x, kernel, stride, reduce), module(x)
                print(
                    f"{name:<26} {tuple(x.shape)} -> {tuple(reference.shape)}, "
                    f"max |difference| {(ours - reference).abs().max():.1e}"
                )
            """
        ),
        md(
            """
            ## 3. Receptive fields

            The receptive field of a unit is the patch of the input it depends on. Walking the layers in order, with
            `jump` the distance in input pixels between neighbouring units of the current layer (the product of the
            strides so far):

            `field += (kernel - 1) * jump`, then `jump *= stride`

            Stride and pooling make the fields grow fast: after a stride-2 layer, every later kernel's step covers two
            input pixels. **VGG's argument** (Simonyan & Zisserman, 2015): three stacked 3x3 convolutions see a 7x7
            patch, like one 7x7 convolution, with 27·C² weights instead of 49·C² (C channels in and out) and three
            nonlinearities instead of one. The field is checked by measuring it: with every weight set to 1, the
            gradient of the centre output with respect to the input counts the paths from each input pixel to it,
            and is non-zero exactly on the receptive field.
            """
        ),
        code(
            """
            def receptive_fields(layers):
                \"\"\"`(name, kernel, stride)` of each sliding layer, in order -> `(name, field, jump)` after each.\"\"\"
                field, jump, rows = 1, 1, []
                for name, kernel, stride in layers:
                    field += (kernel - 1) * jump
                    jump *= stride
                    rows.append((name, field, jump))
                return rows


            def influence(stack, size=15):
                \"\"\"With all weights 1, the gradient of the centre output pixel: paths from each input pixel to it.\"\"\"
                for conv in stack:
                    nn.init.ones_(conv.weight)
                    nn.init.zeros_(conv.bias)
                image = torch.zeros(1, 1, size, size, requires_grad=True)
                stack(image)[0, 0, size // 2, size // 2].backward()
                return image.grad[0, 0]


            channels = 64
            three_3x3 = nn.Sequential(*(nn.Conv2d(channels, channels, 3, padding=1) for _ in range(3)))
            one_7x7 = nn.Conv2d(channels, channels, 7, padding=3)
            maps = {
                "three 3x3": influence(nn.Sequential(*(nn.Conv2d(1, 1, 3, padding=1) for _ in range(3)))),
                "one 7x7": influence(nn.Sequential(nn.Conv2d(1, 1, 7, padding=3))),
            }
            for (name, module), layers in zip(
                [("three 3x3", three_3x3), ("one 7x7", one_7x7)], [[("3x3", 3, 1)] * 3, [("7x7", 7, 1)]]
            ):
                rows, columns = maps[name].nonzero().unbind(1)
                print(
                    f"{name}: {sum(p.numel() for p in module.parameters()):,} parameters at {channels} channels, "
                    f"receptive field {receptive_fields(layers)[-1][1]} computed, "
                    f"{rows.max() - rows.min() + 1}x{columns.max() - columns.min() + 1} measured"
                )

            fig, axes = plt.subplots(1, 2, figsize=(6.5, 3))
            for axis, (name, grad) in zip(axes, maps.items()):
                shown = axis.imshow(grad, cmap="viridis")
                axis.set_title(f"{name}: paths to the centre", fontsize=10)
                axis.axis("off")
                fig.colorbar(shown, ax=axis, fraction=0.046)
            plt.show()
            """
        ),
        md(
            """
            The stack's field is as wide, but not flat: the centre pixel reaches the output through 7^2 = 49 paths,
            the corners through one. Trained networks show the same concentration: their *effective* receptive
            field is roughly Gaussian and smaller than the theoretical one (Luo et al., 2016).

            The layers of a real network can be read off the network itself: forward hooks record every convolution
            and pooling in the order the forward pass runs them. On the `meta` device no weight is allocated, so this
            works for the 133M-parameter VGG-11 and ResNet-18 at 224x224 as fast as for a toy. ResNet's 1x1 shortcut
            convolutions run beside the main path and are left out: the field is that of the longest path.
            """
        ),
        code(
            """
            SLIDING = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


            def trace(model):
                \"\"\"Run one blank image through `model` (left in eval mode); return `(name, module, output shape)` of
                every convolution, pooling and linear layer, in the order the forward pass calls them.\"\"\"
                calls = []
                hooks = [
                    module.register_forward_hook(
                        lambda module, args, output, name=name: calls.append((name, module, output.shape))
                    )
                    for name, module in model.named_modules()
                    if isinstance(module, (*SLIDING, nn.Linear))
                ]
                config = model.config
                try:
                    with torch.no_grad():
                        model.eval()(
                            pixel_values=torch.zeros(
                                1, config.num_channels, config.image_size, config.image_size, device=model.device
                            )
                        )
                finally:
                    for hook in hooks:
                        hook.remove()
                return calls


            def side(value):
                \"\"\"A square kernel's or stride's side, stored as an int (pooling) or a pair (convolution).\"\"\"
                return value if isinstance(value, int) else value[0]


            def part_of(name):
                \"\"\"`stem` or `stages.N`, the part of the network a layer is in (`vgg.stages.0.pool` -> `stages.0`).\"\"\"
                parts = name.split(".")[1:]
                return "stem" if parts[0] == "stem" else ".".join(parts[:2])


            def sliding_layers(model):
                \"\"\"`(name, kernel, stride)` of the convolutions and poolings on the main path (shortcuts left out).\"\"\"
                return [
                    (name, side(module.kernel_size), side(module.stride))
                    for name, module, _ in trace(model)
                    if isinstance(module, SLIDING) and "shortcut" not in name
                ]


            growth = {}
            for preset in ("vgg11", "resnet18"):
                with torch.device("meta"):
                    big = hfdl.create_model(preset)
                growth[preset] = receptive_fields(sliding_layers(big))
                print(f"{preset} ({big.num_parameters():,} parameters, 224x224 input), at the end of each part:")
                at_end = {part_of(name): (field, jump) for name, field, jump in growth[preset]}  # the last layer wins
                for part, (field, jump) in at_end.items():
                    print(f"  {part:<9} receptive field {field:>3} px, one unit every {jump:>2} px")

            plt.figure(figsize=(7.5, 4))
            for preset, rows in growth.items():
                plt.plot(range(1, len(rows) + 1), [field for _, field, _ in rows], marker=".", label=preset)
            plt.axhline(224, color="gray", linestyle="--", linewidth=1, label="input side (224)")
            plt.gca().xaxis.set_major_locator(plt.MaxNLocator(integer=True))
            plt.xlabel("convolution or pooling layer, in order")
            plt.ylabel("receptive field (px)")
            plt.title("Receptive field growth")
            plt.legend()
            plt.show()
            """
        ),
        md(
            """
            In VGG-11 each 3x3 convolution adds two jumps to the field and each pooling doubles the jump: its last
            units see 150 pixels. ResNet-18 starts with a 7x7 stride-2 convolution and a stride-2 pooling (the
            stem: a unit every 4 pixels from the start), and its deeper stack of 3x3 convolutions takes the field
            past the whole 224-pixel image. The global average pooling that follows mixes all positions anyway; the
            field says how much context each position's features carry before it.

            ## 4. LeNet-5 -> AlexNet -> VGG -> ResNet on the same digits

            Four presets of the registry, each built with `hfdl.create_model(preset, **overrides)`, and trained the
            same way: Adam at 3e-3, batches of 64, 8 epochs, from three seeds (a seed fixes both the initial
            weights and the order of the batches, the same for every network). What each design added:

            * **LeNet-5** (1998): two convolution + pooling stages, then fully connected layers.
            * **AlexNet** (2012): deeper (five convolutions), ReLU, overlapping max pooling, dropout in wide fully
              connected layers.
            * **VGG** (2015): only 3x3 convolutions, stacked in stages that end in 2x2 max pooling (and, in the
              `-bn` variants, batch normalisation after every convolution).
            * **ResNet** (2016): residual blocks `relu(F(x) + x)`, batch norm, stride-2 convolutions and a global
              average pooling instead of wide fully connected layers.

            What was shrunk so that each trains in seconds on a CPU (inputs are 16x16, one channel, 10 classes):
            `lenet5-modern` only gets the 16x16 input (its second pooling then leaves 1x1 maps); `alexnet-small`
            (already AlexNet's shape for 32 px grayscale) gets half its convolution channels, 128-wide hidden layers
            instead of 512, a 1x1 adaptive pooling (its maps are 1x1 at 16 px) and dropout 0.1 instead of 0.5 (too
            strong for such narrow layers); `vgg11-bn` keeps VGG-11's first four stages (a fifth 2x2 pooling needs
            32 px) at 8/16/32/32 channels instead of 64/128/256/512, with 128-wide hidden layers instead of 4,096
            and dropout 0.1;
            `resnet20-cifar` (the paper's 20-layer CIFAR network) runs at half width, 8/16/32 channels.
            """
        ),
        code(
            """
            PRESETS = {
                "lenet5-modern": {"image_size": IMAGE_SIZE},
                "alexnet-small": {
                    "image_size": IMAGE_SIZE,
                    "conv_channels": [16, 32, 64, 64, 32],
                    "adaptive_pool_size": 1,
                    "hidden_sizes": [128, 128],
                    "dropout": 0.1,
                },
                "vgg11-bn": {
                    "image_size": IMAGE_SIZE,
                    "num_channels": 1,
                    "num_labels": 10,
                    "stage_channels": [8, 16, 32, 32],
                    "stage_depths": [1, 1, 2, 2],
                    "pooled_size": 1,
                    "hidden_sizes": [128, 128],
                    "dropout": 0.1,
                },
                "resnet20-cifar": {
                    "image_size": IMAGE_SIZE,
                    "num_channels": 1,
                    "stem_channels": 8,
                    "stage_channels": [8, 16, 32],
                },
            }


            def train(model, pixel_values, targets, num_epochs=8, batch_size=64, seed=0):
                \"\"\"Adam on mini-batches of the cross-entropy the model computes from `labels`, shuffled by `seed`.\"\"\"
                optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
                generator = torch.Generator().manual_seed(seed)
                model.train()
                for _ in range(num_epochs):
                    order = torch.randperm(len(targets), generator=generator)
                    for start in range(0, len(targets), batch_size):
                        batch = order[start : start + batch_size]
                        loss = model(pixel_values=pixel_values[batch], labels=targets[batch]).loss
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                return model.eval()


            @torch.no_grad()
            def accuracy(model, pixel_values, targets):
                return (model(pixel_values=pixel_values).logits.argmax(-1) == targets).float().mean().item()


            def multiply_adds(model):
                \"\"\"Multiply-adds of one image through the convolutions and linear layers (the bulk of the compute).\"\"\"
                total = 0
                for _, module, shape in trace(model):
                    if isinstance(module, nn.Conv2d):
                        total += shape.numel() * module.in_channels // module.groups * side(module.kernel_size) ** 2
                    elif isinstance(module, nn.Linear):
                        total += shape.numel() * module.in_features
                return total


            SEEDS = (0, 1, 2)
            models, pixels, results = {}, {}, {}
            for preset, overrides in PRESETS.items():
                accuracies = []
                for seed in SEEDS:
                    torch.manual_seed(seed)  # the initial weights; `train` draws the batches from the same seed
                    model = hfdl.create_model(preset, **overrides)
                    if preset not in pixels:
                        pixels[preset] = pixel_values_for(model.config)
                    train(model, pixels[preset]["train"], labels["train"], seed=seed)
                    accuracies.append(accuracy(model, pixels[preset]["test"], labels["test"]))
                    models.setdefault(preset, model)  # the seed-0 network, for section 5
                model = models[preset]
                conv_parameters = sum(
                    sum(p.numel() for p in m.parameters()) for m in model.modules() if isinstance(m, nn.Conv2d)
                )
                results[preset] = {
                    "conv layers": sum(
                        isinstance(m, nn.Conv2d) and "shortcut" not in n for n, m in model.named_modules()
                    ),
                    "parameters": model.num_parameters(),
                    "in convolutions": conv_parameters / model.num_parameters(),
                    "multiply-adds": multiply_adds(model),
                    "receptive field": receptive_fields(sliding_layers(model))[-1][1],
                    "accuracies": np.array(accuracies),
                }
            same = all(torch.equal(pixels[preset]["test"], pixels["lenet5-modern"]["test"]) for preset in PRESETS)
            print("every model sees the same pixel values:", same)

            header = f"{'preset':<15}{'convs':>6}{'parameters':>12}{'in convs':>10}{'mult-adds':>11}{'field':>8}"
            print(f"{header}  test accuracy")
            for preset, row in results.items():
                accuracies = row["accuracies"]
                print(
                    f"{preset:<15}{row['conv layers']:>6}{row['parameters']:>12,}{row['in convolutions']:>10.0%}"
                    f"{row['multiply-adds']:>11,}{row['receptive field']:>5} px  {accuracies.mean():.3f} "
                    f"[{accuracies.min():.3f}, {accuracies.max():.3f}]"
                )
            """
        ),
        md(
            """
            Columns: convolution layers on the main path, parameters and the share of them in convolutions,
            multiply-adds for one image, receptive field of the last convolution or pooling layer, and test accuracy:
            the mean over the three seeds [lowest, highest]. The plots show the same accuracies (error bars: lowest
            to highest) against parameters and against compute, both on log scales.
            """
        ),
        code(
            """
            fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
            for axis, key in zip(axes, ("parameters", "multiply-adds")):
                for preset, row in results.items():
                    accuracies = row["accuracies"]
                    mean = accuracies.mean()
                    spread = [[mean - accuracies.min()], [accuracies.max() - mean]]
                    axis.errorbar(row[key], mean, yerr=spread, fmt="o", markersize=8, capsize=4, label=preset)
                axis.set_xscale("log")
                axis.set_xlabel(f"{key} per image (log scale)" if key == "multiply-adds" else f"{key} (log scale)")
                axis.grid(alpha=0.3)
            axes[0].set_ylabel(f"test accuracy (mean of {len(SEEDS)} seeds)")
            axes[0].set_title("Accuracy against parameters")
            axes[1].set_title("Accuracy against compute")
            axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
            plt.show()
            """
        ),
        md(
            """
            All four networks land within a few points of each other, and the spread between seeds (the brackets)
            is of the same order as the gaps between networks: one test image is 0.28 points of accuracy, and 1,437
            training images of 8x8 digits are too few and too easy to rank designs that were built for ImageNet's
            1.2 million 224x224 photographs. What the table does show is how each design spends its budget:

            * **Parameters are not compute.** A fully connected weight is used once per image, a convolution weight
              at every position of its feature map. ResNet-20 has fewer parameters than AlexNet but does the most
              multiply-adds: its small stem keeps the full 16x16 resolution through the whole first stage.
            * **Where the parameters live.** LeNet-5 keeps most of its parameters in its fully connected layers.
              The shrunken AlexNet and VGG have 128-wide hidden layers instead of 4,096, which hides how much of the
              real networks sits there; ResNet has a single linear layer after a global average pooling, so nearly
              all its parameters are convolutions.
            * **Receptive field.** LeNet-5's last units see exactly the 16x16 input; the units of the deeper
              networks see past its borders, so every position of their last maps can gather evidence from the whole
              digit.

            The presets at their ImageNet size (built on the `meta` device, so nothing is allocated) show the real
            proportions:
            """
        ),
        code(
            """
            print(f"{'224x224, 1000 classes':<22}{'parameters':>13}{'in linear layers':>18}{'mult-adds':>16}")
            for preset in ("alexnet-imagenet", "vgg16", "resnet50"):
                with torch.device("meta"):
                    big = hfdl.create_model(preset)
                linear = sum(sum(p.numel() for p in m.parameters()) for m in big.modules() if isinstance(m, nn.Linear))
                print(
                    f"{preset:<22}{big.num_parameters():>13,}{linear / big.num_parameters():>18.0%}"
                    f"{multiply_adds(big):>16,}"
                )
            """
        ),
        md(
            """
            AlexNet and VGG-16 keep most of their parameters in three fully connected layers; ResNet-50, with 50
            layers, has a fraction of VGG-16's parameters and of its compute. Dropping the wide fully connected
            layers (an idea of Network in Network and GoogLeNet before ResNet) is what made deep networks cheap to
            store; batch normalisation and the residual connections are what made them trainable.

            ## 5. Filters and feature maps of the trained networks

            The first layer's kernels are applied directly to pixels, so they can be shown as images. LeNet-5's six
            5x5 kernels are the largest here. Some look like oriented light-to-dark transitions, edge detectors like
            the Sobel kernels of section 1, and their feature maps (below each) light up along one side of the
            strokes. Trained for seconds on upsampled 8x8 digits they stay noisy; on ImageNet, AlexNet's first layer
            learned clean oriented edges and colour blobs (Krizhevsky et al., 2012, figure 3).
            """
        ),
        code(
            """
            lenet = models["lenet5-modern"]
            digit = pixels["lenet5-modern"]["test"][:1]
            with torch.no_grad():
                lenet_outputs = lenet(pixel_values=digit, output_hidden_states=True)
            filters = lenet.lenet5.stage1.conv.weight.detach()[:, 0]  # (6, 5, 5)
            c1_maps = lenet_outputs.hidden_states[0][0]  # (6, 12, 12)
            print("C1 filters", tuple(filters.shape), "-> feature maps", tuple(c1_maps.shape))

            fig, axes = plt.subplots(2, 7, figsize=(11, 3.4))
            axes[0, 0].imshow(digit[0, 0], cmap="gray")
            axes[0, 0].set_title(f"digit {labels['test'][0].item()}", fontsize=9)
            for index, (kernel, feature_map) in enumerate(zip(filters, c1_maps), start=1):
                limit = kernel.abs().max()
                axes[0, index].imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
                axes[0, index].set_title(f"filter {index}", fontsize=9)
                axes[1, index].imshow(feature_map, cmap="magma")
                axes[1, index].set_title(f"map {index}", fontsize=9)
            for axis in axes.flat:
                axis.axis("off")
            plt.show()
            """
        ),
        md(
            """
            Deeper layers are easier to read through their feature maps. ResNet-20 returns the output of its stem and
            of each stage (`output_hidden_states=True`): the side halves from stage to stage while the channels
            double, so each position summarises a wider patch (section 3) in more features, and more abstract ones:
            the 4x4 maps of the last stage no longer look like the digit at all. Below, the first six channels of
            each. The bright frames of the early maps come from the zero padding: after normalisation the digit's
            background is -1, so the border is an edge the network sees.
            """
        ),
        code(
            """
            resnet = models["resnet20-cifar"]
            with torch.no_grad():
                hidden_states = resnet(pixel_values=digit, output_hidden_states=True).hidden_states
            names = resnet.config.stage_names
            for name, state in zip(names, hidden_states):
                print(f"{name:>7}: {tuple(state.shape[1:])}")

            fig, axes = plt.subplots(len(names), 6, figsize=(7.5, 5.2))
            for row, (name, state) in enumerate(zip(names, hidden_states)):
                for column in range(6):
                    axes[row, column].imshow(state[0, column], cmap="magma")
                    axes[row, column].set_xticks([])
                    axes[row, column].set_yticks([])
                axes[row, 0].set_ylabel(f"{name}\\n{state.shape[-1]}x{state.shape[-1]}", fontsize=9)
            plt.show()
            """
        ),
        md(
            """
            ## Next

            * `recipes/train_image_classifier.py` trains any of these presets with Accelerate on the digits, MNIST or
              a Hub data set (`--model resnet20-cifar --config_overrides '{"num_channels": 1}'` takes the same
              overrides as `create_model`) and writes a Hub-ready checkpoint.
            * At full width and 224x224, `hfdl.create_model("vgg16-bn")` and `hfdl.create_model("resnet50")` have
              the layouts (and parameter counts) of torchvision's ImageNet models.
            """
        ),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def transformers_text() -> nbformat.NotebookNode:
    """Course chapter 9: attention by hand, positions, masks, a masked-LM encoder and a char GPT, attention maps."""
    cells = [
        md(
            """
            # Transformers for text with hfdl (chapter 9)

            This notebook opens up the transformer of chapter 9 with the `hfdl` library and then trains two tiny ones:

            1. **Self-attention by hand** from a layer's own weights, equal to the hfdl module.
            2. **Multi-head shapes**: (batch, heads, length, head_dim), step by step.
            3. **Positions**: the sinusoidal table, and why rotary scores depend only on distance.
            4. **Masks**: padding and causal masks, and why padding does not change a sentence's outputs.
            5. **Masked language modelling**: a 4-layer BERT-style encoder (`bert-course`) trained on movie-review
               sentences with a WordPiece tokenizer, then queried through `pipeline("fill-mask")`.
            6. **Sampling temperature** with a character-level GPT (`gpt-char`) trained on tiny-shakespeare.
            7. **Attention maps** of both trained models.

            Data: the MR movie-review sentences (Pang & Lee, 2005) and tiny-shakespeare, read from `../shared/data`
            (on the Hub: `datasets.load_dataset("cornell-movie-review-data/rotten_tomatoes")` and
            `karpathy/tiny_shakespeare`). Everything runs offline in about two minutes on two CPU cores; the two
            trainings take most of it and are far too short for good models -- they are here to show what training
            changes, not to reach the paper's numbers. Every random draw is seeded, so a rerun prints the same numbers.
            """
        ),
        code(
            """
            import warnings

            # tqdm's notice that ipywidgets is missing (progress bars then print as text); set before the imports.
            warnings.filterwarnings("ignore", message="IProgress not found")

            import math
            import time
            from pathlib import Path

            import matplotlib.pyplot as plt
            import numpy as np
            import torch
            import torch.nn.functional as F
            import transformers
            from torch.utils.data import DataLoader
            from transformers import DataCollatorForLanguageModeling, pipeline

            import hfdl
            from hfdl.layers.hfdl_attention import apply_rotary, make_attention_mask, rotary_cos_sin, sinusoidal_embeddings
            from hfdl.tokenization import train_tokenizer

            # Tiny models on a CPU: one thread is faster than several (whose synchronisation costs more than the work
            # they share), and the numbers then do not depend on how many cores the machine has.
            torch.set_num_threads(1)
            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            DATA = Path("../../shared/data")  # `../shared/data` seen from the repository root; this runs in notebooks/
            print(f"hfdl {hfdl.__version__}, torch {torch.__version__}, transformers {transformers.__version__}")
            """
        ),
        md(
            """
            ## 1. Self-attention by hand

            Each token's vector $x_i$ is projected to a query $q_i$, a key $k_i$ and a value $v_i$. The output for
            token $i$ is an average of all values, weighted by how well $q_i$ matches each key:

            $$\\mathrm{Attention}(Q, K, V) = \\mathrm{softmax}\\!\\left(\\frac{QK^\\top}{\\sqrt{d}}\\right) V$$

            The $\\sqrt{d}$ keeps the scores' spread independent of the head size $d$, so the softmax does not
            saturate in wide heads. hfdl's `MultiHeadSelfAttention` computes Q, K and V with **one** fused linear
            layer, `qkv`, whose weight rows are $[W_Q; W_K; W_V]$: one matrix product instead of three. Below, the
            first attention layer of a freshly initialised `bert-course` encoder (4 layers, width 128, 4 heads) is
            recomputed from its own weights with nothing but matrix products and a softmax.
            """
        ),
        code(
            """
            torch.manual_seed(0)
            encoder = hfdl.create_model("bert-course", task="feature-extraction").eval()
            attention = encoder.layers[0].attention
            hidden = encoder.config.hidden_size
            heads, head_dim = attention.num_heads, attention.head_dim
            x = torch.randn(2, 6, hidden)  # a batch of 2 "sentences" of 6 token vectors


            def split_heads(t):
                # (batch, length, hidden) -> (batch, heads, length, head_dim): each head sees its own slice of features
                return t.view(t.shape[0], t.shape[1], heads, head_dim).transpose(1, 2)


            with torch.no_grad():
                module_output, module_weights = attention(x, output_attentions=True)  # computes the weights explicitly
                fused_output, _ = attention(x)  # the default path: PyTorch's fused scaled_dot_product_attention

                q, k, v = F.linear(x, attention.qkv.weight, attention.qkv.bias).split(hidden, dim=-1)
                q, k, v = split_heads(q), split_heads(k), split_heads(v)
                weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(head_dim), dim=-1)
                context = (weights @ v).transpose(1, 2).reshape(x.shape)  # heads side by side again
                by_hand = attention.out(context)  # the output projection mixes the heads

            eager_difference = (by_hand - module_output).abs().max().item()
            fused_difference = (by_hand - fused_output).abs().max().item()
            weight_difference = (weights - module_weights).abs().max().item()
            print(
                f"max abs difference to the module: outputs {eager_difference:.1e} (explicit path), "
                f"{fused_difference:.1e} (fused kernel); attention weights {weight_difference:.1e}"
            )
            print("each row of weights sums to 1:", torch.allclose(weights.sum(-1), torch.ones(2, heads, 6)))
            """
        ),
        md(
            """
            Asked for its weights (`output_attentions=True`), the module runs exactly these operations, hence the
            zeros; by default it calls PyTorch's fused `scaled_dot_product_attention` instead, which never stores
            the (length x length) weights and agrees up to float32 rounding.

            ## 2. Multi-head shapes

            With `hidden_size=128` and 4 heads, each head works in a 32-dimensional subspace. The heads are not
            separate layers: they are a reshape. The fused projection gives 3 x 128 features per token; viewing them
            as (3, heads, head_dim) and moving the head axis in front of the length axis lets one batched matrix
            product compute every head's (length x length) score matrix at once.
            """
        ),
        code(
            """
            with torch.no_grad():
                qkv = attention.qkv(x)
            steps = [
                ("tokens x", x),
                ("qkv(x)", qkv),
                ("view (B, L, 3, H, d)", qkv.view(2, 6, 3, heads, head_dim)),
                ("query per head (B, H, L, d)", q),
                ("scores Q K^T (B, H, L, L)", q @ k.transpose(-2, -1)),
                ("weights @ V (B, H, L, d)", weights @ v),
                ("heads merged (B, L, H*d)", context),
                ("out(...) (B, L, hidden)", by_hand),
            ]
            for name, tensor in steps:
                print(f"{name:<28} {tuple(tensor.shape)}")
            parameters = sum(p.numel() for p in attention.parameters())
            print(f"attention parameters: qkv {tuple(attention.qkv.weight.shape)} + out {tuple(attention.out.weight.shape)}"
                  f" + biases = {parameters:,} (4 x 128^2 + 4 x 128), whatever the number of heads")
            """
        ),
        md(
            """
            ## 3. Positions

            Attention by itself is blind to order: permute the tokens and the outputs are permuted the same way.
            Position has to be injected.

            **Sinusoidal** (Vaswani et al., 2017): add to each token the vector $PE_{p,2i} = \\sin(p / 10000^{2i/d})$,
            $PE_{p,2i+1} = \\cos(p / 10000^{2i/d})$. Each pair of dimensions is a clock turning at its own speed:
            the first pairs turn fast (fine position), the last ones slowly (coarse position), as the table shows.
            """
        ),
        code(
            """
            positions = torch.arange(64)[None]  # (1, 64)
            table = sinusoidal_embeddings(positions, hidden)[0]  # (64, 128)
            print("table:", tuple(table.shape), "values in", (round(table.min().item(), 3), round(table.max().item(), 3)))

            fig, (left, right) = plt.subplots(1, 2, figsize=(9, 2.8))
            # 11 colour levels: enough to read the stripes, and a figure small enough to commit.
            levels = plt.get_cmap("RdBu", 11)
            image = left.imshow(table.T, aspect="auto", cmap=levels, vmin=-1, vmax=1, interpolation="nearest")
            left.set(xlabel="position p", ylabel="dimension", title="sinusoidal position table (transposed)")
            fig.colorbar(image, ax=left)
            for dim in (4, 20, 60):
                right.plot(table[:, dim], label=f"dim {dim}")
            right.set(xlabel="position p", title="a few dimensions")
            right.legend(fontsize=8, loc="lower left")
            plt.show()
            """
        ),
        md(
            """
            **Rotary** (Su et al., 2021; LLaMA and most recent decoders): instead of adding anything, rotate each
            pair of dimensions of the query and the key by an angle proportional to the token's position. A rotation
            by $m\\theta$ of $q$ and by $n\\theta$ of $k$ leaves the dot product depending on $(n - m)\\theta$ only:
            the score sees **how far apart** two tokens are, not where they are. Below, one fixed query and one
            fixed key, placed at different positions (`position_embedding_type="rotary"` in any hfdl text config
            does this in every layer).
            """
        ),
        code(
            """
            torch.manual_seed(0)
            query_vector, key_vector = torch.randn(head_dim), torch.randn(head_dim)


            def rotary_score(query_position, key_position):
                pos = torch.tensor([[query_position, key_position]])
                cos, sin = rotary_cos_sin(pos, head_dim, base=10000.0)  # (1, 1, 2, head_dim)
                both = torch.stack([query_vector, key_vector])[None, None]  # (1, 1, 2, head_dim)
                rotated = apply_rotary(both, cos, sin)[0, 0]
                return (rotated[0] @ rotated[1]).item()


            print(f"no rotation: q.k = {(query_vector @ key_vector).item():.4f}")
            for distance in (0, 3, 10):
                scores = [rotary_score(m, m + distance) for m in (0, 5, 20, 50)]
                print(f"key {distance:>2} after the query, query at 0, 5, 20, 50:", ", ".join(f"{s:.4f}" for s in scores))
            """
        ),
        md(
            """
            Each row is constant (up to float32 rounding): same distance, same score, wherever the pair sits. Across
            rows the score changes with the distance.

            ## 4. Masks

            Two masks decide which keys each query may attend to (hfdl builds them once per forward with
            `make_attention_mask`; `True` = may attend):

            * the **padding mask** hides the `[PAD]` tokens that make sentences of different lengths fit in one
              batch (from the tokenizer's `attention_mask`);
            * the **causal mask** of a decoder (GPT) hides the future: token $i$ sees tokens $0..i$ only, so a model
              trained to predict token $i+1$ cannot peek at it.

            Hidden scores are set to the most negative float before the softmax, so their weight is exactly 0.
            """
        ),
        code(
            """
            padding = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]])  # row 0: 5 tokens + 3 [PAD]
            padding_mask, _ = make_attention_mask(padding, query_length=8, past_length=0, causal=False, device="cpu")
            both_mask, _ = make_attention_mask(padding, query_length=8, past_length=0, causal=True, device="cpu")
            print("padding mask (batch, 1, 1, keys):", tuple(padding_mask.shape), "-- the same for every query")
            print("causal + padding (batch, 1, queries, keys):", tuple(both_mask.shape))
            # Without padding a causal model gets no mask tensor at all, only is_causal=True: PyTorch's fused kernel
            # then skips the future keys itself, which is faster than reading a mask.
            print("causal, no padding:", make_attention_mask(None, query_length=8, past_length=0, causal=True, device="cpu"))
            causal_mask = torch.ones(8, 8, dtype=torch.bool).tril()

            fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
            for axis, mask, title in zip(
                axes,
                (padding_mask[0, 0].expand(8, 8), causal_mask, both_mask[0, 0]),
                ("padding (row 0)", "causal", "causal + padding (row 0)"),
            ):
                axis.imshow(mask, cmap="Greens", vmin=0, vmax=1)
                axis.set(title=title, xlabel="key", ylabel="query")
            plt.show()
            """
        ),
        md(
            """
            The padding mask hides the padded *keys* (columns 5-7). The padded *queries* (rows 5-7) still get an
            output, but it belongs to a `[PAD]` token and nothing reads it. So a sentence padded inside a batch must
            give exactly the outputs it gives alone; checked below with the (untrained) encoder of section 1.
            """
        ),
        code(
            """
            torch.manual_seed(1)
            ids = torch.randint(5, encoder.config.vocab_size, (2, 8))
            ids[0, 5:] = encoder.config.pad_token_id
            with torch.no_grad():
                batched = encoder(input_ids=ids, attention_mask=padding).last_hidden_state
                alone = encoder(input_ids=ids[:1, :5]).last_hidden_state
                unmasked = encoder(input_ids=ids[:1]).last_hidden_state  # the [PAD] tokens attended to
            print(f"padded row vs alone, max abs difference: {(batched[0, :5] - alone[0]).abs().max().item():.1e}")
            print(f"without the padding mask: {(unmasked[0, :5] - alone[0]).abs().max().item():.3f}")
            """
        ),
        md(
            """
            ## 5. Masked language modelling (BERT)

            BERT learns from raw text by filling in blanks: pick some tokens, replace most of them by `[MASK]` (80 %;
            10 % by a random token, 10 % unchanged, so the model cannot rely on seeing `[MASK]`), and train the
            encoder to predict the originals from **both** sides of the context. `DataCollatorForLanguageModeling`
            does the picking per batch and sets `labels` to -100 (ignored) everywhere else.

            The corpus: the 10,662 MR movie-review sentences (lower-cased, latin-1). First a WordPiece tokenizer with
            a 1,000-token vocabulary (`bert-course`'s size): frequent words stay whole, rarer ones split into pieces
            marked `##`.
            """
        ),
        code(
            """
            sentences = []
            for name in ("rt-polarity.pos", "rt-polarity.neg"):
                text = (DATA / "rt-polarity" / name).read_text(encoding="latin-1")
                sentences += [line.strip() for line in text.split("\\n") if line.strip()]
            wordpiece = train_tokenizer(sentences, kind="wordpiece", vocab_size=1000, model_max_length=128)
            print(f"{len(sentences):,} sentences; vocabulary: {len(wordpiece):,} tokens")
            print(sentences[3])
            print(wordpiece.tokenize(sentences[3]))
            """
        ),
        md(
            """
            The training is kept to about a minute, which calls for two choices that a real run would not need:

            * sentences are cut to 16 tokens and batched 128 at a time, which is cheap per step;
            * 40 % of the tokens are masked instead of BERT's 15 %: with so few steps, more targets per batch means
              more signal, and Wettig et al. (2023, *Should You Mask 15% in Masked Language Modeling?*) found 40 %
              works as well or better.

            A masked LM first learns the unigram distribution (predict `the`, `,` or `.` everywhere: a loss near
            the unigram entropy) and only then starts to use the context; the loss below is leaving that plateau.
            """
        ),
        code(
            """
            torch.manual_seed(0)
            mlm_model = hfdl.create_model("bert-course", task="fill-mask", vocab_size=len(wordpiece))
            encoded = wordpiece(sentences, truncation=True, max_length=16)["input_ids"]
            collator = DataCollatorForLanguageModeling(wordpiece, mlm_probability=0.4)
            loader = DataLoader(
                [{"input_ids": ids} for ids in encoded],
                batch_size=128,
                shuffle=True,
                collate_fn=collator,
                generator=torch.Generator().manual_seed(0),
            )
            counts = torch.bincount(torch.tensor([i for ids in encoded for i in ids[1:-1]]), minlength=len(wordpiece))
            unigram = counts[counts > 0] / counts.sum()
            print(f"{mlm_model.num_parameters():,} parameters; unigram entropy of the corpus: "
                  f"{-(unigram * unigram.log()).sum().item():.2f} nats")

            steps = 350
            optimizer = torch.optim.AdamW(mlm_model.parameters(), lr=2e-3, weight_decay=0.01)
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps, pct_start=0.05)
            mlm_model.train()
            start, step, losses = time.perf_counter(), 0, []
            while step < steps:
                for batch in loader:
                    loss = mlm_model(**batch).loss
                    loss.backward()
                    optimizer.step()
                    optimizer.zero_grad()
                    schedule.step()
                    losses.append(loss.item())
                    step += 1
                    if step % 50 == 0:
                        print(f"step {step:>3}: masked-token loss {np.mean(losses[-50:]):.3f}")
                    if step == steps:
                        break
            mlm_model.eval()
            print(f"trained in {time.perf_counter() - start:.0f} s")
            """
        ),
        md(
            """
            The trained model plugs into `transformers.pipeline` like any Hub model: the pipeline tokenizes, finds
            the `[MASK]`, runs the model and ranks the vocabulary by probability.
            """
        ),
        code(
            """
            fill_mask = pipeline("fill-mask", model=mlm_model, tokenizer=wordpiece)
            probes = [
                "the movie is [MASK] .",
                "one of the best [MASK] of the year .",
                "the acting is good , but the [MASK] is a mess .",
                "a [MASK] and moving story .",
            ]
            for sentence in probes:
                guesses = fill_mask(sentence, top_k=3)
                print(f"{sentence:<48}", "  ".join(f"{g['token_str']!r} {g['score']:.3f}" for g in guesses))
            """
        ),
        md(
            """
            After about a minute the model has only started to leave the unigram plateau: its guesses are mostly
            the corpus's most frequent tokens (`.`, `a`, `the`), or its favourite nouns (`film`, `movie`) where the
            context calls for a noun.
            The same loop run for days on billions of words (and 15 % masking over 512-token texts) is how BERT was
            pre-trained; `hfdl.create_model("bert-base")` is that model's layout.

            ## 6. Sampling temperature (a character-level GPT)

            A decoder predicts a distribution over the next token; *generation* keeps drawing from it. The
            **temperature** $T$ divides the logits before the softmax: $p_i \\propto \\exp(z_i / T)$. $T < 1$
            sharpens the distribution (safer, more repetitive text), $T > 1$ flattens it (more varied, more
            mistakes), and $T \\to 0$ is greedy decoding (always the most likely token).

            The model: `gpt-char` (nanoGPT's CPU configuration: 4 layers, 4 heads, width 128, context 64) with a
            65-character tokenizer trained on tiny-shakespeare, trained for about 30 s on random 64-character windows.
            """
        ),
        code(
            """
            shakespeare_path = DATA / "tinyshakespeare" / "input.txt"
            chars = train_tokenizer(files=[shakespeare_path], kind="char")
            corpus = torch.tensor(chars(shakespeare_path.read_text(encoding="utf-8"))["input_ids"])
            first_characters = "".join(chars.convert_ids_to_tokens(list(range(20))))
            print(f"{len(corpus):,} characters, vocabulary of {len(chars)}: {first_characters!r} ...")

            torch.manual_seed(0)
            gpt = hfdl.create_model("gpt-char", task="text-generation", vocab_size=len(chars))
            context = gpt.config.max_position_embeddings
            print(f"{gpt.num_parameters():,} parameters; uniform guessing: loss {math.log(len(chars)):.3f}")

            optimizer = torch.optim.AdamW(gpt.parameters(), lr=2e-3, betas=(0.9, 0.99), weight_decay=0.1)
            windows = torch.Generator().manual_seed(0)
            gpt.train()
            start, losses = time.perf_counter(), []
            for step in range(1, 301):
                offsets = torch.randint(0, len(corpus) - context, (32,), generator=windows)
                batch = torch.stack([corpus[o : o + context] for o in offsets])
                loss = gpt(input_ids=batch, labels=batch).loss  # labels are shifted inside: predict the next character
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                losses.append(loss.item())
                if step % 50 == 0:
                    print(f"step {step:>3}: next-character loss {np.mean(losses[-50:]):.3f}")
            gpt.eval()
            print(f"trained in {time.perf_counter() - start:.0f} s")
            """
        ),
        code(
            """
            prompt = "ROMEO:\\nI will not th"
            prompt_ids = chars(prompt, return_tensors="pt")
            with torch.no_grad():
                next_logits = gpt(**prompt_ids).logits[0, -1]
            top = next_logits.topk(12).indices

            fig, axes = plt.subplots(1, 3, figsize=(11, 3), sharey=True)
            for axis, temperature in zip(axes, (0.5, 1.0, 2.0)):
                probabilities = torch.softmax(next_logits / temperature, dim=-1)
                entropy = -(probabilities * probabilities.log()).sum().item()
                print(f"T = {temperature}: entropy {entropy:.3f} nats, p(most likely) = {probabilities.max().item():.3f}")
                axis.bar(range(12), probabilities[top])
                shown = ["space" if c == " " else repr(c)[1:-1] for c in chars.convert_ids_to_tokens(top.tolist())]
                axis.set_xticks(range(12), shown, fontsize=8)
                axis.set_title(f"T = {temperature}, entropy {entropy:.2f}")
            axes[0].set_ylabel(f"p(next char | {prompt[-6:]!r})")
            plt.show()
            """
        ),
        md(
            """
            The same distribution, three temperatures: the ranking never changes, only how much of the probability
            the favourites get. Now whole samples (each drawn with the same seed), and greedy decoding, which always
            takes the top character and soon loops.
            """
        ),
        code(
            """
            new_tokens = context - prompt_ids["input_ids"].shape[1]  # learned positions: at most `context` in all
            for temperature in (0.5, 1.0, 2.0, None):
                torch.manual_seed(0)
                if temperature is None:
                    generated = gpt.generate(**prompt_ids, do_sample=False, max_new_tokens=new_tokens)
                else:
                    generated = gpt.generate(
                        **prompt_ids, do_sample=True, temperature=temperature, top_k=0, max_new_tokens=new_tokens
                    )
                label = "greedy" if temperature is None else f"T = {temperature}"
                print(f"--- {label}\\n{chars.decode(generated[0])}\\n")
            """
        ),
        md(
            """
            ## 7. Attention maps

            With `output_attentions=True` an hfdl model returns every layer's attention weights, (batch, heads,
            query, key). Rows are queries, columns the keys they attend to; each row sums to 1. In the encoder, heads
            of the first layers look at a fixed offset (the bright diagonals next to the main one: the previous or the
            next token) or park their attention on `[SEP]` and `.`, a common "nothing to do here" pattern of BERT
            heads (Clark et al., 2019). The decoder's maps are lower-triangular: its causal mask gives the future
            exactly zero weight.
            """
        ),
        code(
            """
            def plot_attention(maps, labels, title):
                layers, heads_per_layer = len(maps), maps[0].shape[1]
                fig, axes = plt.subplots(layers, heads_per_layer, figsize=(1.8 * heads_per_layer, 1.8 * layers))
                for layer in range(layers):
                    for head in range(heads_per_layer):
                        axis = axes[layer, head]
                        axis.imshow(maps[layer][0, head], cmap="viridis", vmin=0, vmax=1)
                        axis.set_xticks([])
                        axis.set_yticks([])
                        if layer == 0:
                            axis.set_title(f"head {head}", fontsize=9)
                    axes[layer, 0].set_ylabel(f"layer {layer}", fontsize=9)
                fig.suptitle(f"{title}\\n{' '.join(labels)}", fontsize=9)


            sentence = "the acting is good , but the story is a mess ."
            inputs = wordpiece(sentence, return_tensors="pt")
            with torch.no_grad():
                encoder_maps = mlm_model(**inputs, output_attentions=True).attentions
            tokens = wordpiece.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
            print(len(encoder_maps), "layers of", tuple(encoder_maps[0].shape), "weights:", tokens)
            plot_attention(encoder_maps, tokens, "bert-course (masked LM), one sentence")
            plt.show()
            """
        ),
        code(
            """
            line = "ROMEO:\\nI will not thee"
            line_ids = chars(line, return_tensors="pt")
            with torch.no_grad():
                decoder_maps = gpt(**line_ids, output_attentions=True).attentions
            above_diagonal = torch.stack([m[0].triu(diagonal=1).sum() for m in decoder_maps]).sum().item()
            print(f"{len(decoder_maps)} layers of {tuple(decoder_maps[0].shape)} weights; total weight on future tokens: "
                  f"{above_diagonal:.1f}")
            plot_attention(decoder_maps, [repr(c)[1:-1] for c in line], "gpt-char (causal LM), one line")
            plt.show()
            """
        ),
        md(
            """
            ## Next

            * `hfdl.create_model("bert-base")` and `hfdl.create_model("gpt2")` have the layouts and parameter counts of
              the original BERT and GPT-2; `position_embedding_type="rotary"` and `norm_position="pre"` switch any
              hfdl text model to the choices of recent models.
            * The recipes train these models with Accelerate on larger corpora and write Hub-ready checkpoints that
              `AutoModelForMaskedLM` / `AutoModelForCausalLM` load with `trust_remote_code=True`.
            """
        ),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def vision_transfer() -> nbformat.NotebookNode:
    """Course chapter 9, vision and transfer: patches, position embeddings, attention rollout, three transfer modes."""
    cells = [
        md(
            """
            # Vision Transformers and transfer learning with hfdl (chapter 9)

            The transformer of the text notebook reads images just as well once an image is a sequence. This notebook
            builds that sequence, trains a small ViT (Dosovitskiy et al., 2021) on MNIST, looks inside it, and then
            transfers it to another data set in the three ways chapter 9 names:

            1. **Patches**: a 28x28 digit becomes 49 tokens of 4x4 pixels, plus a class token.
            2. **Training** a 4-layer ViT (`vit-mnist` at width 64) on 8,000 MNIST digits.
            3. **Position embeddings**: what the learned table knows about 2-D layout, and interpolating it to run
               the model at 56x56 pixels.
            4. **Attention maps** and **attention rollout** (Abnar & Zuidema, 2020): where the class token looks.
            5. **Transfer learning** to scikit-learn's 8x8 digits: training from scratch, feature extraction (a new
               head on a frozen body), full fine-tuning and LoRA (Hu et al., 2021), side by side -- trainable
               parameters, seconds and accuracy.

            Data: MNIST's 10,000 test digits from `../shared/data` (on the Hub: `datasets.load_dataset("ylecun/mnist")`),
            split 8,000 / 2,000 stratified with seed 0, and scikit-learn's digits. Everything runs offline in about
            two minutes on two CPU cores; every random draw is seeded, so a rerun prints the same numbers.
            `recipes/transfer.py` runs the same three modes on any hfdl or converted Hub model with Accelerate.
            """
        ),
        code(
            """
            import warnings

            warnings.filterwarnings("ignore", message="IProgress not found")
            warnings.filterwarnings("ignore", category=FutureWarning)  # peft asks a deprecated transformers question

            import math
            import tempfile
            import time
            from pathlib import Path

            import matplotlib.pyplot as plt
            import numpy as np
            import torch
            import torch.nn.functional as F
            import transformers
            from peft import get_peft_model
            from sklearn.datasets import load_digits
            from sklearn.model_selection import train_test_split
            from transformers import AutoModelForImageClassification

            import hfdl
            from hfdl.data import read_idx
            from hfdl.lora import make_lora_config
            from hfdl.models.vit import attention_rollout, rollout_map

            torch.set_num_threads(1)  # small models: one thread is as fast, and the numbers do not depend on the machine
            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            DATA = Path("../../shared/data")  # `../shared/data` seen from the repository root; this runs in notebooks/

            images = read_idx(DATA / "mnist-10k" / "t10k-images-idx3-ubyte.gz", 2051)
            labels = read_idx(DATA / "mnist-10k" / "t10k-labels-idx1-ubyte.gz", 2049)
            train_rows, test_rows = train_test_split(
                np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=0
            )
            pixels = (torch.tensor(images, dtype=torch.float32)[:, None] / 255 - 0.5) / 0.5  # [-1, 1], as the processor
            targets = torch.tensor(labels, dtype=torch.long)
            x_train, y_train = pixels[train_rows], targets[train_rows]
            x_test, y_test = pixels[test_rows], targets[test_rows]
            print(f"MNIST: {len(x_train):,} training and {len(x_test):,} test digits, {tuple(x_train.shape[1:])} each")
            """
        ),
        md(
            """
            ## 1. An image as a sequence of patches

            The ViT cuts the image into non-overlapping `patch_size` x `patch_size` patches, flattens each and maps it
            to a `hidden_size` vector with one shared linear layer. hfdl implements that linear layer as a
            convolution whose kernel and stride are both the patch size: the same arithmetic, applied to every patch
            at once. A learned **class token** goes in front; its final state is what the classifier reads, as
            BERT's `[CLS]`. A learned **position embedding** per token is added, since attention itself does not know
            where a token came from. Below: a digit, its 7x7 grid of patches, and the patches in the order the
            transformer reads them (row by row).
            """
        ),
        code(
            """
            torch.manual_seed(0)
            vit = hfdl.create_model("vit-mnist", hidden_size=64, intermediate_size=256)
            config = vit.config
            digit = x_test[:1]
            embeddings = vit.vit.embeddings
            with torch.no_grad():
                grid = embeddings.patch_embedding(digit)  # (1, hidden, 7, 7)
                tokens = embeddings(digit)  # class token + 49 patch tokens, positions added
            print(f"pixels {tuple(digit.shape)} -> patch embedding {tuple(grid.shape)} -> tokens {tuple(tokens.shape)}")
            print(f"{config.num_patches} patches of {config.patch_size}x{config.patch_size} pixels + 1 class token; "
                  f"position table {tuple(embeddings.position_embeddings.shape)}; "
                  f"{vit.num_parameters():,} parameters in all")

            side = config.image_size // config.patch_size
            patches = digit[0, 0].unfold(0, 4, 4).unfold(1, 4, 4).reshape(side * side, 4, 4)
            strip = torch.zeros(2 * 5 - 1, 25 * 5 - 1)  # the tokens in two rows, a grey line between patches
            for index, patch in enumerate(patches):
                row, column = divmod(index, 25)
                strip[row * 5 : row * 5 + 4, column * 5 : column * 5 + 4] = patch
            figure, (left, right) = plt.subplots(1, 2, figsize=(12, 2.6), width_ratios=(1, 4.5))
            left.imshow(digit[0, 0], cmap="gray_r", vmin=-1, vmax=1)
            for edge in range(0, 29, 4):
                left.axhline(edge - 0.5, color="tab:red", linewidth=0.6)
                left.axvline(edge - 0.5, color="tab:red", linewidth=0.6)
            left.set_title(f"label {y_test[0].item()}: a 7x7 grid of patches")
            right.imshow(strip, cmap="gray_r", vmin=-1, vmax=1)
            right.set_title("the 49 patch tokens in reading order (25 + 24)")
            left.axis("off")
            right.axis("off")
            plt.show()
            """
        ),
        md(
            """
            ## 2. Training a small ViT

            Four pre-norm transformer blocks of width 64 (4 heads, MLP 256): 205k parameters, a quarter of
            `vit-mnist`'s width, so that this notebook stays fast. AdamW with a one-cycle schedule, batches of 32, five
            epochs. ViTs lack a CNN's built-in assumptions (locality, translation equivariance) and must learn them
            from data, so on 8,000 images they learn more slowly than LeNet-5 does; with augmentation and longer
            training `recipes/train_image_classifier.py --model vit-mnist` reaches the README's accuracy.
            """
        ),
        code(
            """
            def accuracy(model, x, y, **kwargs):
                model.eval()
                with torch.no_grad():
                    correct = sum(
                        (model(pixel_values=x[i : i + 500], **kwargs).logits.argmax(-1) == y[i : i + 500]).sum().item()
                        for i in range(0, len(x), 500)
                    )
                return correct / len(x)


            def train(model, x, y, epochs, learning_rate, batch_size=32, schedule=True):
                parameters = [p for p in model.parameters() if p.requires_grad]
                optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.05)
                steps = epochs * math.ceil(len(x) / batch_size)
                scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, learning_rate, total_steps=steps, pct_start=0.15)
                generator = torch.Generator().manual_seed(0)
                for epoch in range(epochs):
                    model.train()
                    order = torch.randperm(len(x), generator=generator)
                    for start in range(0, len(x), batch_size):
                        batch = order[start : start + batch_size]
                        loss = model(pixel_values=x[batch], labels=y[batch]).loss
                        loss.backward()
                        optimizer.step()
                        optimizer.zero_grad()
                        scheduler.step()
                    yield epoch, loss.item()


            start = time.perf_counter()
            for epoch, loss in train(vit, x_train, y_train, epochs=5, learning_rate=1e-3):
                print(f"epoch {epoch + 1}: last batch loss {loss:.3f}, test accuracy {accuracy(vit, x_test, y_test):.3f}")
            print(f"{time.perf_counter() - start:.0f} s")
            """
        ),
        md(
            """
            ## 3. What the position embeddings learned

            Nothing tells the model that patch 8 sits below patch 1: the position table starts random. Each small
            map below is one position's cosine similarity with all 49, drawn on the 7x7 grid. After five epochs on
            MNIST two things have been learned. The 24 border positions, which are blank in almost every digit, have
            become alike (the bright frames); and positions are more similar to their neighbours, above all to the one
            beside them, than to the rest -- the start of the 2-D layout that the paper's figure 7 shows for ViT-L/32
            after long training on ImageNet.

            Because the table is a 7x7 grid of vectors, it can be **resampled** to a larger grid (bicubic
            interpolation, section 3.2 of the paper): `interpolate_pos_encoding=True` runs the model on 56x56 images,
            196 patches, without retraining -- how ViTs are fine-tuned at a higher resolution than they were trained at.
            """
        ),
        code(
            """
            table = vit.vit.embeddings.position_embeddings[0, 1:].detach()  # (49, 64), the class token's left out
            similarity = F.cosine_similarity(table[:, None], table[None], dim=-1).reshape(side, side, side, side)
            figure, axes = plt.subplots(side, side, figsize=(6, 6))
            for row in range(side):
                for column in range(side):
                    axes[row, column].imshow(similarity[row, column], cmap="viridis", vmin=-1, vmax=1)
                    axes[row, column].axis("off")
            figure.suptitle("cosine similarity of each patch's position embedding with all others")
            plt.show()

            above = torch.stack([similarity[r, c, r - 1, c] for r in range(1, side) for c in range(side)])
            beside = torch.stack([similarity[r, c, r, c - 1] for r in range(side) for c in range(1, side)])
            others = similarity.flatten()[~torch.eye(side * side, dtype=torch.bool).flatten()]
            border = torch.ones(side, side, dtype=torch.bool)
            border[1:-1, 1:-1] = False
            print(f"mean cosine similarity of a position to its neighbour above: {above.mean():.3f}, to its left: "
                  f"{beside.mean():.3f}, to any other position: {others.mean():.3f}; among the 24 border positions: "
                  f"{similarity[border][:, border].mean():.3f}")
            larger = F.interpolate(x_test, scale_factor=2, mode="bilinear", align_corners=False)
            print(f"test accuracy at 28x28: {accuracy(vit, x_test, y_test):.3f}; at 56x56 with interpolated positions: "
                  f"{accuracy(vit, larger, y_test, interpolate_pos_encoding=True):.3f} (trained at 28x28 only)")
            """
        ),
        md(
            """
            ## 4. Attention maps and attention rollout

            `output_attentions=True` returns each layer's (batch, heads, 50, 50) attention weights. The class token's
            row in the last layer says which patches it reads directly, per head. But by the last layer every token
            has already mixed information from the others, so **attention rollout** follows the attention back
            through all layers: each layer's head-averaged attention, plus the identity for the residual
            connection, renormalised, multiplied from the first layer up. Its class-token row is a map over the
            patches of what the prediction draws on.
            """
        ),
        code(
            """
            examples = x_test[:4]
            with torch.no_grad():
                outputs = vit(pixel_values=examples, output_attentions=True)
            predictions = outputs.logits.argmax(-1)
            rollout = rollout_map(attention_rollout(outputs.attentions), side)  # (4, 7, 7) in [0, 1]
            last = outputs.attentions[-1][:, :, 0, 1:].reshape(4, config.num_attention_heads, side, side)
            figure, axes = plt.subplots(4, 2 + config.num_attention_heads, figsize=(9, 7.5))
            for row in range(4):
                axes[row, 0].imshow(examples[row, 0], cmap="gray_r")
                axes[row, 0].set_title(f"predicted {predictions[row].item()}", fontsize=9)
                heat = F.interpolate(rollout[row][None, None], size=28, mode="bilinear", align_corners=False)[0, 0]
                axes[row, 1].imshow(examples[row, 0], cmap="gray_r")
                axes[row, 1].imshow(heat, cmap="jet", alpha=0.5)
                axes[row, 1].set_title("rollout", fontsize=9)
                for head in range(config.num_attention_heads):
                    axes[row, 2 + head].imshow(last[row, head], cmap="magma")
                    axes[row, 2 + head].set_title(f"last layer, head {head}", fontsize=9)
            for axis in axes.flat:
                axis.axis("off")
            plt.show()
            print("rollout rows sum to 1:", torch.allclose(attention_rollout(outputs.attentions).sum(-1), torch.ones(4, 50)))
            """
        ),
        md(
            """
            ## 5. Transfer learning: scratch, feature extraction, full fine-tuning, LoRA

            The target task: scikit-learn's 1,797 digits, 8x8 pixels and 17 grey levels, scaled up to 28x28 -- the same
            classes, but blurrier, thicker strokes and another writer population. 1,437 training images is little
            data for a transformer. The MNIST ViT is saved in the Hub format and loaded back with
            `AutoModelForImageClassification`, its classifier replaced by a new one, then trained four ways for five
            epochs each:

            * **from scratch**: the same architecture, random weights;
            * **feature extraction**: the body frozen (`requires_grad=False`), only the new head (650 parameters)
              trains;
            * **full fine-tuning**: every weight trains, at a lower learning rate;
            * **LoRA**: the body frozen, low-rank updates $W + BA$ (rank 8) added to its linear layers by peft, with
              the targets and the head to train chosen by `hfdl.lora.make_lora_config`.
            """
        ),
        code(
            """
            digits = load_digits()
            small = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16
            scaled = (F.interpolate(small, size=28, mode="bilinear", align_corners=False) - 0.5) / 0.5
            digit_labels = torch.tensor(digits.target)
            rows_train, rows_test = train_test_split(
                np.arange(len(digit_labels)), test_size=0.2, stratify=digits.target, random_state=0
            )
            folder = tempfile.mkdtemp()
            vit.save_pretrained(folder)  # a Hub-format folder: config.json + model.safetensors


            def start_from(mode):
                torch.manual_seed(0)
                if mode == "from scratch":
                    return hfdl.create_model("vit-mnist", hidden_size=64, intermediate_size=256)
                model = AutoModelForImageClassification.from_pretrained(folder)
                model.classifier.reset_parameters()  # a new head for the new task
                if mode == "feature extraction":
                    model.vit.requires_grad_(False)
                elif mode == "LoRA":
                    model = get_peft_model(model, make_lora_config(model, r=8, lora_alpha=16))
                return model


            results = {}
            for mode, learning_rate in (
                ("from scratch", 1e-3), ("feature extraction", 3e-3), ("full fine-tuning", 5e-4), ("LoRA", 3e-3)
            ):
                model = start_from(mode)
                trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
                start = time.perf_counter()
                for _ in train(model, scaled[rows_train], digit_labels[rows_train], epochs=5, learning_rate=learning_rate):
                    pass
                seconds = time.perf_counter() - start
                results[mode] = (trainable, seconds, accuracy(model, scaled[rows_test], digit_labels[rows_test]))
            print(f"{'mode':<20} {'trainable':>10} {'seconds':>8} {'accuracy':>9}")
            for mode, (trainable, seconds, score) in results.items():
                print(f"{mode:<20} {trainable:>10,} {seconds:>8.0f} {score:>9.3f}")
            """
        ),
        md(
            """
            On 1,437 images, five epochs from scratch are not enough for a ViT; the MNIST features with a new linear
            head (feature extraction, 650 trainable weights, the cheapest epoch) do much better but stay below the
            two modes that adapt the body. Full fine-tuning adapts all 205k weights; LoRA trains a sixth of them and
            here even does slightly better, and what it saves is a small adapter that sits beside the unchanged base
            model (`model.save_pretrained` writes only the LoRA weights and the head). Its epochs are not faster on
            this tiny model: the frozen body still runs forward and backward, and the adapters add work. The README's
            table repeats the comparison on a real pretrained model, the MiniLM sentence encoder, with
            `recipes/transfer.py`.

            ## Next

            * `hfdl.create_model("vit-base-patch16-224")` has ViT-B/16's layout and parameter count;
              `hfdl convert` imports transformers' and timm's ViT checkpoints into it.
            * `recipes/transfer.py --mode feature-extraction|full|lora` runs this comparison on any hfdl or converted
              Hub model, with layer-wise learning-rate decay and gradual unfreezing as options, on one process or
              several (`accelerate launch --config_file recipes/accelerate_configs/...`).
            * The `vit-attention` Space draws the rollout over any image you upload.
            """
        ),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def autoencoders() -> nbformat.NotebookNode:
    """Course chapter 7: autoencoders against PCA, conv, sparse and denoising AEs, representation learning."""
    cells = [
        md(
            """
            # Autoencoders and representation learning with hfdl (chapter 7)

            An autoencoder is trained to give back its input through a narrow **code**: an encoder maps the image
            to `latent_dim` numbers, a decoder maps them back, and the loss compares the output with the input. No
            label is used, so whatever the code learns to keep is a representation found in the data alone. This
            notebook walks chapter 7 with `hfdl`'s `autoencoder` architecture (`AutoencoderModel`), where every
            variant of the chapter is a config choice:

            1. **A vanilla autoencoder against PCA** at the same code size: reconstruction error against code size.
            2. **A convolutional autoencoder** (`encoder_type="conv"`).
            3. **Sparse autoencoders**: an L1 penalty on the code against a KL penalty toward a target firing rate.
            4. **A denoising autoencoder**: corrupted input, clean target.
            5. **Representation learning**: PCA, t-SNE and autoencoder codes plotted by class, and K-Means on pixels
               against K-Means on codes (NMI, ARI).
            6. **Save and reload** in the Hugging Face format with `from_pretrained`.

            Data: scikit-learn's 1,797 handwritten digits (8x8 pixels, 17 grey levels scaled to [0, 1], the range
            hfdl's autoencoders take), split 1,437 / 360 stratified with seed 0. They ship with scikit-learn, so the
            notebook runs offline, in about a minute on two CPU cores; every training starts from a seed, so a
            rerun prints the same numbers. The presets (`ae-mnist`, `conv-ae-mnist`, `sparse-ae-mnist`,
            `denoising-ae-mnist`) are sized for 28x28 MNIST; here they are built with smaller widths for 8x8 images,
            and `recipes/train_autoencoder.py` trains them on MNIST.
            """
        ),
        code(
            """
            import warnings

            warnings.filterwarnings("ignore", message="IProgress not found")

            import tempfile
            import time

            import matplotlib.pyplot as plt
            import numpy as np
            import torch
            import torch.nn.functional as F
            import transformers
            from sklearn.datasets import load_digits
            from sklearn.decomposition import PCA
            from sklearn.model_selection import train_test_split
            from transformers import AutoModel

            import hfdl
            from hfdl.evaluation import embed_2d, kmeans_scores
            from hfdl.layers.hfdl_autoencoding import corrupt_images

            torch.set_num_threads(1)  # tiny models: one thread is as fast, and the numbers do not depend on the machine
            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()

            digits = load_digits()
            pixels = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16  # (1797, 1, 8, 8) in [0, 1]
            train_rows, test_rows = train_test_split(
                np.arange(len(digits.target)), test_size=0.2, stratify=digits.target, random_state=0
            )
            x_train, x_test = pixels[train_rows], pixels[test_rows]
            y_train, y_test = digits.target[train_rows], digits.target[test_rows]
            flat_train, flat_test = x_train.flatten(1).numpy(), x_test.flatten(1).numpy()
            print(f"{len(x_train):,} training and {len(x_test):,} test digits of shape {tuple(x_train.shape[1:])}")
            """
        ),
        md(
            """
            Two helpers serve every section. `make` builds an autoencoder from a preset with overrides for 8x8
            images (the encoder widths 128 and 64, the decoder mirrors them), from a fixed seed. `fit` is a plain
            training loop: the model computes its loss when given `labels`, the clean target images (here the input
            itself); in training mode a denoising autoencoder corrupts its input first, with the noise drawn from
            the `generator` it is given. The reconstruction loss is the binary cross-entropy of the pixels (the
            config's default, `reconstruction_loss="bce"`), and every comparison below reports the **mean squared
            error per pixel** on the test digits, which PCA can be measured with too.
            """
        ),
        code(
            """
            def make(preset, **overrides):
                torch.manual_seed(0)
                settings = {"image_size": 8, "hidden_sizes": [128, 64], **overrides}
                return hfdl.create_model(preset, **settings)


            def fit(model, x, epochs=30, learning_rate=3e-3, batch_size=64, seed=0):
                \"\"\"Train `model` to give back `x`; return the mean training loss of each epoch.\"\"\"
                optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
                shuffle = torch.Generator().manual_seed(seed)
                noise = torch.Generator().manual_seed(seed + 1)  # the denoising autoencoder's corruption
                history = []
                model.train()
                for _ in range(epochs):
                    order, total = torch.randperm(len(x), generator=shuffle), 0.0
                    for start in range(0, len(x), batch_size):
                        batch = x[order[start : start + batch_size]]
                        loss = model(pixel_values=batch, labels=batch, generator=noise).loss
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                        total += loss.item() * len(batch)
                    history.append(total / len(x))
                model.eval()
                return history


            @torch.no_grad()
            def test_error(model, x=x_test, target=x_test):
                \"\"\"Mean squared error per pixel of the (eval-mode, so deterministic) reconstruction of `x`.\"\"\"
                return F.mse_loss(model(pixel_values=x).reconstruction, target).item()
            """
        ),
        md(
            """
            ## 1. A vanilla autoencoder against PCA

            PCA is the best **linear** code: projecting onto the top `k` principal directions gives the lowest squared
            reconstruction error of any rank-`k` linear map. An autoencoder with linear layers and a squared-error
            loss can do no better -- it learns the same subspace (Baldi & Hornik, 1989). What the autoencoder adds is
            **nonlinearity**: ReLU layers on both sides of the code let it bend the subspace into a curved surface
            through the data. The gain should show most where the code is smallest, since a curved 2-D surface can
            follow the digits far more closely than a plane. Below, the same code sizes for both: PCA fitted on the
            training digits, and the autoencoder (`ae-mnist`, linear code layer) trained for 30 epochs.
            """
        ),
        code(
            """
            start = time.perf_counter()
            code_sizes = [2, 4, 8, 16, 32]
            pca_error, ae_error, autoencoders = [], [], {}
            for size in code_sizes:
                pca = PCA(n_components=size, random_state=0).fit(flat_train)
                pca_error.append(float(((pca.inverse_transform(pca.transform(flat_test)) - flat_test) ** 2).mean()))
                autoencoders[size] = make("ae-mnist", latent_dim=size)
                fit(autoencoders[size], x_train)
                ae_error.append(test_error(autoencoders[size]))
            print(f"{'code size':>9} {'PCA':>7} {'autoencoder':>12}")
            for size, linear, learned in zip(code_sizes, pca_error, ae_error):
                print(f"{size:>9} {linear:>7.4f} {learned:>12.4f}")
            print(f"(five autoencoders trained in {time.perf_counter() - start:.0f} s)")

            plt.figure(figsize=(5, 3))
            plt.plot(code_sizes, pca_error, "o-", label="PCA (linear)")
            plt.plot(code_sizes, ae_error, "s-", label="autoencoder (MLP)")
            plt.xscale("log", base=2)
            plt.xticks(code_sizes, code_sizes)
            plt.xlabel("code size")
            plt.ylabel("test MSE per pixel")
            plt.legend()
            plt.show()
            """
        ),
        md(
            """
            The autoencoder wins clearly where the code is small: with 2 or 4 numbers its error is about a third
            lower than PCA's. The gap closes as the code grows, and at 32 numbers -- half the pixels -- PCA is
            better: 32 principal components keep nearly all the variance of 8x8 digits, while the autoencoder,
            trained for 30 epochs on cross-entropy rather than squared error, has not reached that. A nonlinear code
            pays off when the code must be much smaller than the data.
            """
        ),
        md(
            """
            ## 2. A convolutional autoencoder

            `encoder_type="conv"` replaces the fully connected layers by 3x3 convolutions of stride 2 (8x8 -> 4x4 ->
            2x2 feature maps here), and the decoder mirrors them with transposed convolutions. Below it is compared
            with the MLP autoencoder and PCA at the same code size, 8: the digits at the top, each method's
            reconstruction under them.
            """
        ),
        code(
            """
            conv_ae = make("conv-ae-mnist", conv_channels=[16, 32], latent_dim=8)
            fit(conv_ae, x_train)
            mlp_ae = autoencoders[8]
            pca8 = PCA(n_components=8, random_state=0).fit(flat_train)
            for name, model in (("MLP autoencoder", mlp_ae), ("conv autoencoder", conv_ae)):
                print(f"{name}: {model.num_parameters():,} parameters, test MSE {test_error(model):.4f}")
            print(f"PCA: {8 * 64 + 64:,} numbers (8 components and the mean), test MSE {pca_error[2]:.4f}")

            shown = x_test[:10]
            with torch.no_grad():
                rows = {
                    "digits": shown,
                    "PCA, 8": torch.tensor(pca8.inverse_transform(pca8.transform(shown.flatten(1).numpy()))),
                    "MLP AE, 8": mlp_ae(pixel_values=shown).reconstruction,
                    "conv AE, 8": conv_ae(pixel_values=shown).reconstruction,
                }
            figure, axes = plt.subplots(len(rows), 10, figsize=(8, 3.6))
            for row, (name, images) in enumerate(rows.items()):
                for column in range(10):
                    axes[row, column].imshow(images[column].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
                    axes[row, column].set_xticks([])
                    axes[row, column].set_yticks([])
                axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
            plt.show()
            """
        ),
        md(
            """
            The convolutional autoencoder gets within a quarter of the MLP's error with a third of its parameters, but
            not below it: an 8x8 digit has little room for what convolutions are good at, the same local pattern
            recurring at many places (two stride-2 layers already reach 2x2 maps). On 28x28 images the shared weights
            matter far more, which is why `conv-ae-mnist` exists beside `ae-mnist`.

            ## 3. Sparse autoencoders: L1 against KL

            A code as wide as the input (64 units for 64 pixels) could simply copy it. A **sparse** autoencoder
            instead asks that only a few code units be active for any one image, so each unit must stand for a
            feature that few images share. hfdl offers the chapter's two penalties (`sparsity=`):

            * `"l1"`: `sparsity_weight * sum_j |h_j|` on a ReLU code, averaged over the batch. The L1 norm's constant
              pull toward zero switches units off *exactly* (ReLU outputs 0).
            * `"kl"` (Ng, 2011): the code goes through a sigmoid, so each unit's mean activation over the batch,
              $\\hat\\rho_j$, reads as a firing rate, and the penalty is
              $\\sum_j \\mathrm{KL}(\\rho \\,\\|\\, \\hat\\rho_j) = \\sum_j \\rho \\log\\frac{\\rho}{\\hat\\rho_j}
              + (1-\\rho)\\log\\frac{1-\\rho}{1-\\hat\\rho_j}$ toward a target rate $\\rho$ (`sparsity_target`,
              0.05 here). It constrains the *average* activity of each unit, not each activation.

            The histograms show the code activations on the test digits; the right panel each unit's mean activation
            under the KL penalty against the target.
            """
        ),
        code(
            """
            sparse = {
                "L1": make("sparse-ae-mnist", hidden_sizes=[128], latent_dim=64, sparsity="l1", sparsity_weight=3e-3),
                "KL": make("sparse-ae-mnist", hidden_sizes=[128], latent_dim=64, sparsity="kl", sparsity_weight=3e-2),
            }
            codes = {}
            for name, model in sparse.items():
                fit(model, x_train)
                with torch.no_grad():
                    codes[name] = model.encode(x_test)
                active = (codes[name] > 0.05).float().mean().item()
                print(f"{name}: test MSE {test_error(model):.4f}, mean activation {codes[name].mean():.3f}, "
                      f"share of activations above 0.05: {active:.3f}, exactly 0: {(codes[name] == 0).float().mean():.3f}")

            figure, axes = plt.subplots(1, 3, figsize=(12, 3))
            for axis, (name, code) in zip(axes, codes.items()):
                axis.hist(code.flatten().numpy(), bins=50, log=True)
                axis.set_title(f"{name} code activations (test digits)")
            unit_rates = codes["KL"].mean(dim=0).sort(descending=True).values
            axes[2].bar(range(64), unit_rates.numpy())
            axes[2].axhline(0.05, color="tab:red", label="target rate 0.05")
            axes[2].set_title("KL: mean activation of each unit")
            axes[2].set_xlabel("code unit (sorted)")
            axes[2].legend()
            plt.show()
            """
        ),
        md(
            """
            Both penalties give a sparse code at the same reconstruction error, in different ways. L1 on a ReLU code
            switches most activations **exactly** off (the spike at 0): each digit is described by a few active
            units. KL on a sigmoid code never reaches 0, but pins each unit's *average* activation near the target
            rate of 0.05: most activations are small and each unit fires strongly for a small share of the digits.
            """
        ),
        md(
            """
            ## 4. A denoising autoencoder

            Vincent et al. (2008) corrupt the input and train the network to give back the **clean** image: it can no
            longer copy, it has to know what digits look like. In hfdl the corruption is config (`noise_type`:
            `gaussian`, `masking`, `salt_and_pepper`; `noise_level`), applied in training mode only, and
            `model.corrupt(x)` applies the same noise on demand. Below a plain autoencoder and a denoising one
            (`denoising-ae-mnist`: Gaussian noise with standard deviation 0.3, clipped to [0, 1]), both with a
            16-unit code, are given noisy test digits.
            """
        ),
        code(
            """
            plain = make("ae-mnist", latent_dim=16)
            fit(plain, x_train)
            denoising = make("denoising-ae-mnist", latent_dim=16, noise_type="gaussian", noise_level=0.3)
            fit(denoising, x_train)

            noisy = denoising.corrupt(x_test[:10], generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                rows = {
                    "clean": x_test[:10],
                    "noisy (0.3)": noisy,
                    "plain AE": plain(pixel_values=noisy).reconstruction,
                    "denoising AE": denoising(pixel_values=noisy).reconstruction,
                }
            figure, axes = plt.subplots(len(rows), 10, figsize=(8, 3.6))
            for row, (name, images) in enumerate(rows.items()):
                for column in range(10):
                    axes[row, column].imshow(images[column, 0], cmap="gray_r", vmin=0, vmax=1)
                    axes[row, column].set_xticks([])
                    axes[row, column].set_yticks([])
                axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
            plt.show()
            """
        ),
        md(
            """
            How much noise each one undoes: the error of the reconstruction against the **clean** test digit as the
            Gaussian noise grows (0 is the plain reconstruction task), with the input itself as a baseline.
            """
        ),
        code(
            """
            levels = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
            errors = {"noisy input itself": [], "plain AE": [], "denoising AE": []}
            for level in levels:
                corrupted = corrupt_images(x_test, "gaussian", level, torch.Generator().manual_seed(1))
                errors["noisy input itself"].append(F.mse_loss(corrupted, x_test).item())
                errors["plain AE"].append(test_error(plain, corrupted, x_test))
                errors["denoising AE"].append(test_error(denoising, corrupted, x_test))
            print("noise std:   " + " ".join(f"{level:>6.1f}" for level in levels))
            for name, values in errors.items():
                print(f"{name:<19}" + " ".join(f"{value:>6.4f}" for value in values))

            plt.figure(figsize=(5, 3))
            for name, values in errors.items():
                plt.plot(levels, values, "o-", label=name)
            plt.xlabel("Gaussian noise std")
            plt.ylabel("MSE per pixel vs clean digit")
            plt.legend()
            plt.show()
            """
        ),
        md(
            """
            The trade-off is plain: on clean digits the plain autoencoder reconstructs better, since that is exactly
            what it was trained for; from a noise std of 0.2 on the denoising autoencoder is closer to the clean
            digit, and at 0.5 its error is little more than half the plain one's. Both improve on the noisy input
            itself: even the plain autoencoder projects onto what digits look like, but only the denoising one was
            taught to.
            """
        ),
        md(
            """
            ## 5. Representation learning: PCA, t-SNE and autoencoder codes

            Nothing above used the labels. Do the codes nevertheless sort the digits by class? Three 2-D views of the
            1,437 training digits, coloured by their (unused) label: the first two principal components of the pixels;
            t-SNE of the pixels (van der Maaten & Hinton, 2008: it keeps each point's neighbours close and gives up
            global distances); and the 2-unit code of the autoencoder of section 1, read directly.
            `hfdl.evaluation.embed_2d` wraps scikit-learn's PCA and t-SNE with a seed.
            """
        ),
        code(
            """
            with torch.no_grad():
                code2 = autoencoders[2].encode(x_train).numpy()
            views = {
                "PCA of the pixels": embed_2d(flat_train, "pca"),
                "t-SNE of the pixels": embed_2d(flat_train, "tsne"),
                "autoencoder code (2 units)": code2,
            }
            figure, axes = plt.subplots(1, 3, figsize=(8.4, 2.9))
            for axis, (name, points) in zip(axes, views.items()):
                scatter = axis.scatter(points[:, 0], points[:, 1], c=y_train, cmap="tab10", vmin=-0.5, vmax=9.5, s=1)
                axis.set_title(name)
                axis.set_xticks([])
                axis.set_yticks([])
            figure.colorbar(scatter, ax=axes, ticks=range(10), label="digit", shrink=0.8)
            plt.show()
            """
        ),
        md(
            """
            A number for the same question: **K-Means** with 10 clusters (10 seeded restarts) on each representation,
            scored against the labels by the normalised mutual information (NMI) and the adjusted Rand index (ARI),
            both 1 for clusters that are exactly the classes and about 0 for a random assignment
            (`hfdl.evaluation.kmeans_scores`).
            """
        ),
        code(
            """
            with torch.no_grad():
                representations = {
                    "pixels (64)": flat_train,
                    "PCA (8)": pca8.transform(flat_train),
                    "MLP AE code (8)": mlp_ae.encode(x_train).numpy(),
                    "conv AE code (8)": conv_ae.encode(x_train).numpy(),
                    "denoising AE code (16)": denoising.encode(x_train).numpy(),
                    "t-SNE of the pixels (2)": views["t-SNE of the pixels"],
                }
            print(f"{'K-Means on':<26} {'NMI':>6} {'ARI':>6}")
            for name, features in representations.items():
                scores = kmeans_scores(features, y_train, n_clusters=10, seed=0)
                print(f"{name:<26} {scores['nmi']:>6.3f} {scores['ari']:>6.3f}")
            """
        ),
        md(
            """
            On these digits an 8-number code clusters about as well as the 64 pixels -- the same class information
            in an eighth of the numbers -- but not better. K-Means on the raw pixels of small, centred digits is
            already a strong baseline, and a code trained to *redraw* a digit keeps its thickness and slant along
            with its class. The t-SNE map clusters far better: it is built to keep each digit beside its nearest
            neighbours, which is what K-Means needs (but it is a picture of this data set, with no encoder for new
            images). The README repeats the comparison on MNIST with autoencoder and VAE codes.
            """
        ),
        md(
            """
            ## 6. Save and reload

            An hfdl autoencoder is a `transformers` model: `save_pretrained` writes `config.json` and
            `model.safetensors`, and `AutoModel.from_pretrained` rebuilds it (hfdl registered the `hfdl-autoencoder`
            type with the Auto classes on import; `push_to_hub` would publish the same folder). The reloaded model
            gives the same reconstructions, bit for bit.
            """
        ),
        code(
            """
            with tempfile.TemporaryDirectory() as folder:
                denoising.save_pretrained(folder)
                reloaded = AutoModel.from_pretrained(folder)
            reloaded.eval()
            with torch.no_grad():
                same = torch.equal(reloaded(pixel_values=x_test).reconstruction, denoising(pixel_values=x_test).reconstruction)
            print(f"{type(reloaded).__name__}, noise {reloaded.config.noise_type} {reloaded.config.noise_level}; "
                  f"same reconstructions after reloading: {same}")
            """
        ),
        md(
            """
            ## Next

            * `recipes/train_autoencoder.py --model denoising-ae-mnist` trains these models on MNIST or any image
              data set the image recipe takes, with Accelerate; the README reports their K-Means NMI on MNIST.
            * Chapter 8's notebook, `08_generative.ipynb`, makes the code probabilistic (the VAE) and turns the
              decoder into a generator.
            * The `latent-explorer` Space adds noise to a digit you draw and shows the denoising autoencoder's answer.
            """
        ),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def generative() -> nbformat.NotebookNode:
    """Course chapter 8: the VAE (ELBO, beta, KL annealing, latent grid, IWAE), GAN and cGAN, DCGAN, pipelines, DDPM."""
    cells = [
        md(
            """
            # Generative models with hfdl: VAEs, GANs and a diffusion comparator (chapter 8)

            An autoencoder (chapter 7) compresses; a **generative model** can also draw new images. This notebook
            trains the two families of chapter 8 on small digits and measures them, not only looks at them:

            1. **The variational autoencoder** (Kingma & Welling, 2014): the reparameterisation trick, the ELBO over
               training, beta-VAE and KL annealing side by side, a 2-D latent space, samples, and the
               importance-weighted bound on log p(x) (Burda et al., 2016) in nats.
            2. **GANs**: an MLP GAN (Goodfellow et al., 2014) against a conditional GAN (Mirza & Osindero, 2014),
               their losses, and a mode-collapse monitor: the entropy of the class histogram that a small digit
               classifier assigns to the samples; the Frechet distance in that classifier's feature space.
            3. **DCGAN**'s layout (Radford et al., 2016) at the paper's 64x64, with parameter counts.
            4. **Pipelines** in the diffusers style: `GANPipeline(...)(num_images=8, generator=...).images`.
            5. **A DDPM** (Ho et al., 2020) through the same pipeline call, for comparison.

            Data: scikit-learn's 1,797 digits (8x8, scaled to [0, 1]), split 1,437 / 360 stratified with seed 0, so
            that everything trains in about a minute on two CPU cores, offline; every random draw is
            seeded. The presets (`vae-mnist`, `gan-mnist`, `cgan-mnist`, `dcgan-mnist`) are sized for 28x28 MNIST
            and are built here with smaller widths; `recipes/train_autoencoder.py`, `recipes/train_gan.py` and
            `recipes/train_ddpm.py` train them on MNIST, and the README reports their measures there.
            """
        ),
        code(
            """
            import warnings

            warnings.filterwarnings("ignore", message="IProgress not found")

            import math
            import tempfile
            import time

            import matplotlib.pyplot as plt
            import numpy as np
            import torch
            import torch.nn.functional as F
            import transformers
            from scipy.stats import norm
            from sklearn.datasets import load_digits
            from sklearn.model_selection import train_test_split

            import hfdl
            import hfdl.pipelines  # the diffusers-style pipelines (imports diffusers)
            from hfdl.evaluation import ClassifierFeatureExtractor, class_histogram, generative_report, histogram_entropy
            from hfdl.generative_training import binarize, discriminator_loss, generator_loss, kl_weight

            torch.set_num_threads(1)  # tiny models: one thread is as fast, and the numbers do not depend on the machine
            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            # Lines and markers without antialiasing: this notebook has many figures, and the PNGs stay half as large.
            plt.rcParams.update({"lines.antialiased": False, "patch.antialiased": False})

            digits = load_digits()
            pixels = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16  # (1797, 1, 8, 8) in [0, 1]
            train_rows, test_rows = train_test_split(
                np.arange(len(digits.target)), test_size=0.2, stratify=digits.target, random_state=0
            )
            x_train, x_test = pixels[train_rows], pixels[test_rows]
            y_train, y_test = torch.tensor(digits.target[train_rows]), torch.tensor(digits.target[test_rows])
            # The VAE's Bernoulli decoder models binary pixels: the test digits are binarised once, with a fixed seed
            # (x ~ Bernoulli(grey level)); training draws a new binarisation of every batch (dynamic binarisation).
            binary_test = binarize(x_test, generator=torch.Generator().manual_seed(0))
            print(f"{len(x_train):,} training and {len(x_test):,} test digits of shape {tuple(x_train.shape[1:])}")


            def show_grid(images, rows, title=None, axis=None):
                \"\"\"Tile (N, 1, 8, 8) images in [0, 1] into `rows` rows on one axis.\"\"\"
                columns = math.ceil(len(images) / rows)
                canvas = torch.ones(rows * 9 - 1, columns * 9 - 1)
                for index, image in enumerate(images):
                    row, column = divmod(index, columns)
                    canvas[row * 9 : row * 9 + 8, column * 9 : column * 9 + 8] = 1 - image[0]
                axis = axis or plt.gca()
                axis.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")  # crisp pixels, small PNGs
                axis.axis("off")
                if title:
                    axis.set_title(title)
            """
        ),
        md(
            r"""
            ## 1. The variational autoencoder

            The VAE makes the code probabilistic. The encoder gives, for an image $x$, the mean $\mu(x)$ and the
            log-variance $\log\sigma^2(x)$ of a Gaussian posterior $q(z|x) = \mathcal{N}(\mu, \mathrm{diag}\,\sigma^2)$;
            the decoder gives the probability $p(x|z)$ of each pixel being on (a Bernoulli decoder); the prior is
            $p(z) = \mathcal{N}(0, I)$. Training maximises the **evidence lower bound**:

            $$\log p(x) \;\ge\; \mathrm{ELBO}(x) = \mathbb{E}_{q(z|x)}\big[\log p(x|z)\big]
              - \mathrm{KL}\big(q(z|x)\,\|\,p(z)\big),$$

            a **reconstruction** term (how well a code drawn from the posterior explains the image) minus a **KL**
            term (how far the posterior is from the prior, in closed form for two Gaussians:
            $\mathrm{KL} = \tfrac12\sum_j \big(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2\big)$).

            **The reparameterisation trick.** The expectation needs a sample $z \sim q(z|x)$, and sampling is not
            differentiable in $\mu$ and $\sigma$. Writing the sample as a deterministic function of the parameters
            and of parameter-free noise,

            $$z = \mu(x) + \sigma(x) \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I),$$

            moves the randomness into $\varepsilon$: $\partial z / \partial \mu = 1$ and
            $\partial z / \partial \sigma = \varepsilon$, so the gradient of the sampled reconstruction term flows
            back into the encoder. `VAEModel.forward` does exactly this (with $\varepsilon$ from the `generator` it is
            given) and returns the loss $-\log p(x|z) + \beta\,\mathrm{KL}$ in **nats per image** (summed over the 64
            pixels and the latent dimensions), with both terms beside it.

            The training loop below adds two of the chapter's knobs: **beta** (`config.beta`, the beta-VAE of Higgins
            et al., 2017) and **KL annealing** (Bowman et al., 2016): the KL weight ramps from 0 to beta over the first
            epochs (`hfdl.generative_training.kl_weight`), so the decoder learns to use z before the KL term pulls
            every posterior onto the prior.
            """
        ),
        code(
            """
            def train_vae(model, epochs=40, warmup_epochs=0, learning_rate=3e-3, batch_size=64, seed=0):
                \"\"\"Train on dynamically binarised digits; return per-epoch means of -log p(x|z), KL and the ELBO.\"\"\"
                optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
                shuffle, draws = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
                warmup_steps = warmup_epochs * math.ceil(len(x_train) / batch_size)
                history, step = {"reconstruction": [], "kl": [], "elbo": []}, 0
                model.train()
                for _ in range(epochs):
                    order, reconstruction, kl = torch.randperm(len(x_train), generator=shuffle), 0.0, 0.0
                    for start in range(0, len(x_train), batch_size):
                        batch = binarize(x_train[order[start : start + batch_size]], generator=draws)
                        output = model(pixel_values=batch, labels=batch, generator=draws)
                        weight = kl_weight(step, warmup_steps, model.config.beta)  # beta, or its ramp
                        loss = output.reconstruction_loss + weight * output.kl
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                        reconstruction += output.reconstruction_loss.item() * len(batch)
                        kl += output.kl.item() * len(batch)
                        step += 1
                    history["reconstruction"].append(reconstruction / len(x_train))
                    history["kl"].append(kl / len(x_train))
                    history["elbo"].append(-(reconstruction + kl) / len(x_train))
                model.eval()
                return history


            def make_vae(**overrides):
                torch.manual_seed(0)
                return hfdl.create_model("vae-mnist", image_size=8, hidden_sizes=[128, 64], **overrides)


            start = time.perf_counter()
            vae = make_vae(latent_dim=8)
            history = train_vae(vae)
            print(f"trained in {time.perf_counter() - start:.0f} s; last epoch: -log p(x|z) {history['reconstruction'][-1]:.2f}, "
                  f"KL {history['kl'][-1]:.2f}, ELBO {history['elbo'][-1]:.2f} nats per image")
            """
        ),
        md(
            """
            ### beta-VAE and KL annealing side by side

            Three runs from the same seed: the plain VAE above (beta = 1), a **beta-VAE** with beta = 4 (a heavier KL
            term: posteriors closer to the prior, fewer latent dimensions in use, blurrier reconstructions), and
            beta = 1 with the KL weight **annealed** over the first 10 epochs. The first panel shows the plain VAE's
            ELBO over training with its two terms; the other two compare the runs' terms. The table measures each on
            the binarised test digits with `vae.elbo` (weight 1 on the KL whatever beta was: the bound itself) and
            counts the **active units**, the latent dimensions whose posterior mean varies across the test digits
            (variance above 0.01, Burda et al.'s criterion); the others carry no information about x.
            """
        ),
        code(
            """
            vaes, histories = {"beta = 1": vae}, {"beta = 1": history}
            vaes["beta = 4"] = make_vae(latent_dim=8, beta=4.0)
            histories["beta = 4"] = train_vae(vaes["beta = 4"])
            vaes["beta = 1, KL annealed"] = make_vae(latent_dim=8)
            histories["beta = 1, KL annealed"] = train_vae(vaes["beta = 1, KL annealed"], warmup_epochs=10)

            print(f"{'model':<24} {'test ELBO':>9} {'-log p(x|z)':>12} {'KL':>6} {'active units':>13}")
            for name, model in vaes.items():
                with torch.no_grad():
                    output = model(pixel_values=binary_test, labels=binary_test, generator=torch.Generator().manual_seed(0))
                    elbo = model.elbo(binary_test, generator=torch.Generator().manual_seed(0)).mean().item()
                    active = int((model.encode(binary_test)[0].var(dim=0) > 0.01).sum())
                print(f"{name:<24} {elbo:>9.2f} {output.reconstruction_loss.item():>12.2f} {output.kl.item():>6.2f} "
                      f"{active:>10} / 8")

            figure, axes = plt.subplots(1, 3, figsize=(11, 2.5))
            epochs = range(1, 41)
            axes[0].plot(epochs, [-value for value in history["reconstruction"]], label="E[log p(x|z)]")
            axes[0].plot(epochs, history["kl"], label="KL")
            axes[0].plot(epochs, history["elbo"], label="ELBO = E[log p(x|z)] - KL")
            axes[0].set_title("beta = 1: the ELBO and its terms")
            for name, values in histories.items():
                axes[1].plot(epochs, values["kl"], label=name)
                axes[2].plot(epochs, values["reconstruction"], label=name)
            axes[1].set_title("KL(q(z|x) || p(z))")
            axes[2].set_title("-log p(x|z)")
            for axis in axes:
                axis.set_xlabel("epoch (training, nats per image)")
                axis.legend(fontsize=7)
            plt.show()
            """
        ),
        md(
            """
            The ELBO bounds log p(x) from below: higher is better. With beta = 4 the VAE suffers **posterior collapse**:
            the weighted KL costs more than any latent dimension saves in reconstruction, so every posterior becomes the
            prior (KL 0, no active unit), z says nothing about x, and the decoder draws the same average digit whatever
            z is (see the samples below). 64 binary pixels hold little information per image, so here beta = 4 takes all
            of it; with more information per image (MNIST's 784 pixels) a beta-VAE usually keeps some units and trades
            detail for a smoother code (Higgins et al., 2017). KL annealing goes the other way: the decoder learned to
            use z while the KL weight was small, and the run ends with more information in the code (a higher KL), a
            lower reconstruction cost and a slightly better test ELBO than the plain VAE.
            """
        ),
        md(
            """
            ### A 2-D latent space

            With `latent_dim=2` (the `vae-mnist-2d` preset) the whole latent space can be drawn. Left: the posterior
            means of the test digits, coloured by their label, which the VAE never saw. Right: the decoder's output
            on a 10x10 grid of z, placed at the Gaussian quantiles 3 % ... 97 % of each axis, so that every cell
            covers an equal share of the prior's probability: the digits morph continuously into one another,
            because the KL term packs the posteriors together around the origin with no gaps between them.
            """
        ),
        code(
            """
            vae2d = make_vae(latent_dim=2)
            train_vae(vae2d)
            quantiles = torch.tensor(norm.ppf(np.linspace(0.03, 0.97, 10)), dtype=torch.float32)
            grid = torch.stack(torch.meshgrid(quantiles, quantiles.flip(0), indexing="xy"), dim=-1).reshape(-1, 2)
            with torch.no_grad():
                means = vae2d.encode(binary_test)[0]
                decoded = vae2d.decode(grid)
            figure, (left, right) = plt.subplots(1, 2, figsize=(5.8, 2.7))
            scatter = left.scatter(means[:, 0], means[:, 1], c=y_test, cmap="tab10", vmin=-0.5, vmax=9.5, s=6)
            left.set_title("test digits: posterior means", fontsize=10)
            figure.colorbar(scatter, ax=left, ticks=range(10), label="digit")
            show_grid(decoded, rows=10, title="decoder on a 10x10 grid of z", axis=right)
            plt.show()
            """
        ),
        md(
            """
            ### Samples

            `vae.sample(n, generator=...)` draws z from the prior N(0, I) and returns the decoder's mean (the pixel
            probabilities), images in [0, 1]; the same seed gives the same images. One row per VAE of the comparison.
            """
        ),
        code(
            """
            figure, axes = plt.subplots(3, 1, figsize=(7, 2.3))
            for axis, (name, model) in zip(axes, vaes.items()):
                show_grid(model.sample(24, generator=torch.Generator().manual_seed(0)), rows=1, axis=axis)
                axis.set_title(name, fontsize=9)
            plt.show()
            """
        ),
        md(
            r"""
            ### How good is the model? The IWAE bound, in nats

            The ELBO is a lower bound on $\log p(x)$; how loose depends on how well $q(z|x)$ matches the true
            posterior. Burda et al. (2016) tighten it with $k$ importance samples $z_i \sim q(z|x)$:

            $$\mathcal{L}_k(x) = \log \frac{1}{k}\sum_{i=1}^{k} \frac{p(x|z_i)\,p(z_i)}{q(z_i|x)}
              \;\le\; \log p(x),$$

            which equals the ELBO in expectation for $k = 1$, never decreases in expectation with $k$, and tends to
            $\log p(x)$ as $k \to \infty$. `vae.iwae_bound(x, num_samples=k)` computes it in chunks; its negative is
            the **test negative log-likelihood** that VAE papers report (in nats per image, here for 64 binarised
            pixels; the README reports MNIST's 784 with k = 1000).
            """
        ),
        code(
            """
            with torch.no_grad():
                elbo = vae.elbo(binary_test, generator=torch.Generator().manual_seed(0)).mean().item()
                print(f"ELBO (closed-form KL, one z per image): {elbo:.2f} nats")
                for k in (1, 10, 100):
                    bound = vae.iwae_bound(binary_test, num_samples=k, generator=torch.Generator().manual_seed(0))
                    print(f"IWAE bound, k = {k:>3}: {bound.mean().item():.2f} nats  (test NLL <= {-bound.mean().item():.2f})")
            """
        ),
        md(
            """
            The bound tightens as k grows: the single-sample ELBO underestimates log p(x) by at least the difference
            between k = 1 and k = 100, about 0.7 nats here -- the price of a Gaussian q(z|x) that cannot match the
            true posterior exactly. These are small numbers because an 8x8 binary digit holds little information;
            for 28x28 MNIST, Burda et al. (2016) report about 86.8 nats for a VAE of this kind (trained with k = 1
            on the full 60,000 digits, dynamically binarised), and the README gives hfdl's `vae-mnist` with the
            binarisation it used.
            """
        ),
        md(
            """
            ## 2. GANs: an MLP GAN against a conditional GAN

            A GAN trains two networks against each other: the **generator** G maps noise z ~ N(0, I) to an image, the
            **discriminator** D scores an image as real or generated. D minimises the binary cross-entropy of telling
            them apart; G uses the **non-saturating** loss -log D(G(z)) (Goodfellow et al., 2014, section 3), whose
            gradient is strong exactly when D rejects G's samples. Real labels are smoothed to 0.9 (one-sided label
            smoothing, Salimans et al., 2016). Both losses are in `hfdl.generative_training`, and `GANModel` owns
            both networks (`model.generator`, `model.discriminator`) as one Hub model.

            The **conditional GAN** (Mirza & Osindero's: the MLP GAN with `num_classes=10`) gives both networks the
            class: G draws the digit it is asked for, D judges whether an image is a real example *of that class*.
            (The `cgan-mnist` preset is the same idea on the DCGAN body, which the README's benchmark trains.)

            Pictures alone do not rank generators, so first a **judge**: a small MLP digit classifier (`mlp-digits`)
            trained on the training digits. `hfdl.evaluation.ClassifierFeatureExtractor` wraps it: it applies the
            classifier's own preprocessing to [0, 1] images and returns its predictions and its penultimate features.
            """
        ),
        code(
            """
            torch.manual_seed(0)
            classifier = hfdl.create_model("mlp-digits")
            judge = ClassifierFeatureExtractor(classifier)
            inputs = judge.preprocess(x_train)
            optimizer = torch.optim.Adam(classifier.parameters(), lr=3e-3)
            shuffle = torch.Generator().manual_seed(0)
            classifier.train()
            for epoch in range(15):
                order = torch.randperm(len(inputs), generator=shuffle)
                for start in range(0, len(inputs), 64):
                    rows = order[start : start + 64]
                    loss = classifier(pixel_values=inputs[rows], labels=y_train[rows]).loss
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            accuracy = (judge.predict(x_test) == y_test).float().mean().item()
            print(f"judge: {classifier.num_parameters():,} parameters, test accuracy {accuracy:.3f}")
            """
        ),
        md(
            """
            The training loop: one D step then one G step per batch, Adam with the DCGAN paper's settings (learning
            rate 2e-4, beta1 = 0.5). Every 100 steps, 500 samples from a **fixed** noise (the same z each time) go to
            the judge, and the entropy of its class histogram is logged: log 10 = 2.30 nats when every digit is drawn
            equally often, lower when the generator collapses onto a few modes. The recipe
            `recipes/train_gan.py` logs the same monitor.

            Three runs of 1,500 steps from the same seed: the MLP GAN (`gan-mnist` at 8x8 with smaller widths), the
            same GAN with **spectral normalisation** of every discriminator weight (Miyato et al., 2018,
            `spectral_norm=True`), and the conditional GAN.
            """
        ),
        code(
            """
            real_train = x_train * 2 - 1  # the generator's tanh range, [-1, 1]


            def train_gan(model, steps=1500, batch_size=64, learning_rate=2e-4, every=100, seed=0):
                optimizer_g = torch.optim.Adam(model.generator.parameters(), lr=learning_rate, betas=(0.5, 0.999))
                optimizer_d = torch.optim.Adam(model.discriminator.parameters(), lr=learning_rate, betas=(0.5, 0.999))
                draws = torch.Generator().manual_seed(seed)
                monitor_labels = torch.arange(500) % 10 if model.config.num_classes else None
                log = {"step": [], "d_loss": [], "g_loss": [], "entropy": []}
                d_total = g_total = 0.0
                model.train()
                for step in range(1, steps + 1):
                    rows = torch.randint(len(real_train), (batch_size,), generator=draws)
                    labels = y_train[rows] if model.config.num_classes else None
                    fake = model.generator(model.sample_latents(batch_size, generator=draws), labels)
                    d_loss = discriminator_loss(
                        model.discriminate(real_train[rows], labels), model.discriminate(fake.detach(), labels), 0.9
                    )
                    optimizer_d.zero_grad()
                    d_loss.backward()
                    optimizer_d.step()
                    g_loss = generator_loss(model.discriminate(fake, labels))
                    optimizer_g.zero_grad()
                    g_loss.backward()
                    optimizer_g.step()
                    d_total, g_total = d_total + d_loss.item(), g_total + g_loss.item()
                    if step % every == 0:
                        samples = model.sample(500, generator=torch.Generator().manual_seed(1), class_labels=monitor_labels)
                        histogram = class_histogram(judge.predict(samples), 10)
                        log["step"].append(step)
                        log["d_loss"].append(d_total / every)
                        log["g_loss"].append(g_total / every)
                        log["entropy"].append(histogram_entropy(histogram))
                        d_total = g_total = 0.0
                model.eval()
                return log


            widths = {"image_size": 8, "latent_dim": 32, "generator_hidden_sizes": [128, 256],
                      "discriminator_hidden_sizes": [256, 128]}
            runs = {"GAN": ("gan-mnist", {}), "GAN, spectral norm": ("gan-mnist", {"spectral_norm": True}),
                    "cGAN": ("gan-mnist", {"num_classes": 10})}
            gans, logs = {}, {}
            for name, (preset, options) in runs.items():
                torch.manual_seed(0)
                gans[name] = hfdl.create_model(preset, **widths, **options)
                start = time.perf_counter()
                logs[name] = train_gan(gans[name])
                print(f"{name}: {gans[name].num_parameters():,} parameters, 1,500 steps in {time.perf_counter() - start:.0f} s, "
                      f"class histogram entropy {logs[name]['entropy'][-1]:.2f} nats (max {math.log(10):.2f})")

            figure, axes = plt.subplots(1, 2, figsize=(8, 2.3))
            for name, log in logs.items():
                axes[0].plot(log["step"], log["d_loss"], label=f"{name}: D")
                axes[0].plot(log["step"], log["g_loss"], "--", label=f"{name}: G")
                axes[1].plot(log["step"], log["entropy"], label=name)
            axes[0].set_title("losses (mean over 100 steps)")
            axes[0].set_ylim(0, 6)
            axes[0].legend(ncol=2, fontsize=6, loc="upper left")
            axes[1].axhline(math.log(10), color="grey", linestyle=":", label="log 10 (uniform)")
            axes[1].set_title("class histogram entropy (nats)")
            axes[1].legend(fontsize=8)
            for axis in axes:
                axis.set_xlabel("step")
            plt.show()
            histogram = class_histogram(judge.predict(gans["GAN"].sample(1000, generator=torch.Generator().manual_seed(2))), 10)
            print(f"GAN: the judge's class histogram of 1,000 samples, digits 0-9: {histogram.tolist()}")
            """
        ),
        md(
            """
            The monitor tells the story the losses hide. The D and G losses do not go down together -- each network's
            progress is the other's loss. The plain GAN's D loss falls while its G loss climbs, so D is winning, but the
            losses do not say what G does about it. The monitor does: the plain MLP GAN has **collapsed**: its class
            histogram entropy falls to near 0 and never recovers, and the judge finds only one or two digits among 1,000
            samples (the histogram printed under the curves). The generator found a few images the discriminator could
            not reject; the discriminator, chasing them, moves on, and the generator jumps to the next few rather than
            spreading out. Spectral normalisation bounds how fast D's output can change with its input (its Lipschitz
            constant), which keeps its gradients informative for every sample; the same GAN with it keeps a high
            entropy. The cGAN is asked for every digit in turn, so its class histogram is uniform by construction.

            Samples from the same seed (the cGAN is asked for digit k in row k):
            """
        ),
        code(
            """
            requested = torch.arange(10).repeat_interleave(6)  # six of each class
            figure, axes = plt.subplots(1, 3, figsize=(7, 3.2))
            for axis, (name, model) in zip(axes, gans.items()):
                labels = requested if model.config.num_classes else None
                show_grid(model.sample(60, generator=torch.Generator().manual_seed(0), class_labels=labels), rows=10,
                          title=name, axis=axis)
            plt.show()
            """
        ),
        md(
            """
            Numbers for the same comparison, from 1,000 samples each (`hfdl.evaluation.generative_report`): the
            **Frechet distance** between the Gaussians fitted to the judge's penultimate features of the samples and
            of the training digits (the FID's formula, Heusel et al., 2017, in this classifier's feature space instead
            of Inception's, whose weights cannot be downloaded here); the class histogram entropy; and for the cGAN
            the fraction of samples the judge assigns to the requested class. The 360 real test digits give the floor
            (the distance of a perfect generator, which is not 0 for a finite sample), and the VAE is measured too.
            """
        ),
        code(
            """
            reference = judge.statistics(x_train)
            seed = torch.Generator().manual_seed(3)
            requested = torch.arange(1000) % 10
            candidates = {
                "real test digits (floor)": (x_test, None),
                "VAE (beta = 1)": (vae.sample(1000, generator=seed), None),
                "GAN": (gans["GAN"].sample(1000, generator=seed), None),
                "GAN, spectral norm": (gans["GAN, spectral norm"].sample(1000, generator=seed), None),
                "cGAN": (gans["cGAN"].sample(1000, generator=seed, class_labels=requested), requested),
            }
            print(f"{'samples':<26} {'Frechet distance':>16} {'entropy':>8} {'as requested':>13}")
            for name, (images, asked) in candidates.items():
                report = generative_report(judge, images, reference_stats=reference, requested=asked)
                fraction = "" if asked is None else f"{report['conditional_accuracy']:.3f}"
                print(f"{name:<26} {report['frechet_distance']:>16.2f} {report['entropy']:>8.3f} {fraction:>13}")
            """
        ),
        md(
            """
            The numbers agree with the pictures and separate what the entropy alone cannot. The collapsed GAN is two
            orders of magnitude farther from the data than the real digits' floor. The cGAN has a uniform class
            histogram and draws the requested digit almost every time (the README's goal for the MNIST cGAN is
            90 %), yet its distance is larger than the VAE's: within each class its samples are nearly identical (the
            rows above), a collapse *inside* the classes that the class histogram cannot see and the covariance term
            of the Frechet distance does. The VAE's samples, blurrier but varied, are the closest to the data in this
            feature space.
            """
        ),
        md(
            """
            ## 3. DCGAN's layout

            Radford et al. (2016) made GANs convolutional with a few rules: no pooling (stride-2 convolutions in D,
            fractionally-strided ones in G), BatchNorm in both networks (not on G's output or D's input), ReLU in G
            with a tanh output, LeakyReLU(0.2) in D, weights from N(0, 0.02). `dcgan-64` is the paper's 64x64 RGB
            network (its Figure 1): z of 100 numbers projected to a 4x4x1024 map, then 5x5 kernels doubling the side
            and halving the channels. The generator's hidden states show each layer's output shape; `dcgan-mnist` is
            the same layout at 28x28 (7 -> 14 -> 28).
            """
        ),
        code(
            """
            torch.manual_seed(0)
            dcgan = hfdl.create_model("dcgan-64")
            dcgan.eval()
            with torch.no_grad():
                states = dcgan(dcgan.sample_latents(1, generator=torch.Generator().manual_seed(0)), output_hidden_states=True)
            print("generator: " + " -> ".join(str(tuple(state.shape[1:])) for state in states.hidden_states))
            for name, network in (("generator", dcgan.generator), ("discriminator", dcgan.discriminator)):
                print(f"{name}: {sum(p.numel() for p in network.parameters()):,} parameters")
                for child_name, child in network.named_children():
                    count = sum(p.numel() for p in child.parameters())
                    if count:
                        print(f"    {child_name:<20} {count:>12,}")
            """
        ),
        md(
            """
            ## 4. The diffusers-style pipeline

            `hfdl.pipelines.GANPipeline` (and `VAEPipeline`, `DDPMPipeline`) give every generator the call of a
            `diffusers` pipeline: `pipe(num_images=..., generator=..., class_labels=...).images` is a list of PIL
            images, and `from_pretrained` reads a saved model folder (or a Hub repository). The noise comes from the
            `generator` exactly as in `model.sample`, so the same seed gives the same images; the pipeline can also
            be built around a model in memory.
            """
        ),
        code(
            """
            with tempfile.TemporaryDirectory() as folder:
                gans["GAN, spectral norm"].save_pretrained(folder)
                pipe = hfdl.pipelines.GANPipeline.from_pretrained(folder)
            images = pipe(num_images=8, generator=torch.Generator().manual_seed(0)).images
            tensors = pipe(num_images=8, generator=torch.Generator().manual_seed(0), output_type="pt").images
            same = torch.equal(tensors, gans["GAN, spectral norm"].sample(8, generator=torch.Generator().manual_seed(0)))
            print(f"{len(images)} {type(images[0]).__name__} images of {images[0].size} pixels, mode {images[0].mode}; "
                  f"same as model.sample with the same seed: {same}")
            vae_pipe = hfdl.pipelines.VAEPipeline(vae)  # built from a model in memory; from_pretrained works as above
            vae_images = vae_pipe(num_images=8, generator=torch.Generator().manual_seed(0), output_type="pt").images
            print(f"VAEPipeline: same as vae.sample with the same seed: "
                  f"{torch.equal(vae_images, vae.sample(8, generator=torch.Generator().manual_seed(0)))}")
            figure, axes = plt.subplots(1, 8, figsize=(8, 1.2))
            for axis, image in zip(axes, images):
                axis.imshow(image, cmap="gray")
                axis.axis("off")
            plt.show()
            """
        ),
        md(
            """
            ## 5. A diffusion model for comparison

            The chapter ends on diffusion models. `hfdl.pipelines.DDPMPipeline` wraps `diffusers`' own `UNet2DModel` and
            `DDPMScheduler` (Ho et al., 2020) behind the same call: a U-Net learns to predict the noise that the forward
            process added to an image at a random step t of 1,000, and sampling runs the chain backwards from pure
            noise. Below, a tiny U-Net (two levels, 8x8 -> 4x4, no attention) is trained for 300 steps with that loss
            and sampled with a DDIM scheduler (Song et al., 2021) in 50 steps instead of 1,000, through the same
            pipeline. That is far too little training for a diffusion model, which learns slowly but steadily; the
            README's benchmark (`recipes/train_ddpm.py` on MNIST) trains it properly and puts its Frechet distance
            beside the GAN's and the VAE's.
            """
        ),
        code(
            """
            from diffusers import DDIMScheduler

            from hfdl.pipelines.ddpm import make_ddpm_scheduler, make_ddpm_unet

            torch.manual_seed(0)
            unet = make_ddpm_unet(image_size=8, block_out_channels=(16, 32), attention=False, norm_num_groups=8)
            scheduler = make_ddpm_scheduler()
            optimizer = torch.optim.AdamW(unet.parameters(), lr=2e-3)
            draws = torch.Generator().manual_seed(0)
            start, losses = time.perf_counter(), []
            unet.train()
            for step in range(300):
                clean = real_train[torch.randint(len(real_train), (64,), generator=draws)]
                noise = torch.randn(clean.shape, generator=draws)
                timesteps = torch.randint(scheduler.config.num_train_timesteps, (64,), generator=draws)
                loss = F.mse_loss(unet(scheduler.add_noise(clean, noise, timesteps), timesteps).sample, noise)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            print(f"U-Net: {unet.num_parameters():,} parameters, 300 steps in {time.perf_counter() - start:.0f} s; "
                  f"noise-prediction MSE {np.mean(losses[:50]):.3f} (first 50 steps) -> {np.mean(losses[-50:]):.3f} (last 50)")

            ddpm = hfdl.pipelines.DDPMPipeline(unet, DDIMScheduler.from_config(scheduler.config))
            ddpm.set_progress_bar_config(disable=True)
            samples = ddpm(num_images=64, generator=torch.Generator().manual_seed(0), num_inference_steps=50,
                           output_type="pt").images
            report = generative_report(judge, samples, reference_stats=reference)
            print(f"DDPM (300 steps, 64 samples): Frechet distance {report['frechet_distance']:.2f}, entropy "
                  f"{report['entropy']:.3f} (64 samples: not comparable with the 1,000-sample table)")
            plt.figure(figsize=(4.4, 2.4))
            show_grid(samples[:32], rows=4, title="DDPM after 300 steps, DDIM sampling in 50 steps")
            plt.show()
            """
        ),
        md(
            """
            After 300 steps the samples are digit-like strokes, many not yet readable: diffusion models need far more
            training than this, and 50 (or 1,000) network evaluations per sample where a GAN or a VAE needs one. In exchange, training is a plain
            regression with no adversary to balance, and the samples already spread over the classes.
            """
        ),
        md(
            """
            ## Next

            * `recipes/train_gan.py --model dcgan-mnist` (and `cgan-mnist`, `gan-mnist`) trains on MNIST with two
              optimizers through one Accelerator, writes fixed-noise sample grids, logs the entropy monitor and
              resumes after a kill; `recipes/train_autoencoder.py --model vae-mnist` trains the VAE with dynamic
              binarisation and KL annealing.
            * `hfdl.export.export_generative` exports the decoders and generators to ONNX, one graph each, and its
              onnxruntime pipeline draws the same images as PyTorch for the same seed.
            * The `latent-explorer` Space walks the 2-D VAE's latent grid; `gan-studio` draws DCGAN and cGAN samples
              by seed and class beside the DDPM comparator.
            """
        ),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


#: File name -> builder; tests/test_notebooks.py compares every file with its builder's output.
NOTEBOOKS = {
    "01_foundations_mlp_lenet5.ipynb": foundations_mlp_lenet5,
    "05_cnns.ipynb": cnns,
    "07_autoencoders.ipynb": autoencoders,
    "08_generative.ipynb": generative,
    "09_transformers_text.ipynb": transformers_text,
    "09_vision_transfer.ipynb": vision_transfer,
}


def build(builder: Callable[[], nbformat.NotebookNode]) -> nbformat.NotebookNode:
    """The notebook as written below, not executed, with stable cell ids (random ids would churn every rebuild)."""
    notebook = builder()
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:02d}"
    nbformat.validate(notebook)
    return notebook


def execute(notebook: nbformat.NotebookNode) -> float:
    """Run every cell of ``notebook`` in a fresh kernel, storing the outputs in it; return the seconds it took.

    Raises ``nbclient.exceptions.CellExecutionError`` (naming the cell, with its traceback) on the first error. The
    kernel is ``python3``, which jupyter_client resolves to the interpreter running this function (the venv).
    """
    with tempfile.TemporaryDirectory() as ipython_dir:
        profile = Path(ipython_dir) / "profile_default"
        profile.mkdir()
        (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG, encoding="utf-8")
        environment = {**os.environ, **KERNEL_ENVIRONMENT, "IPYTHONDIR": ipython_dir}
        environment.pop("MPLBACKEND", None)
        client = NotebookClient(
            notebook,
            timeout=CELL_TIMEOUT_SECONDS,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},  # cells run with notebooks/ as working directory
            record_timing=False,  # no execution timestamps in the cell metadata
            coalesce_streams=True,  # one stdout output per cell, however the kernel happened to flush it
        )
        start = time.perf_counter()
        client.execute(env=environment)
        return time.perf_counter() - start


def build_executed(builder: Callable[[], nbformat.NotebookNode]) -> tuple[nbformat.NotebookNode, float]:
    """The notebook built and executed, with the volatile metadata the kernel added removed; and its seconds."""
    notebook = build(builder)
    metadata = copy.deepcopy(notebook.metadata)
    seconds = execute(notebook)
    notebook.metadata = metadata  # nbclient stores the kernel's Python version and more in language_info
    nbformat.validate(notebook)
    return notebook, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"notebooks to build (default: {', '.join(NOTEBOOKS)})"
    )
    names = parser.parse_args(argv).names or list(NOTEBOOKS)
    unknown = [name for name in names if name not in NOTEBOOKS]
    if unknown:
        parser.error(f"unknown notebook(s) {', '.join(unknown)}; available: {', '.join(NOTEBOOKS)}")
    for name in names:
        notebook, seconds = build_executed(NOTEBOOKS[name])
        path = NOTEBOOKS_DIR / name
        path.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")
        print(f"wrote {path} (executed in {seconds:.1f} s, {path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
