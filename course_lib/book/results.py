"""Headline results: a chapter reports its metrics, a script collects them from the executed notebooks.

A chapter's last code cells call ``report({...})``. That shows a small table and attaches the
machine-readable record to the cell's output as the MIME type ``RESULTS_MIME`` (with text/html and
text/plain beside it, which Jupyter, Colab and the book show instead). ``scripts/run_chapters.py``
reads the records back from the executed .ipynb (``notebook_results``) into results/results.json,
from which ``scripts/make_results_page.py`` writes the book's Results page, next to the papers'
numbers in ``PAPERS``.

A metric is a number, an ``FIDResult``, or a dict with a "value" and any of ``METRIC_FIELDS``:
    {"sample_fid": {"value": fid_result, "sampling_steps": 1000, "paper": "ddpm_cifar10_fid"}}
"""

from __future__ import annotations

import html
import math
import numbers
import platform
import re
import sys
from dataclasses import dataclass
from typing import Any

import torch

from ..course.device import default_device, describe_hardware
from ..evaluation.fid import FIDResult
from ..course.profiles import get_profile

RESULTS_MIME = "application/vnd.course-results+json"
SCHEMA = 1
METRIC_FIELDS = {  # field -> what it means (shown in the table, stored in results.json)
    "value": "the number (required)",
    "std": "the value's bootstrap standard deviation over the samples (a sweep point's spread)",
    "unit": "e.g. 'dB', 'bits/dim'; empty for unitless scores such as FID",
    "description": "what was measured, in a few words",
    "samples": "how many generated samples (or test images) the number is computed from",
    "reference": "what the samples are compared with, e.g. 'cifar10 test, 100 images'",
    "sampling_steps": "sampler steps (network evaluations per sample) behind the samples",
    "protocol": "how it was computed, where that changes the number (e.g. FID's resize)",
    "paper": "a key of PAPERS: the paper's number to show next to ours",
    "aim": "the course's target for the number, '<= 5.5' or '>= 25' (issues 18-20): the table says whether "
           "a run of an AIM_PROFILES profile meets it",
}
AIM_PROFILES = ("laptop", "colab", "full")  # the profiles whose runs are meant to meet the aims (not smoke)
_AIM = re.compile(r"^(<=|>=)\s*(-?\d+(?:\.\d+)?)$")
PROFILE_CAVEATS = {
    "smoke": "smoke: CPU, tiny model — not comparable to the papers",
    "laptop": "laptop: a 2-core CPU, small models trained for hours — the book's profile; not the papers' sizes",
    "colab": "colab: one T4 GPU, shortened training and small sample counts — indicative only",
    "full": "full: a data-centre GPU at the course's largest sizes — compare only where sample counts match",
}


@dataclass(frozen=True)
class PaperResult:
    """A number from a paper, for comparison (never ours). ``cite``: a key of book/references.bib."""

    chapter: int
    method: str
    metric: str
    value: float
    setting: str
    cite: str
    where: str = ""


_DDIM = "CIFAR-10, 50,000 samples, eta = 0"
PAPERS: dict[str, PaperResult] = {  # checked against shared/REFERENCE_NUMBERS.md
    "vae_cifar10_bpd": PaperResult(2, "Convolutional VAE", "bits/dim", 4.51, "CIFAR-10 test", "vandenoord2017vqvae"),
    "nvae_cifar10_bpd": PaperResult(2, "NVAE", "bits/dim", 2.91, "CIFAR-10 test", "vahdat2020nvae"),
    "ddpm_cifar10_fid": PaperResult(3, "DDPM", "FID", 3.17, "CIFAR-10, 50,000 samples vs training-set statistics, "
                                    "1,000 steps", "ho2020ddpm", "Tab. 1"),
    "ddpm_cifar10_nll": PaperResult(3, "DDPM", "bits/dim", 3.75, "CIFAR-10 test, an upper bound on the NLL", "ho2020ddpm",
                                    "Tab. 1"),
    **{f"ddim_cifar10_fid_{n}": PaperResult(4, f"DDIM, {n} steps", "FID", v, _DDIM, "song2021ddim", "Tab. 1")
       for n, v in ((10, 13.36), (20, 6.84), (50, 4.67), (100, 4.16), (1000, 4.04))},
    "dit_s2_gflops": PaperResult(7, "DiT-S/2", "Gflops", 6.06, "one forward pass on ImageNet-256's 32x32x4 latents "
                                 "(256 tokens)", "peebles2023dit"),
    "fm_ot_cifar10_fid": PaperResult(8, "Flow Matching, OT path", "FID", 6.35, "CIFAR-10, 142 function evaluations "
                                     "(dopri5)", "lipman2023flow", "Tab. 1"),
    "cd_cifar10_fid_1step": PaperResult(9, "Consistency distillation, 1 step", "FID", 3.55, "CIFAR-10, LPIPS metric",
                                        "song2023consistency"),
    "cd_cifar10_fid_2step": PaperResult(9, "Consistency distillation, 2 steps", "FID", 2.93, "CIFAR-10, LPIPS metric",
                                        "song2023consistency"),
}


