"""The artifact registry: cache first, then a checked download, then (for recipes) training.
Downloads use file:// URLs or a monkeypatched urlopen; nothing touches the network."""

import json
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from course_lib.recipes import ch02_vae, common
import course_lib.course.registry as registry
from course_lib.course.artifacts import ArtifactError, ArtifactMissingError, save_artifact
from course_lib.course.profiles import get_profile
from course_lib.course.registry import ArtifactDownloadError, load_registry, registry_entry, resolve_artifact

ROOT = Path(__file__).resolve().parents[2]


def build(config):
    return nn.Linear(config["n_in"], 2)


@pytest.fixture
def published(tmp_path):
    """A model saved on a "server" folder, its registry entry (file:// URL), and an empty cache."""
    model = nn.Linear(3, 2)
    server = tmp_path / "server"
    save_artifact("lin-colab", model, {"n_in": 3}, profile="colab", produced_by="test", directory=server)
    entry = registry_entry("lin-colab", (server / "lin-colab.pt").as_uri(), "python train.py", directory=server)
    return SimpleNamespace(model=model, server=server, entry=entry, cache=tmp_path / "cache",
                           registry={"lin-colab": entry})


def test_the_shipped_registry_is_valid_and_packaged():
    entries = load_registry()
    assert isinstance(entries, dict)  # may be empty until weights are published
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "course/registry.json" in package_data["course_lib"], "registry.json must ship with the package"


def test_registry_schema_errors_are_named(tmp_path):
    bad = {"schema_version": 1, "artifacts": {"x": {"url": "file:///x.pt", "sha256": "abc", "size": 0}}}
    (tmp_path / "r.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="entry 'x'.*missing 'profile'.*sha256 must be 64.*size must be"):
        load_registry(tmp_path / "r.json")


def test_good_file_is_downloaded_checked_and_then_cached(published, monkeypatch):
    model, meta = resolve_artifact("lin-colab", build, directory=published.cache, registry=published.registry,
                                   progress=False)
    assert torch.equal(model.weight, published.model.weight)
    assert meta["source"] == published.entry["url"] and meta["produced_by"] == "python train.py"
    assert meta["profile"] == "colab" and meta["hardware"] == published.entry["hardware"]
    assert sorted(p.name for p in published.cache.iterdir()) == ["lin-colab.json", "lin-colab.pt"]
    monkeypatch.setattr(registry, "download_file", lambda *a, **k: pytest.fail("downloaded again"))
    again, _ = resolve_artifact("lin-colab", build, directory=published.cache, registry=published.registry)
    assert torch.equal(again.weight, published.model.weight)


def test_corrupted_download_is_an_error_and_is_not_kept(published):
    served = published.server / "lin-colab.pt"
    raw = bytearray(served.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, different bytes
    served.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="failed its checksum") as info:
        resolve_artifact("lin-colab", build, directory=published.cache, registry=published.registry, progress=False)
    assert not isinstance(info.value, ArtifactMissingError)  # never a reason to train over it
    assert not published.cache.exists() or not any(published.cache.iterdir()), "the bad file was kept"


def test_wrong_size_is_an_error(published):
    (published.server / "lin-colab.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ArtifactError, match=r"expected [\d,]+ bytes, got 16"):
        resolve_artifact("lin-colab", build, directory=published.cache, registry=published.registry, progress=False)
    assert not any(published.cache.iterdir())


def test_missing_file_on_the_server(published):
    (published.server / "lin-colab.pt").unlink()
    with pytest.raises(ArtifactDownloadError) as info:
        resolve_artifact("lin-colab", build, directory=published.cache, registry=published.registry, progress=False)
    message = str(info.value)
    assert published.entry["url"] in message and str(published.cache / "lin-colab.pt") in message
    assert isinstance(info.value, ArtifactMissingError)  # train-or-load callers may train instead


def test_offline_machine_says_how_to_provide_the_file(published, monkeypatch):
    entry = {**published.entry, "url": "https://weights.example.org/lin-colab.pt"}

    def offline(*args, **kwargs):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ArtifactDownloadError) as info:
        resolve_artifact("lin-colab", build, directory=published.cache, registry={"lin-colab": entry}, progress=False)
    message = str(info.value)
    assert "https://weights.example.org/lin-colab.pt" in message and "name resolution" in message
    assert f"copy it to {published.cache / 'lin-colab.pt'}" in message and "COURSE_CACHE" in message

    # Following the advice: the file copied in by hand is checked and used, without a download.
    published.cache.mkdir(exist_ok=True)
    (published.cache / "lin-colab.pt").write_bytes((published.server / "lin-colab.pt").read_bytes())
    model, meta = resolve_artifact("lin-colab", build, directory=published.cache, registry={"lin-colab": entry})
    assert torch.equal(model.weight, published.model.weight) and meta["sha256"] == entry["sha256"]


def test_a_wrong_file_copied_in_by_hand_is_refused(published):
    published.cache.mkdir()
    (published.cache / "lin-colab.pt").write_bytes(b"something else")
    with pytest.raises(ArtifactError, match="is not the registered 'lin-colab'"):
        resolve_artifact("lin-colab", build, directory=published.cache, registry=published.registry)


def test_unpublished_or_download_not_allowed(published):
    with pytest.raises(ArtifactMissingError, match="no entry 'other'"):
        resolve_artifact("other", build, directory=published.cache, registry=published.registry)
    with pytest.raises(ArtifactMissingError, match="downloads were not allowed") as info:
        resolve_artifact("lin-colab", build, directory=published.cache, registry=published.registry,
                         allow_download=False)
    assert not isinstance(info.value, ArtifactDownloadError)


# ---- through course_lib.recipes.common: download instead of training, or train when the download fails ----

TINY_VAE = dict(model=dict(base_channels=8, channel_mult=(1, 2), blocks_per_level=1, latent_channels=4),
                steps=1, batch=4, lr=1e-3, beta=1.0, ema_decay=0.9, train_images=None)


@pytest.fixture
def tiny_vae_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ch02_vae, "vae_recipe", lambda profile: TINY_VAE)
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    monkeypatch.setattr(common, "load_cifar10", lambda split, subset=None: SimpleNamespace(images=images,
                                                                                           source_id="fake"))
    return tmp_path


