"""Headline results (course_lib.book.results, scripts/run_chapters.py, scripts/make_results_page.py).

  (a) the committed results/results.json holds what the stored chapter notebooks hold, and the
      committed book/results.md is what the script makes of it;
  (b) report() shows a table and attaches a record with the metrics and the run's provenance,
      and rejects metrics that would mislead (no value, NaN, unknown fields or papers);
  (c) a synthetic executed notebook is collected into a results.json entry, with or without reports;
  (d) the page labels smoke results, puts papers' numbers beside ours with citations, and lists
      papers' numbers that nothing measures yet;
  (e) the book's build extension skips exactly the record's MIME type; no report cell is compared by nbval;
  (f) execute() runs a chapter in a kernel and stores wall time and peak memory (a few seconds).
"""

import importlib.util
import json
import math
import re
from pathlib import Path

import nbformat
import pytest

from course_lib.book import results
from course_lib.evaluation.fid import FIDResult
from course_lib.book.notebooks import chapter_results, execute, read_py, toc_chapters
from course_lib.book.results import PAPERS, RESULTS_MIME, make_record, notebook_results, render_html, render_text

ROOT = Path(__file__).resolve().parents[2]
COLLECT = "python scripts/run_chapters.py --collect-only"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_chapters = _load(ROOT / "scripts/run_chapters.py")
make_page = _load(ROOT / "scripts/make_results_page.py")