def peak_memory() -> dict[str, float | None]:
    """Peak memory of this process so far, in GiB: the host's resident set (``getrusage``), and the
    most that torch allocated on the current CUDA device (None where CUDA was not used)."""
    out: dict[str, float | None] = {"host_rss_gib": None, "cuda_allocated_gib": None}
    try:
        import resource
    except ImportError:  # Windows
        pass
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        out["host_rss_gib"] = round(rss * (1 if sys.platform == "darwin" else 1024) / 2**30, 3)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return out


def _number(name: str, value: Any) -> int | float:
    """A plain int or float from a Python, NumPy or 0-d torch number."""
    if isinstance(value, bool) or isinstance(value, str) or not hasattr(value, "__float__"):
        raise TypeError(f"metric {name!r}: the value must be a number, got {type(value).__name__}")
    value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if not math.isfinite(value):
        raise ValueError(f"metric {name!r} is {value}: a headline number must be finite")
    return value


def normalize_metric(name: str, metric: Any) -> dict[str, Any]:
    """One metric as a dict with "value" and the ``METRIC_FIELDS`` it has (see the module docstring)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"metric names must be non-empty strings, got {name!r}")
    spec = dict(metric) if isinstance(metric, dict) else {"value": metric}
    if "value" not in spec:
        raise ValueError(f"metric {name!r} has no 'value'")
    if unknown := sorted(set(spec) - set(METRIC_FIELDS)):
        raise ValueError(f"metric {name!r}: unknown fields {unknown}; known: {sorted(METRIC_FIELDS)}")
    if isinstance(spec["value"], FIDResult):  # its own sample count, reference and protocol
        r = spec["value"]
        ref = r.reference if r.reference_count is None else f"{r.reference}, {r.reference_count:,} images"
        spec = ({"samples": r.num_samples, "reference": ref, "protocol": r.protocol, "std": r.std} | spec
                | {"value": r.value})
    spec["value"] = _number(name, spec["value"])
    if spec.get("std") is not None:
        spec["std"] = _number(f"{name} std", spec["std"])
    for key in ("samples", "sampling_steps"):
        if spec.get(key) is not None:
            if isinstance(spec[key], bool) or not isinstance(spec[key], numbers.Integral):
                raise TypeError(f"metric {name!r}: {key} must be an int, got {spec[key]!r}")
            spec[key] = int(spec[key])
    if spec.get("aim") is not None:
        op, bound = parse_aim(name, spec["aim"])
        spec["aim"] = f"{op} {format_value(bound)}"
    if spec.get("paper") is not None and spec["paper"] not in PAPERS:
        raise ValueError(f"metric {name!r}: unknown paper {spec['paper']!r}; known: {sorted(PAPERS)}")
    return {k: spec[k] for k in METRIC_FIELDS if spec.get(k) not in (None, "")}


def parse_aim(name: str, aim: Any) -> tuple[str, float]:
    """('<=' or '>=', the bound) of an aim such as '<= 5.5'."""
    match = _AIM.match(aim.strip()) if isinstance(aim, str) else None
    if not match:
        raise ValueError(f"metric {name!r}: aim must be '<= NUMBER' or '>= NUMBER' (e.g. '<= 50'), got {aim!r}")
    return match[1], float(match[2])


def aim_text(m: dict, profile: str) -> str:
    """The metric's aim and whether the value meets it ("≤ 5.5: met"); "" without an aim. A run of a profile
    that is not meant to meet the aims (smoke) shows the aim only, saying whose it is."""
    if "aim" not in m:
        return ""
    op, bound = parse_aim("aim", m["aim"])
    shown = f"{'≤' if op == '<=' else '≥'} {format_value(bound)}"
    if profile not in AIM_PROFILES:
        return f"{shown} (the aim of {', '.join(AIM_PROFILES)} runs)"
    met = m["value"] <= bound if op == "<=" else m["value"] >= bound
    return f"{shown}: {'met' if met else 'missed'}"


def format_value(value: int | float) -> str:
    """A metric value for people: ints with separators, floats to 4 significant digits (1 decimal above 100)."""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4g}"


def _rows(metrics: dict[str, dict], profile: str) -> list[list[str]]:
    papers, aims = any("paper" in m for m in metrics.values()), any("aim" in m for m in metrics.values())
    rows = [["metric", "value", "samples", "steps"] + (["aim"] if aims else []) + ["reference / notes"]
            + (["paper (not ours)"] if papers else [])]
    for name, m in metrics.items():
        extra = "; ".join(str(m[k]) for k in ("description", "reference", "protocol") if k in m)
        spread = f" ± {format_value(m['std'])}" if "std" in m else ""
        row = [name, f"{format_value(m['value'])}{spread} {m.get('unit', '')}".strip(),
               f"{m['samples']:,}" if "samples" in m else "",
               f"{m['sampling_steps']:,}" if "sampling_steps" in m else ""]
        row += ([aim_text(m, profile)] if aims else []) + [extra]
        if papers:
            p = PAPERS.get(m.get("paper"))
            row.append(f"{p.method}: {p.metric} {format_value(p.value)}" if p else "")
        rows.append(row)
    return rows


def _memory_text(peak: dict) -> str:
    if peak.get("cuda_allocated_gib") is not None:
        return f"peak memory {peak['cuda_allocated_gib']:.2f} GiB on the GPU, {peak['host_rss_gib'] or 0:.2f} GiB host"
    return f"peak memory {peak['host_rss_gib']:.2f} GiB (process RSS)" if peak.get("host_rss_gib") else ""


def _footer(record: dict) -> str:
    parts = [f"profile {record['profile']}", f"{record['device']} · {record['hardware']}", f"torch {record['torch']}",
             _memory_text(record["peak_memory"])]
    return " · ".join(p for p in parts if p)


def render_text(record: dict) -> str:
    rows = _rows(record["metrics"], record["profile"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"Results ({PROFILE_CAVEATS.get(record['profile'], record['profile'])})"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines += [f"{k}: {v}" for k, v in record["notes"].items()] + [_footer(record)]
    return "\n".join(lines)


def render_html(record: dict) -> str:
    esc = html.escape
    head, *body = _rows(record["metrics"], record["profile"])
    cells = lambda tag, row: "".join(f"<{tag}>{esc(c)}</{tag}>" for c in row)  # noqa: E731
    notes = "".join(f"<br><b>{esc(str(k))}</b>: {esc(str(v))}" for k, v in record["notes"].items())
    return (f'<div class="course-results"><p><b>Results</b> '
            f"({esc(PROFILE_CAVEATS.get(record['profile'], record['profile']))})</p>"
            f"<table><thead><tr>{cells('th', head)}</tr></thead><tbody>"
            + "".join(f"<tr>{cells('td', r)}</tr>" for r in body)
            + f"</tbody></table><p><small>{esc(_footer(record))}{notes}</small></p></div>")


def make_record(metrics: dict[str, Any], notes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The machine-readable record that ``report`` attaches: metrics, notes and provenance."""
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError("report needs a non-empty dict of metrics, e.g. report({'psnr': {'value': 24.1, 'unit': 'dB'}})")
    device = default_device()
    return {"schema": SCHEMA, "metrics": {name: normalize_metric(name, m) for name, m in metrics.items()},
            "notes": {str(k): str(v) for k, v in (notes or {}).items()}, "profile": get_profile().name,
            "device": str(device), "hardware": describe_hardware(device), "torch": torch.__version__,
            "python": platform.python_version(), "peak_memory": peak_memory()}


