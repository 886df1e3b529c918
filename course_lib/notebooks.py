"""Chapter notebooks: execute a chapter from its jupytext py:percent source, and check that
the .py and the stored .ipynb hold the same cells.

The .py is what people edit and review; the .ipynb keeps the executed outputs. Needs the
``book`` or ``test`` extra (jupytext, nbclient, ipykernel).
"""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path

import torch

from .device import default_device, describe_hardware


def read_py(py_path: str | os.PathLike):
    """The notebook a py:percent file describes (no outputs)."""
    import jupytext

    return jupytext.read(py_path, fmt="py:percent")


def _cells(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def pair_differences(py_path: str | os.PathLike, ipynb_path: str | os.PathLike) -> list[str]:
    """Where the .py and the .ipynb disagree (cell types, sources, tags); empty if in sync.

    Compares contents, never file times (unlike ``jupytext --sync``).
    """
    import nbformat

    py_cells = _cells(read_py(py_path))
    nb_cells = _cells(nbformat.read(ipynb_path, as_version=4))
    problems = []
    if len(py_cells) != len(nb_cells):
        problems.append(f"{len(py_cells)} cells in {py_path} but {len(nb_cells)} in {ipynb_path}")
    for k, (a, b) in enumerate(zip(py_cells, nb_cells)):
        if a != b:
            problems.append(f"cell {k}: {a[0]} {a[2]} {a[1][:60]!r}... differs from {b[0]} {b[2]} {b[1][:60]!r}...")
            break
    return problems


def execute(py_path: str | os.PathLike, profile: str, timeout: int = 1800) -> Path:
    """Execute the chapter ``py_path`` top to bottom under ``COURSE_PROFILE=profile`` and write
    the paired .ipynb with its outputs, widget state, and provenance in its metadata.
    Cells carry no timing metadata, so re-running changes only what the outputs change."""
    import nbclient
    import nbformat

    py_path = Path(py_path)
    nb = read_py(py_path)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    os.environ["COURSE_PROFILE"] = profile
    start = time.perf_counter()
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                     store_widget_state=True, resources={"metadata": {"path": str(py_path.parent)}})
    client.execute()
    device = default_device()
    nb.metadata["course"] = {
        "profile": profile, "device": str(device), "hardware": describe_hardware(device),
        "torch": torch.__version__, "seconds": round(time.perf_counter() - start, 1),
        "executed": datetime.date.today().isoformat(),
    }
    out = py_path.with_suffix(".ipynb")
    nbformat.write(nb, out)
    return out
