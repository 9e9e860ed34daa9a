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
