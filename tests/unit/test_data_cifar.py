"""The CIFAR-10 data layer: image-folder reading, labels, subsets, caching, batches, clear errors."""

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from course_lib.data import CIFAR10_CLASSES, image_batches, load_cifar10, to_float, to_uint8


@pytest.fixture
def tiny_folder(tmp_path, monkeypatch):
    """A CIFAR-10-shaped image folder: 3 train and 2 test images per class, each class a flat colour."""
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "cifar10-jpeg"
    for split, n in (("train", 3), ("test", 2)):
        for label, name in enumerate(CIFAR10_CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (32, 32), (20 * label + i,) * 3).save(root / split / name / f"{i:04d}.jpg", quality=100)
    return root


def test_image_folder_gives_cifar_labels_and_uint8_images(tiny_folder):
    data = load_cifar10("train", root=tiny_folder)
    assert data.images.shape == (30, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.labels.tolist() == [k for k in range(10) for _ in range(3)]
    # each class's flat colour survives JPEG within a grey level or two
    assert (data.images[:, 0, 16, 16].float() - torch.tensor([20.0 * k + i for k in range(10) for i in range(3)])).abs().max() <= 2
    assert data.source_id == "cifar10-jpeg" and "image folder" in str(data)


def test_parent_folder_and_env_var_work_too(tiny_folder, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tiny_folder.parent))  # the folder that holds cifar10-jpeg/
    assert len(load_cifar10("test")) == 20


def test_the_source_is_named_never_a_path_of_the_machine(tiny_folder, monkeypatch):
    """What a page prints about the data (str(data), data.source) names it, never the build machine's path."""
    monkeypatch.setenv("COURSE_DATA", str(tiny_folder))
    data = load_cifar10("test")
    assert str(tiny_folder.parent) not in str(data) and "named by COURSE_DATA" in data.source
    assert "given as the root argument" in load_cifar10("test", root=tiny_folder).source
    assert str(tiny_folder.parent) not in load_cifar10("test", root=tiny_folder).source


def test_subset_is_class_balanced_and_cached(tiny_folder, monkeypatch):
    with pytest.raises(ValueError, match="subset must be between 1 and 30"):
        load_cifar10("train", subset=31, root=tiny_folder)
    data = load_cifar10("train", subset=10, root=tiny_folder)
    assert sorted(data.labels.tolist()) == list(range(10))
    import course_lib.data.cifar as cifar
    monkeypatch.setattr(cifar, "_decode_folder", lambda *a: pytest.fail("decoded again instead of using the cache"))
    again = load_cifar10("train", subset=10, root=tiny_folder)
    assert torch.equal(again.images, data.images) and torch.equal(again.labels, data.labels)


def test_missing_data_names_both_ways_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_DATA", raising=False)
    with pytest.raises(RuntimeError) as info:
        load_cifar10("train", download=False)
    assert "download" in str(info.value) and "COURSE_DATA" in str(info.value)
    with pytest.raises(RuntimeError, match="neither train/<class>/ folders nor cifar-10-batches-py"):
        load_cifar10("train", root=tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        load_cifar10("validation", root=tmp_path)


def test_batches_are_drawn_on_the_data_device_with_flips():
    images = torch.arange(32, dtype=torch.uint8).repeat(4, 3, 32, 1)  # (4, 3, 32, 32), rows 0..31 left to right
    x = next(image_batches(images, 256, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (256, 3, 32, 32) and x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    flipped = (x[:, 0, 0, 0] > x[:, 0, 0, -1]).float().mean()
    assert 0.35 < flipped < 0.65, "about half the batch is mirrored"
    x, y = next(image_batches(images, 8, labels=torch.arange(4), flip=False))
    assert y.shape == (8,) and torch.equal(x[:, 0, 0, 0], torch.full((8,), -1.0))
    with pytest.raises(TypeError, match="uint8"):
        next(image_batches(images.float(), 8))


def test_uint8_round_trip():
    img = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    assert torch.equal(to_uint8(to_float(img)), img)
    with pytest.raises(TypeError):
        to_float(img.float())


SHARED = Path(os.environ.get("COURSE_DATA", Path(__file__).resolve().parents[3] / "shared/data/cifar10-jpeg"))


@pytest.mark.skipif(not (SHARED / "test").is_dir(), reason=f"the offline CIFAR-10 copy is not at {SHARED}")
def test_shared_offline_copy_has_cifar10_test_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    data = load_cifar10("test", subset=500, root=SHARED)
    assert data.labels.bincount().tolist() == [50] * 10


def test_an_image_folders_test_split_has_every_class_in_every_prefix(tiny_folder):
    """The folder is sorted by class; its test split comes interleaved (as CIFAR-10's own test set is not
    sorted), so that the first N test images a chapter takes hold every class. Training keeps the files' order."""
    test = load_cifar10("test", root=tiny_folder)
    assert test.labels.tolist() == list(range(10)) * 2
    assert (test.images[:, 0, 16, 16].float() - torch.tensor([20.0 * k + i for i in range(2) for k in range(10)])).abs().max() <= 2
    assert sorted(load_cifar10("test", subset=10, root=tiny_folder).labels.tolist()) == list(range(10))
    assert load_cifar10("train", root=tiny_folder).labels.tolist() == [k for k in range(10) for _ in range(3)]
    from course_lib.data.cifar import _interleaved
    assert _interleaved([0, 0, 0, 1, 2, 2]) == [0, 3, 4, 1, 5, 2]
