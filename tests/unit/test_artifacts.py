"""Artifacts: saved with a checksum; a corrupted or missing file is a clear error."""

import pytest
import torch
from torch import nn

from course_lib.artifacts import ArtifactError, load_artifact, save_artifact


def test_round_trip_and_checksum(tmp_path):
    model = nn.Linear(3, 2)
    save_artifact("lin", model, {"n_in": 3}, profile="smoke", produced_by="test", directory=tmp_path, metrics={"x": 1.0})
    loaded, meta = load_artifact("lin", lambda cfg: nn.Linear(cfg["n_in"], 2), directory=tmp_path)
    assert torch.equal(loaded.weight, model.weight) and meta["profile"] == "smoke" and len(meta["sha256"]) == 64
    raw = bytearray((tmp_path / "lin.pt").read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip one byte
    (tmp_path / "lin.pt").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="corrupted"):
        load_artifact("lin", lambda cfg: nn.Linear(3, 2), directory=tmp_path)


def test_missing_artifact_says_what_to_do(tmp_path):
    with pytest.raises(ArtifactError, match="not found.*Run the chapter"):
        load_artifact("nothing", lambda cfg: nn.Linear(1, 1), directory=tmp_path)
