import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SHARED_CIFAR = ROOT.parent / "shared/data/cifar10-jpeg"  # the JPEG copy next to the repository (CI)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """An empty course cache ($COURSE_CACHE) shared by one module's train-or-load tests, which read a few
    real CIFAR-10 images: from $COURSE_DATA if set, else the shared JPEG copy if present, else wherever
    course_lib.data.load_cifar10 finds them (it fails with a message saying how to provide them)."""
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("COURSE_DATA") and (SHARED_CIFAR / "train").is_dir():
            mp.setenv("COURSE_DATA", str(SHARED_CIFAR))
        mp.setenv("COURSE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield Path(os.environ["COURSE_CACHE"])
