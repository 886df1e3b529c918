"""Lost progress (issue 21): nothing the course computed is deleted or overwritten unasked. An earlier run's
checkpoint or artifact is moved aside under a timestamped name (course_lib.course.paths.set_aside), the page
says so by its name in the cache, and no chapter deletes a file."""

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from course_lib.course.artifacts import load_artifact, save_artifact
from course_lib.course.paths import in_cache, set_aside

ROOT = Path(__file__).resolve().parents[2]
STAMPED = re.compile(r"ch03_ddpm-colab\.\d{8}-\d{6}(-\d+)?\.pt")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


def test_an_earlier_checkpoint_is_kept_under_a_new_name(cache, capsys):
    checkpoint = cache / "ch03_ddpm-colab.pt"
    checkpoint.write_bytes(b"six hours of training")
    (moved,) = set_aside(checkpoint, what="the earlier run's checkpoint")
    assert not checkpoint.exists() and STAMPED.fullmatch(moved.name) and moved.parent == cache
    assert moved.read_bytes() == b"six hours of training"
    out = capsys.readouterr().out
    assert "checkpoints/ch03_ddpm-colab.pt in the course cache" in out and moved.name in out
    assert str(cache) not in out  # named in the cache, never by the machine's absolute path


def test_set_aside_never_overwrites_and_is_quiet_when_there_is_nothing(cache, capsys):
    checkpoint = cache / "ch03_ddpm-colab.pt"
    assert set_aside(checkpoint) == [] and capsys.readouterr().out == ""
    kept = []
    for run in range(3):  # three runs within the same second: three files
        checkpoint.write_bytes(f"run {run}".encode())
        kept += set_aside(checkpoint)
    assert len(set(kept)) == 3 and all(STAMPED.fullmatch(p.name) for p in kept)
    assert sorted(p.read_bytes() for p in kept) == [b"run 0", b"run 1", b"run 2"]


def test_in_cache_names_a_file_outside_the_cache_by_its_name(cache, tmp_path):
    assert in_cache(tmp_path / "elsewhere" / "x.pt") == "x.pt"
    assert in_cache(cache / "x.pt") == "checkpoints/x.pt in the course cache"


def test_saving_over_an_artifact_keeps_the_earlier_one(tmp_path, capsys):
    build = lambda cfg: nn.Linear(3, 2)  # noqa: E731
    first, second = nn.Linear(3, 2), nn.Linear(3, 2)
    save_artifact("lin", first, {}, profile="smoke", produced_by="test", directory=tmp_path)
    save_artifact("lin", first, {}, profile="smoke", produced_by="test", directory=tmp_path)  # same bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lin.json", "lin.pt"]
    save_artifact("lin", second, {}, profile="smoke", produced_by="test", directory=tmp_path)
    kept = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("lin.pt", "lin.json"))
    assert len(kept) == 2 and kept[0].endswith(".json") and kept[1] == kept[0].removesuffix(".json") + ".pt"
    assert "the earlier artifact lin" in capsys.readouterr().out
    old, _ = load_artifact(kept[1].removesuffix(".pt"), build, directory=tmp_path)  # its record still checks
    new, _ = load_artifact("lin", build, directory=tmp_path)
    assert torch.equal(old.weight, first.weight) and torch.equal(new.weight, second.weight)


def test_a_scratch_copy_is_replaced(tmp_path):
    for model in (nn.Linear(3, 2), nn.Linear(3, 2)):
        save_artifact("lin", model, {}, profile="smoke", produced_by="test", directory=tmp_path,
                      keep_previous=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lin.json", "lin.pt"]


DELETES = re.compile(r"\.unlink\(|\brmtree\(|\bos\.remove\(|\bos\.unlink\(")


@pytest.mark.parametrize("py", sorted(ROOT.glob("chapters/[0-9][0-9]_*/[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_no_chapter_deletes_a_file(py):
    found = [f"{py.name}:{n}: {line.strip()}" for n, line in enumerate(py.read_text().splitlines(), 1)
             if DELETES.search(line)]
    assert not found, "a chapter must not delete what a student computed (use set_aside):\n" + "\n".join(found)
