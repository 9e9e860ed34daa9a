"""Keep what model folders copy identical to its source: ``hfdl_utils.py`` and ``# Copied from`` blocks.

Model folders are uploaded to the Hub as remote code and may import only torch, transformers, the standard library
and their own siblings, so shared code is copied into them rather than imported (the transformers convention):

* every folder of ``hfdl/models/`` holds a byte-identical copy of ``hfdl/layers/hfdl_utils.py``, and every folder
  with an image processor (an ``image_processing_*.py``) one of ``hfdl/layers/hfdl_image_processing.py``, and
  every folder whose model defines a backbone one of ``hfdl/layers/hfdl_backbone.py``, and every folder whose code
  imports the shared attention one of ``hfdl/layers/hfdl_attention.py``;
* a ``# Copied from hfdl.<module>.<name>`` marker (``hfdl.layers.attention.MultiHeadAttention``,
  ``hfdl.models.alexnet.modeling_alexnet.AlexNetBlock``) says that the top-level definition after it equals the
  named one.

This checker reports drift of both; ``--fix`` rewrites the copies from their source.

Usage: ``python -m hfdl.tools.check_copies [--fix]``, or ``python hfdl/tools/check_copies.py --fix`` when a broken
copy keeps ``import hfdl`` from working (this file imports only the standard library).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^# Copied from hfdl\.(?P<module>[\w.]+)\.(?P<name>\w+)\s*$")
#: Shared files copied byte for byte into model folders -> which folders must carry them.
SHARED_FILES = {
    PACKAGE_ROOT / "layers" / "hfdl_utils.py": lambda folder: True,
    PACKAGE_ROOT / "layers" / "hfdl_image_processing.py": lambda folder: any(folder.glob("image_processing_*.py")),
    PACKAGE_ROOT / "layers" / "hfdl_backbone.py": lambda folder: any(
        "Backbone(" in path.read_text() for path in folder.glob("modeling_*.py")
    ),
    PACKAGE_ROOT / "layers" / "hfdl_attention.py": lambda folder: any(
        "from .hfdl_attention import" in path.read_text() for path in folder.glob("*.py")
    ),
    PACKAGE_ROOT / "layers" / "hfdl_autoencoding.py": lambda folder: any(
        "from .hfdl_autoencoding import" in path.read_text() for path in folder.glob("*.py")
    ),
}


@dataclass
class CopyMismatch:
    path: Path
    line: int
    source: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: copy differs from hfdl.{self.source}"


def _definition_span(tree: ast.Module, name: str) -> tuple[int, int] | None:
    """Return the 0-based [start, end) line span of the top-level def/class/assignment called ``name``."""
    for node in tree.body:
        names: list[str] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [target.id for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        if name in names:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            return start - 1, node.end_lineno
    return None


def _source_block(module: str, name: str) -> list[str]:
    path = PACKAGE_ROOT.joinpath(*module.split(".")).with_suffix(".py")
    if not path.exists():
        raise ValueError(f"hfdl.{module} does not exist ({path})")
    text = path.read_text(encoding="utf-8")
    span = _definition_span(ast.parse(text), name)
    if span is None:
        raise ValueError(f"hfdl.{module} has no top-level definition named {name!r}")
    return text.splitlines(keepends=True)[span[0] : span[1]]


def check_file(path: Path, fix: bool = False) -> list[CopyMismatch]:
    """Check (and with ``fix`` rewrite) the copies in one file; return the mismatches found."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    tree = ast.parse(text)
    top_level_starts = sorted(
        (
            min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1,
            node.end_lineno,
        )
        for node in tree.body
    )
    mismatches: list[CopyMismatch] = []
    replacements: list[tuple[int, int, list[str]]] = []
    for index, line in enumerate(lines):
        match = MARKER.match(line)
        if not match:
            continue
        following = [span for span in top_level_starts if span[0] > index]
        if not following:
            raise ValueError(f"{path}:{index + 1}: marker is not followed by a definition")
        start, end = following[0]
        expected = _source_block(match["module"], match["name"])
        if lines[start:end] != expected:
            mismatches.append(CopyMismatch(path, index + 1, f"{match['module']}.{match['name']}"))
            replacements.append((start, end, expected))
    if fix and replacements:
        for start, end, expected in sorted(replacements, reverse=True):
            lines[start:end] = expected
        path.write_text("".join(lines), encoding="utf-8")
    return mismatches


def check_shared_files(fix: bool = False, root: Path | None = None) -> list[CopyMismatch]:
    """Check (and with ``fix`` write) the copies of :data:`SHARED_FILES` in each model folder.

    A folder that needs a shared file must hold it unchanged; a folder that holds one it does not need is flagged
    too (stale after a refactor), and ``fix`` removes it.
    """
    root = root or PACKAGE_ROOT / "models"
    mismatches = []
    for folder in sorted(path.parent for path in root.glob("*/__init__.py")):
        for source, needed_in in SHARED_FILES.items():
            copy = folder / source.name
            if needed_in(folder):
                if not copy.is_file() or copy.read_bytes() != source.read_bytes():
                    mismatches.append(CopyMismatch(copy, 1, f"layers.{source.stem} (whole file)"))
                    if fix:
                        copy.write_bytes(source.read_bytes())
            elif copy.exists():
                mismatches.append(CopyMismatch(copy, 1, f"layers.{source.stem} (not needed here)"))
                if fix:
                    copy.unlink()
    return mismatches


def check_copies(fix: bool = False, root: Path | None = None) -> list[CopyMismatch]:
    """Check the shared file of every model folder and every ``# Copied from`` block under ``root``."""
    root = root or PACKAGE_ROOT / "models"
    mismatches = check_shared_files(fix=fix, root=root)
    for path in sorted(root.rglob("*.py")):
        if path.name not in {source.name for source in SHARED_FILES}:
            mismatches.extend(check_file(path, fix=fix))
    return mismatches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fix", action="store_true", help="rewrite drifted copies from their source")
    args = parser.parse_args(argv)
    mismatches = check_copies(fix=args.fix)
    for mismatch in mismatches:
        print(("fixed " if args.fix else "") + str(mismatch))
    if mismatches and not args.fix:
        print(f"{len(mismatches)} copies differ; run `python -m hfdl.tools.check_copies --fix`.")
        return 1
    print(
        "Shared-file copies and `# Copied from` blocks match their source."
        if not mismatches
        else f"Fixed {len(mismatches)} copies."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