@pytest.fixture(autouse=True)
def _smoke(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")  # records say which profile made them; execute() sets it too


# (a) committed files -----------------------------------------------------------------------
def test_results_json_matches_the_stored_notebooks():
    stored = json.loads((ROOT / "results/results.json").read_text())
    by_key = {(e["chapter"], e["profile"]): e for e in stored["entries"]}
    for py in toc_chapters(ROOT):
        if not (ROOT / py).with_suffix(".ipynb").exists():
            continue
        entry = run_chapters.collect(py)
        assert by_key.get((entry["chapter"], entry["profile"])) == entry, (
            f"results/results.json is stale for {py} ({entry['profile']}): run {COLLECT}")


def test_results_page_is_up_to_date():
    stored = json.loads((ROOT / "results/results.json").read_text())
    assert (ROOT / "book/results.md").read_text() == make_page.render(stored), (
        f"book/results.md is stale: run {make_page.REGENERATE} (or {COLLECT})")


# (b) report() ------------------------------------------------------------------------------
def _fid(value=123.45):
    return FIDResult(value, 50, "cifar10 test", 100)


def test_report_displays_a_table_and_attaches_the_record(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append((obj, raw)))
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    results.report({"psnr": {"value": 18.234, "unit": "dB", "samples": 500},
                    "fid": {"value": _fid(), "sampling_steps": 1000, "paper": "ddpm_cifar10_fid"}},
                   notes={"data": "CIFAR-10 <jpeg>"})
    [(bundle, raw)] = shown
    assert raw and set(bundle) == {RESULTS_MIME, "text/html", "text/plain"}
    record = json.loads(json.dumps(bundle[RESULTS_MIME]))  # plain JSON, as the notebook stores it
    assert record["metrics"]["psnr"] == {"value": 18.234, "unit": "dB", "samples": 500}
    assert record["metrics"]["fid"] == {"value": 123.45, "samples": 50, "reference": "cifar10 test, 100 images",
                                        "sampling_steps": 1000, "protocol": "pytorch-fid resize",
                                        "paper": "ddpm_cifar10_fid"}
    assert record["profile"] == "smoke" and record["notes"] == {"data": "CIFAR-10 <jpeg>"}
    assert {"device", "hardware", "torch", "python"} <= set(record)
    assert record["peak_memory"]["host_rss_gib"] > 0
    text = bundle["text/plain"]
    assert "18.23 dB" in text and "123.5" in text and "1,000" in text and "not comparable to the papers" in text
    assert "DDPM: FID 3.17" in text  # the paper's number, labelled as such
    assert "&lt;jpeg&gt;" in bundle["text/html"] and "<jpeg>" not in bundle["text/html"]


@pytest.mark.parametrize("metrics, error", [
    ({}, "non-empty"),
    ({"fid": {"samples": 50}}, "no 'value'"),
    ({"fid": float("nan")}, "finite"),
    ({"fid": {"value": 1.0, "sample": 50}}, "unknown fields"),
    ({"fid": {"value": 1.0, "paper": "ddpm_imagenet"}}, "unknown paper"),
    ({"fid": "12"}, "must be a number"),
    ({"fid": {"value": 1.0, "samples": 50.0}}, "must be an int"),
])
def test_report_rejects_misleading_metrics(metrics, error):
    with pytest.raises((ValueError, TypeError), match=error):
        make_record(metrics)


def test_numbers_from_numpy_and_torch_become_plain_json():
    import numpy as np
    import torch

    record = make_record({"a": np.float32(0.5), "b": torch.tensor(2.0), "c": np.int64(3)})
    assert record["metrics"] == {"a": {"value": 0.5}, "b": {"value": 2.0}, "c": {"value": 3}}
    assert type(record["metrics"]["c"]["value"]) is int


# (c) collection from a synthetic executed notebook ------------------------------------------
def _output(record: dict):
    return nbformat.v4.new_output("display_data", data={
        RESULTS_MIME: record, "text/html": render_html(record), "text/plain": render_text(record)})


def _chapter(root: Path, reports: list[dict], profile="smoke", name="07_demo") -> Path:
    (root / "book").mkdir(parents=True, exist_ok=True)
    (root / "book/_toc.yml").write_text(f"format: jb-book\nroot: book/intro\nparts:\n  - caption: C\n"
                                        f"    chapters:\n      - file: chapters/{name}/{name}\n")
    cells = [nbformat.v4.new_markdown_cell("# 7. A demo\n\ntext"), nbformat.v4.new_code_cell("x = 1", execution_count=1)]
    for i, record in enumerate(reports):
        cells.append(nbformat.v4.new_code_cell("report(...)", execution_count=2 + i, outputs=[_output(record)]))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["course"] = {"profile": profile, "device": "cpu", "hardware": "a test CPU", "torch": "2.x",
                             "seconds": 12.3, "peak_memory": {"host_rss_gib": 1.5, "cuda_allocated_gib": None},
                             "executed": "2026-01-02"}
    path = root / "chapters" / name / f"{name}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def test_collect_merges_the_reports_of_a_notebook(tmp_path):
    first = make_record({"fid": _fid(200.0), "psnr": {"value": 20.0, "unit": "dB"}}, notes={"a": "1"})
    second = make_record({"fid": {"value": _fid(150.0), "sampling_steps": 10, "paper": "ddim_cifar10_fid_10"}})
    path = _chapter(tmp_path, [first, second])
    entry = chapter_results(path, tmp_path)
    assert entry["chapter"] == "07_demo" and entry["title"] == "7. A demo"
    assert entry["notebook"] == "chapters/07_demo/07_demo.ipynb"
    assert (entry["profile"], entry["wall_seconds"], entry["peak_memory"]["host_rss_gib"]) == ("smoke", 12.3, 1.5)
    assert list(entry["metrics"]) == ["fid", "psnr"]
    assert entry["metrics"]["fid"]["value"] == 150.0 and entry["metrics"]["fid"]["sampling_steps"] == 10
    assert entry["notes"] == {"a": "1"}


def test_a_chapter_without_reports_is_listed_with_no_metrics(tmp_path):
    entry = chapter_results(_chapter(tmp_path, []), tmp_path)
    assert entry["metrics"] == {} and entry["wall_seconds"] == 12.3
    page = make_page.render({"entries": [entry | {"command": "python x"}]}, tmp_path)
    assert "no metrics reported yet" in page


def test_collect_refuses_notebooks_without_provenance_or_with_mixed_profiles(tmp_path):
    path = _chapter(tmp_path, [make_record({"fid": 1.0})], profile="full")
    with pytest.raises(ValueError, match="profile 'full'.*'smoke'"):
        chapter_results(path, tmp_path)
    nb = nbformat.read(path, as_version=4)
    del nb.metadata["course"]
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="no provenance"):
        chapter_results(path, tmp_path)
    other = make_record({"fid": 2.0}) | {"profile": "colab"}
    nb.cells.append(nbformat.v4.new_code_cell("report(...)", outputs=[_output(other)]))
    with pytest.raises(ValueError, match="different profiles"):
        notebook_results(nb)