def _publish(tmp_path, monkeypatch, url=None):
    """Trains a tiny VAE into a server folder and points the registry at it."""
    model = ch02_vae.train_vae(TINY_VAE, torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), progress=False).ema
    config = {"model": {**TINY_VAE["model"], "channel_mult": [1, 2]}, "recipe": TINY_VAE, "data": "fake"}
    save_artifact("ch02_vae-smoke", model, config, profile="smoke", produced_by="test", directory=tmp_path / "server")
    entry = registry_entry("ch02_vae-smoke", url or (tmp_path / "server/ch02_vae-smoke.pt").as_uri(),
                           "python book/execute_chapters.py --profile smoke chapters/02_vae/02_vae.py",
                           directory=tmp_path / "server")
    (tmp_path / "registry.json").write_text(json.dumps({"schema_version": 1, "artifacts": {"ch02_vae-smoke": entry}}))
    monkeypatch.setattr(registry, "REGISTRY_PATH", tmp_path / "registry.json")
    return model


def test_recipe_downloads_instead_of_training(tiny_vae_setup, monkeypatch):
    model = _publish(tiny_vae_setup, monkeypatch)
    monkeypatch.setattr(ch02_vae, "train_vae", lambda *a, **k: pytest.fail("trained instead of downloading"))
    vae, meta = ch02_vae.chapter2_vae(get_profile("smoke"))
    assert meta["source"].startswith("file://")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), vae.state_dict().values()))


def test_recipe_trains_when_offline(tiny_vae_setup, monkeypatch, capsys):
    _publish(tiny_vae_setup, monkeypatch, url="https://weights.example.org/ch02_vae-smoke.pt")

    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    vae, meta = ch02_vae.chapter2_vae(get_profile("smoke"))
    out = capsys.readouterr().out
    assert "https://weights.example.org/ch02_vae-smoke.pt" in out and "Training it now with train_vae" in out
    assert meta["produced_by"] == "course_lib.recipes.ch02_vae.train_vae"