def report(metrics: dict[str, Any], *, notes: dict[str, Any] | None = None) -> None:
    """Show a chapter's headline metrics as a table and attach them, machine-readable, to the output.

    Args:
        metrics: {name: number, FIDResult, or dict with "value" and any of METRIC_FIELDS}.
        notes: {label: text} shown under the table and stored with the metrics (e.g. the data source).
    """
    from IPython.display import display

    record = make_record(metrics, notes)
    display({RESULTS_MIME: record, "text/html": render_html(record), "text/plain": render_text(record)}, raw=True)


def notebook_results(nb) -> dict[str, Any] | None:
    """The records that ``report`` left in an executed notebook, merged in cell order (a later metric
    of the same name wins); None if it reported nothing. Raises if they disagree on the profile."""
    records = [out["data"][RESULTS_MIME] for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []) if RESULTS_MIME in out.get("data", {})]
    if not records:
        return None
    if len({r["profile"] for r in records}) > 1:
        raise ValueError(f"reports from different profiles in one notebook: {sorted({r['profile'] for r in records})}")
    merged = dict(records[-1])
    merged["metrics"] = {k: v for r in records for k, v in r["metrics"].items()}
    merged["notes"] = {k: v for r in records for k, v in r.get("notes", {}).items()}
    return merged
