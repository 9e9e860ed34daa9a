"""The course notebooks: rendered and executed by notebooks/build_notebooks.py, committed with their outputs.

The fast tests read the committed files: their cells are what the script renders (a hand edit to an ``.ipynb`` or a
forgotten rebuild fails), and they were executed (execution counts in order, no errors or warnings, one PNG per
``plt.show()``, a size fit to commit). The slow test executes each notebook again, as CI does, and checks that the
numbers it prints are the committed ones. It prints how long each notebook took (meant to stay under a minute on two
CPU cores) rather than asserting a time, which would fail on a busy machine for reasons that have nothing to do with
the notebook.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK_PATHS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
NOTEBOOK_IDS = [path.stem for path in NOTEBOOK_PATHS]
REBUILD = "run python notebooks/build_notebooks.py and commit the result"
#: A committed notebook stays small: figures at a modest resolution, no progress bars or long logs.
MAX_NOTEBOOK_BYTES = 256 * 1024
MAX_STREAM_CHARACTERS = 2_000
#: Decimal numbers a cell prints (losses, accuracies), not version strings such as 2.14.1.
PRINTED_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?![\w.])")
#: Lines where a notebook claims two computations agree (attention by hand against the module, a padded sentence
#: against the same sentence alone): every number after the phrase must be below the tolerance, in the committed
#: file and on every re-execution. File -> (phrase, tolerance, how many numbers the notebook prints after it).
AGREEMENT_CLAIMS = {"09_transformers_text.ipynb": ("max abs difference", 1e-5, 4)}
ANY_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


def load_builder():
    """Import notebooks/build_notebooks.py by path (notebooks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS_DIR / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def builder():
    return load_builder()


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def printed_numbers(notebook) -> list[list[float]]:
    """The decimal numbers each code cell printed on stdout."""
    return [
        [
            float(number)
            for output in cell.outputs
            if output.output_type == "stream" and output.name == "stdout"
            for number in PRINTED_NUMBER.findall(output.text)
        ]
        for cell in code_cells(notebook)
    ]


def check_outputs(name: str, notebook) -> int:
    """No errors and nothing on stderr in any cell, one PNG per ``plt.show()``; return the number of figures."""
    figures = 0
    for index, cell in enumerate(code_cells(notebook), start=1):
        where = f"{name}, code cell {index}"
        errors = [f"{output.ename}: {output.evalue}" for output in cell.outputs if output.output_type == "error"]
        assert not errors, f"{where} raised {errors}"
        streams = [output for output in cell.outputs if output.output_type == "stream"]
        stderr = [output.text for output in streams if output.name == "stderr"]
        assert not stderr, f"{where} wrote warnings or progress bars to stderr: {stderr}"
        for output in streams:
            assert len(output.text) <= MAX_STREAM_CHARACTERS, f"{where} printed {len(output.text):,} characters"
        pngs = sum("image/png" in output.get("data", {}) for output in cell.outputs)
        assert pngs == cell.source.count("plt.show()"), f"{where}: {pngs} PNG figure(s) for its plt.show() calls"
        figures += pngs
    return figures


def check_agreement_claims(name: str, notebook) -> None:
    """The differences a notebook prints where it says two results are equal are within its tolerance."""
    if name not in AGREEMENT_CLAIMS:
        return
    phrase, tolerance, expected = AGREEMENT_CLAIMS[name]
    differences = [
        float(number)
        for cell in code_cells(notebook)
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
        for line in output.text.splitlines()
        if phrase in line
        for number in ANY_NUMBER.findall(line.split(phrase, 1)[1])
    ]
    assert len(differences) == expected, f"{name} printed {differences} after {phrase!r}, expected {expected} numbers"
    assert max(differences) < tolerance, f"{name}: {phrase} {differences}, not all below {tolerance}"


def test_every_notebook_on_disk_has_a_builder(builder):
    assert {path.name for path in NOTEBOOK_PATHS} == set(builder.NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=NOTEBOOK_IDS)
def test_cells_on_disk_are_what_the_script_renders(builder, path):
    """Sources, cell types and ids, not outputs: those come from executing the sources."""
    expected = builder.build(builder.NOTEBOOKS[path.name])
    on_disk = nbformat.read(path, as_version=4)
    assert on_disk.metadata == expected.metadata, f"{path.name}: notebook metadata differs from the script; {REBUILD}"
    assert len(on_disk.cells) == len(expected.cells), f"{path.name} has a different number of cells; {REBUILD}"
    for index, (disk_cell, expected_cell) in enumerate(zip(on_disk.cells, expected.cells)):
        assert (disk_cell.id, disk_cell.cell_type, disk_cell.source) == (
            expected_cell.id,
            expected_cell.cell_type,
            expected_cell.source,
        ), f"{path.name}: cell {index} differs from notebooks/build_notebooks.py; {REBUILD}"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=NOTEBOOK_IDS)
def test_committed_notebooks_are_executed_with_their_figures(path):
    notebook = nbformat.read(path, as_version=4)
    cells = code_cells(notebook)
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name} is not executed top to bottom ({counts}); {REBUILD}"
    assert check_outputs(path.name, notebook) > 0, f"{path.name} shows no figure"
    check_agreement_claims(path.name, notebook)
    for cell in cells:
        assert "execution" not in cell.metadata, f"{path.name} stores execution timings; {REBUILD}"
    size = path.stat().st_size
    assert size <= MAX_NOTEBOOK_BYTES, f"{path.name} is {size:,} bytes; keep figures small and outputs short"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=NOTEBOOK_IDS)
def test_notebook_executes_and_prints_the_committed_numbers(builder, path, record_property):
    committed = nbformat.read(path, as_version=4)
    notebook = copy.deepcopy(committed)
    for cell in code_cells(notebook):
        cell.outputs, cell.execution_count = [], None
    seconds = builder.execute(notebook)  # raises CellExecutionError, with the cell and its traceback, on an error
    record_property("seconds", round(seconds, 1))
    print(f"{path.name}: executed in {seconds:.1f} s (budget: 60 s on 2 CPU cores)")

    assert check_outputs(path.name, notebook) == check_outputs(path.name, committed)
    check_agreement_claims(path.name, notebook)
    # Every training starts from a seed, so the numbers repeat; the tolerance absorbs another CPU's rounding.
    for index, (fresh, stored) in enumerate(zip(printed_numbers(notebook), printed_numbers(committed)), start=1):
        assert fresh == pytest.approx(stored, rel=0.05, abs=0.02), (
            f"{path.name}, code cell {index} now prints {fresh}, the committed notebook {stored}; "
            f"if the change is intended, {REBUILD}"
        )