def test_merge_replaces_one_chapter_and_profile_and_keeps_the_rest():
    def entry(chapter, profile, value):
        return {"chapter": chapter, "profile": profile, "metrics": {"m": {"value": value}}}
    stored = {"entries": [entry("02_vae", "smoke", 1), entry("01_swiss_roll", "full", 2),
                          entry("01_swiss_roll", "smoke", 3)]}
    merged = run_chapters.merge(stored, entry("01_swiss_roll", "smoke", 4))
    assert [(e["chapter"], e["profile"], e["metrics"]["m"]["value"]) for e in merged["entries"]] == [
        ("01_swiss_roll", "smoke", 4), ("01_swiss_roll", "full", 2), ("02_vae", "smoke", 1)]  # toc, then profile order


def test_collect_only_command_keeps_the_entries_of_other_chapters(tmp_path, capsys):
    path = tmp_path / "results.json"
    other = {"chapter": "09_lcm", "profile": "full", "metrics": {}}
    path.write_text(json.dumps({"entries": [other]}))
    py = toc_chapters(ROOT)[0]
    assert run_chapters.main(["--collect-only", "--no-page", "--results", str(path), str(ROOT / py)]) == 0
    entries = json.loads(path.read_text())["entries"]
    assert [e["chapter"] for e in entries] == [py.parent.name, "09_lcm"]
    assert entries[0]["command"] == f"python scripts/run_chapters.py --profile {entries[0]['profile']} {py.as_posix()}"


# (d) the page ------------------------------------------------------------------------------
def test_page_labels_profiles_and_puts_papers_beside_ours(tmp_path):
    record = make_record({"fid_10": {"value": _fid(40.0), "sampling_steps": 10, "paper": "ddim_cifar10_fid_10"}})
    entry = chapter_results(_chapter(tmp_path, [record], name="04_ddim"), tmp_path) | {"command": "python run 04"}
    page = make_page.render({"entries": [entry]}, tmp_path)
    row = next(line for line in page.splitlines() if "`fid_10`" in line)
    assert "**40** (50 samples vs cifar10 test, 100 images; 10 steps) · *smoke*" in row
    assert "FID **13.36**" in row and "{cite:p}`song2021ddim`" in row  # the paper's number, in the same row
    assert "**smoke**: CPU, tiny model — not comparable to the papers" in row and "`python run 04`" in row
    assert "{doc}`7. A demo </chapters/04_ddim/04_ddim>`" in row
    # every other paper number has a row of its own, "not measured yet"
    unmeasured = [line for line in page.splitlines() if "*not measured yet*" in line]
    assert len(unmeasured) == len(PAPERS) - 1
    assert "Chapter 3 (in preparation)" in page


def test_every_paper_is_cited_from_the_bibliography():
    keys = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "book/references.bib").read_text(), re.M))
    assert {p.cite for p in PAPERS.values()} <= keys
    assert all(math.isfinite(p.value) and p.value > 0 for p in PAPERS.values())


def test_results_page_is_in_the_toc_before_the_bibliography():
    toc = (ROOT / "book/_toc.yml").read_text()
    assert toc.index("file: book/results") < toc.index("file: book/bibliography")


# (e) the book build and nbval -----------------------------------------------------------------
def test_book_extension_skips_only_the_record():
    ext = _load(ROOT / "book/_ext/course_results.py")
    assert ext.RESULTS_MIME == RESULTS_MIME

    class Data:
        def __init__(self, mime_type):
            self.mime_type = mime_type
    assert ext.CourseResultsRecord.handle_mime(None, Data(RESULTS_MIME), False) == []
    assert ext.CourseResultsRecord.handle_mime(None, Data("application/x-other"), False) is None
    assert "course_results: _ext" in (ROOT / "book/_config.yml").read_text()


