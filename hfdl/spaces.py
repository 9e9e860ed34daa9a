"""What hfdl's Gradio Spaces share (each Space installs hfdl, see its ``requirements.txt``).

Spaces import this at request time, not at import time: importing a Space's ``app.py`` must stay cheap (no torch).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any


def save_png(picture: Any, cache_dir: str | os.PathLike, name: str) -> str:
    """Write a PIL ``picture`` as ``<cache_dir>/<content hash>/<name>.png`` and return the path, for Gradio to serve.

    Why not return the PIL image: Gradio 6.31 then encodes it as WebP (7-17 ms for a 478x296 picture; lossy, which
    blurs a pixel grid) and writes it *in place* to ``<cache>/<content hash>/image.webp``
    (``processing_utils.save_pil_to_cache``). Identical inputs give identical pictures, hence the same path, and
    while one request rewrote the file (truncating it first) another was sending it: the client got fewer bytes than
    the declared Content-Length (gradio issue #8878). Here the bytes go to a unique temporary file that is renamed
    over the final name: a reader opens either the old or the new inode, both complete and identical. An existing
    picture is only touched, so that ``delete_cache`` (which ages files by ctime) does not remove it while it is
    handed out again. PNG at ``compress_level=1`` takes 2-3 ms and is lossless.
    """
    buffer = io.BytesIO()
    picture.save(buffer, format="png", compress_level=1)
    data = buffer.getvalue()
    directory = Path(cache_dir) / hashlib.sha256(data).hexdigest()
    path = directory / f"{name}.png"
    try:
        os.utime(path)
        return str(path)
    except FileNotFoundError:  # first time this picture is made (or it was deleted from the cache since)
        pass
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=f".{name}.", suffix=".png", delete=False) as staging:
        try:
            staging.write(data)
            staging.close()
            os.replace(staging.name, path)
        except BaseException:  # a full disk: leave no half-written staging file behind
            Path(staging.name).unlink(missing_ok=True)
            raise
    return str(path)


def image_grid(images: Any, columns: int | None = None, min_width: int = 224) -> Any:
    """Images in [0, 1] as one PIL picture: tiles in rows of ``columns``, edge to edge, every pixel enlarged by the
    same integer factor (nearest).

    ``images``: a tensor or array of shape (N, C, H, W) with C in {1, 3}, or (N, H, W); ``columns``: tiles per row
    (default: all in one row); empty cells of the last row stay black. Why no gaps and no smoothing: a decoded latent
    grid is read as one picture of the latent space (Kingma & Welling's figure 4), and with a whole factor ``f``,
    ``numpy.asarray(picture)[::f, ::f]`` gives each tile's ``round(255 * x)`` back, so a test can compare the pixels
    with the model's own output. The factor is the smallest that makes the picture at least ``min_width`` wide.

    Raises:
        ValueError: An array of another shape, an empty batch, or ``columns`` below 1.
    """
    import numpy as np
    from PIL import Image

    if hasattr(images, "detach"):  # a torch tensor; no torch import needed to recognise one
        images = images.detach().float().cpu().numpy()
    array = np.asarray(images, dtype=np.float64)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[0] == 0 or array.shape[1] not in (1, 3):
        raise ValueError(f"Expected images of shape (N, C, H, W) with N >= 1 and C in 1 or 3; got {array.shape}.")
    count, channels, height, width = array.shape
    columns = count if columns is None else columns
    if columns < 1:
        raise ValueError(f"columns must be at least 1; got {columns}.")
    rows = -(-count // columns)
    tiles = np.zeros((rows * columns, channels, height, width))
    tiles[:count] = np.clip(array, 0.0, 1.0)
    # (rows, columns, C, H, W) -> (rows, H, columns, W, C) -> (rows * H, columns * W, C)
    sheet = tiles.reshape(rows, columns, channels, height, width).transpose(0, 3, 1, 4, 2)
    sheet = (sheet.reshape(rows * height, columns * width, channels) * 255.0).round().astype(np.uint8)
    factor = max(1, -(-min_width // (columns * width)))
    sheet = sheet.repeat(factor, axis=0).repeat(factor, axis=1)
    return Image.fromarray(sheet[..., 0] if channels == 1 else sheet)


def save_gif(frames: list[Any], cache_dir: str | os.PathLike, name: str, duration_ms: int = 120) -> str:
    """Write PIL ``frames`` as a looping GIF ``<cache_dir>/<content hash>/<name>.gif`` and return the path.

    The same care as :func:`save_png` (a unique staging file renamed into place, an existing file only touched), for
    the same reason: identical requests give identical animations, and one must never be sent half-written. Frames of
    mode ``L`` are stored losslessly (a GIF palette holds all 256 grey levels); RGB frames are reduced to 256 colours
    by Pillow. ``optimize=False`` keeps Pillow from merging or cropping frames, so frame ``i`` reads back whole.
    """
    if not frames:
        raise ValueError("save_gif needs at least one frame.")
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="gif",
        save_all=True,
        append_images=list(frames[1:]),
        duration=duration_ms,
        loop=0,
        optimize=False,
        disposal=1,
    )
    data = buffer.getvalue()
    directory = Path(cache_dir) / hashlib.sha256(data).hexdigest()
    path = directory / f"{name}.gif"
    try:
        os.utime(path)
        return str(path)
    except FileNotFoundError:
        pass
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=f".{name}.", suffix=".gif", delete=False) as staging:
        try:
            staging.write(data)
            staging.close()
            os.replace(staging.name, path)
        except BaseException:
            Path(staging.name).unlink(missing_ok=True)
            raise
    return str(path)
