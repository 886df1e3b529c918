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

from ..course.device import default_device, describe_hardware

# Notebook metadata that makes Colab open a notebook on a GPU runtime (a free T4), as Colab itself writes it.
COLAB_GPU_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}


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


# Run after the chapter's last cell, in its kernel, then removed: the kernel's peak memory.
_PEAK_PROBE = ("import json as _json\nfrom course_lib.book.results import peak_memory as _peak_memory\n"
               "print('COURSE_PEAK_MEMORY', _json.dumps(_peak_memory()))")


def _run_probe_last(nb, client) -> dict | None:
    """Execute a probe cell after the notebook's cells, return its peak-memory dict, remove the cell."""
    import json

    import nbformat

    nb.cells.append(nbformat.v4.new_code_cell(_PEAK_PROBE))
    try:
        client.execute()
    finally:
        probe = nb.cells.pop()
    text = "".join(o.get("text", "") for o in probe.get("outputs", []) if o.get("output_type") == "stream")
    line = next((ln for ln in text.splitlines() if ln.startswith("COURSE_PEAK_MEMORY ")), None)
    return json.loads(line.split(" ", 1)[1]) if line else None


def execute(py_path: str | os.PathLike, profile: str, timeout: int = 1800) -> Path:
    """Execute the chapter ``py_path`` top to bottom under ``COURSE_PROFILE=profile`` and write
    the paired .ipynb with its outputs, widget state, and provenance in its metadata (profile,
    device, hardware, torch, wall ``seconds``, the kernel's ``peak_memory`` in GiB, date).
    Cells carry no timing metadata, so re-running changes only what the outputs change."""
    import nbclient
    import nbformat

    py_path = Path(py_path)
    nb = read_py(py_path)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.update(COLAB_GPU_METADATA)  # Colab opens the notebook on a T4 GPU runtime
    os.environ["COURSE_PROFILE"] = profile
    start = time.perf_counter()
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                     store_widget_state=True, resources={"metadata": {"path": str(py_path.parent)}})
    peak = _run_probe_last(nb, client)
    device = default_device()
    nb.metadata["course"] = {
        "profile": profile, "device": str(device), "hardware": describe_hardware(device),
        "torch": torch.__version__, "seconds": round(time.perf_counter() - start, 1),
        "peak_memory": peak, "executed": datetime.date.today().isoformat(),
    }
    out = py_path.with_suffix(".ipynb")
    nbformat.write(nb, out)
    return out


def toc_chapters(root: str | os.PathLike) -> list[Path]:
    """The chapters' py:percent files, relative to ``root``, in the order of book/_toc.yml."""
    import yaml

    toc = yaml.safe_load((Path(root) / "book/_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", []) if "file" in c]
    return [Path(f).with_suffix(".py") for f in files if f.startswith("chapters/")]


def chapter_title(nb) -> str:
    """The notebook's first markdown heading ("1. Diffusion on a swiss roll")."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "(untitled)"


def chapter_results(ipynb_path: str | os.PathLike, root: str | os.PathLike) -> dict:
    """What an executed chapter notebook holds about its run, for results/results.json: provenance
    from its metadata (written by ``execute``) and the metrics its cells reported
    (``course_lib.book.results.report``; empty when none). Raises if the notebook has no provenance."""
    import nbformat

    from .results import notebook_results

    ipynb_path = Path(ipynb_path)
    nb = nbformat.read(ipynb_path, as_version=4)
    meta = nb.metadata.get("course")
    if not meta or "profile" not in meta:
        raise ValueError(f"{ipynb_path} has no provenance (metadata.course): execute it with scripts/run_chapters.py")
    reported = notebook_results(nb) or {}
    if reported and reported["profile"] != meta["profile"]:
        raise ValueError(f"{ipynb_path}: metadata says profile {meta['profile']!r} but its report says "
                         f"{reported['profile']!r}; re-execute it")
    rel = ipynb_path.resolve().relative_to(Path(root).resolve())
    return {
        "chapter": rel.parent.name, "title": chapter_title(nb), "notebook": rel.as_posix(),
        "profile": meta["profile"], "device": meta.get("device"), "hardware": meta.get("hardware"),
        "torch": meta.get("torch"), "executed": meta.get("executed"), "wall_seconds": meta.get("seconds"),
        "peak_memory": meta.get("peak_memory") or reported.get("peak_memory"),
        "metrics": reported.get("metrics", {}), "notes": reported.get("notes", {}),
    }