@pytest.mark.parametrize("py", sorted(ROOT.glob("chapters/[0-9][0-9]_*/[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_report_cells_are_not_compared_by_nbval(py):
    for cell in read_py(py).cells:
        if cell.cell_type == "code" and "report(" in cell.source:
            assert "nbval-check-output" not in cell.metadata.get("tags", ()), (
                f"{py.name}: a cell calling report() shows timings and hardware; do not tag it nbval-check-output")


# (f) execute() in a kernel ---------------------------------------------------------------------
def test_execute_stores_wall_time_peak_memory_and_the_report(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    folder = tmp_path / "chapters/05_demo"
    folder.mkdir(parents=True)
    (folder / "05_demo.py").write_text(
        "# %% [markdown]\n# # 5. Demo\n\n# %%\nfrom course_lib.book.results import report\n\n"
        "report({'score': {'value': 0.25, 'samples': 10, 'sampling_steps': 3}})\n")
    out = execute(folder / "05_demo.py", "smoke", timeout=120)
    nb = nbformat.read(out, as_version=4)
    assert len(nb.cells) == 2 and "COURSE_PEAK_MEMORY" not in json.dumps(nb)  # the probe cell is gone
    meta = nb.metadata["course"]
    assert meta["profile"] == "smoke" and meta["seconds"] > 0 and meta["peak_memory"]["host_rss_gib"] > 0.05
    assert all("execution" not in c.metadata for c in nb.cells)  # no timing metadata in cells
    entry = chapter_results(out, tmp_path)
    assert entry["metrics"] == {"score": {"value": 0.25, "samples": 10, "sampling_steps": 3}}
    assert entry["peak_memory"] == meta["peak_memory"]


def test_a_bootstrap_std_is_kept_and_shown_beside_the_value():
    from course_lib.evaluation.fid import FIDResult
    record = make_record({"sweep": FIDResult(41.234, 500, "cifar10 test", 10_000, std=1.25),
                          "given": {"value": 3.0, "std": 0.5}, "plain": _fid()})
    assert record["metrics"]["sweep"]["std"] == 1.25 and record["metrics"]["given"]["std"] == 0.5
    assert "std" not in record["metrics"]["plain"]  # no bootstrap, no std
    text = results.render_text(record)
    assert "41.23 ± 1.25" in text and "3 ± 0.5" in text
    with pytest.raises(ValueError, match="finite"):
        make_record({"fid": {"value": 1.0, "std": float("inf")}})


def test_every_profile_has_a_caveat_for_the_results_page():
    from course_lib.course.profiles import PROFILES
    assert set(results.PROFILE_CAVEATS) == set(PROFILES)


def test_an_aim_says_whether_a_laptop_run_meets_it_and_whose_it_is_in_smoke(tmp_path, monkeypatch):
    metrics = {"bpd": {"value": 5.7, "unit": "bits/dim", "aim": "<=5.5"},
               "psnr": {"value": 26.0, "unit": "dB", "aim": ">= 25"}, "plain": 1.0}
    monkeypatch.setenv("COURSE_PROFILE", "laptop")
    record = make_record(metrics)
    assert record["metrics"]["bpd"]["aim"] == "<= 5.5" and "aim" not in record["metrics"]["plain"]
    text = render_text(record)
    assert "≤ 5.5: missed" in text and "≥ 25: met" in text
    entry = chapter_results(_chapter(tmp_path, [record], profile="laptop", name="02_vae"), tmp_path) | {"command": "02"}
    assert "· aim ≤ 5.5: missed" in make_page.render({"entries": [entry]}, tmp_path)
    monkeypatch.setenv("COURSE_PROFILE", "smoke")  # not meant to meet it: the aim is shown as another profile's
    text = render_text(make_record(metrics))
    assert "≤ 5.5 (the aim of laptop, colab, full runs)" in text and "missed" not in text
    for bad in ("< 5.5", "5.5", "<= five", 5.5):
        with pytest.raises(ValueError, match="aim must be"):
            make_record({"bpd": {"value": 5.7, "aim": bad}})
