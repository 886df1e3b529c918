"""Every model published in the repository (course_lib/course/registry.json, files in results/models/) is
present, matches its SHA-256 and size, fits the 150 MB budget, and loads into its chapter's recipe model
(same profile, same model config) through the chapter's own train-or-load, without training."""

import json
import importlib.util
from pathlib import Path

import pytest
import torch
from dataclasses import asdict
from torch import nn

from helpers import perturbed

import course_lib.course.registry as registry
from course_lib.course.artifacts import load_artifact, save_artifact, sha256_file
from course_lib.models.unet import UNet
from course_lib.course.profiles import get_profile
from course_lib.recipes import ch02_vae, ch03_ddpm, ch05_cfg, ch06_ldm, ch07_dit, ch08_flow, ch09_lcm, common

MODELS = {name: fn for chapter in (ch02_vae, ch03_ddpm, ch05_cfg, ch06_ldm, ch07_dit, ch08_flow, ch09_lcm)
          for name, fn in chapter.MODELS.items()}
BUDGET_BYTES = 150 * 10**6


def file_problems(entries: dict, folder: Path) -> list[str]:
    """What is wrong with the published files of ``entries`` in ``folder`` (empty when all is well)."""
    problems = []
    for name, entry in entries.items():
        path = folder / f"{name}.pt"
        if not path.exists():
            problems.append(f"{name}: {path} is missing")
        elif path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
            problems.append(f"{name}: {path} does not match its registry entry (size or SHA-256)")
        base, _, profile = name.rpartition("-")
        if base not in MODELS or profile not in ("smoke", "laptop", "colab", "full"):
            problems.append(f"{name}: no chapter recipe trains {base!r} in profile {profile!r}")
    total = sum(p.stat().st_size for p in folder.glob("*.pt")) if folder.exists() else 0
    if total > BUDGET_BYTES:
        problems.append(f"published files take {total / 1e6:.1f} MB, over the 150 MB budget")
    return problems


def test_every_registered_file_is_present_and_matches():
    assert not file_problems(registry.load_registry(), registry.PUBLISHED_DIR)


def test_the_check_catches_a_missing_or_changed_file(tmp_path):
    model = nn.Linear(3, 2)
    save_artifact("ch03_unet-laptop", model, {"n_in": 3}, profile="laptop", produced_by="test", directory=tmp_path)
    entry = registry.registry_entry("ch03_unet-laptop", "https://example.invalid/x.pt", "cmd", directory=tmp_path)
    entries = {"ch03_unet-laptop": entry, "ch99_nothing-laptop": {**entry}}
    problems = file_problems(entries, tmp_path)
    assert problems == ["ch99_nothing-laptop: " + str(tmp_path / "ch99_nothing-laptop.pt") + " is missing",
                        "ch99_nothing-laptop: no chapter recipe trains 'ch99_nothing' in profile 'laptop'"]
    (tmp_path / "ch03_unet-laptop.pt").write_bytes(b"changed")
    assert "does not match its registry entry" in file_problems({"ch03_unet-laptop": entry}, tmp_path)[0]


@pytest.mark.parametrize("name", sorted(registry.load_registry()) or [pytest.param(None, marks=pytest.mark.skip(
    reason="no model is published yet: nothing to load (the file checks above still run)"))])
def test_each_published_model_loads_into_its_recipe_without_training(name, cache, monkeypatch):
    monkeypatch.setattr(common, "load_cifar10", lambda *a, **k: pytest.fail(f"{name}: trained instead of loading"))
    monkeypatch.setattr(registry, "download_file", lambda *a, **k: pytest.fail(f"{name}: downloaded, not the copy"))
    base, _, profile = name.rpartition("-")
    model, meta = MODELS[base](get_profile(profile))  # checks profile and model config against the recipe
    assert meta["sha256"] == registry.load_registry()[name]["sha256"]


def test_the_checkout_copy_is_used_before_a_download(tmp_path, monkeypatch):
    """resolve_artifact: cache empty, registry entry present, file in the published folder: copied, checked."""
    model = nn.Linear(3, 2)
    published = tmp_path / "published"
    save_artifact("lin-laptop", model, {"n_in": 3}, profile="laptop", produced_by="test", directory=published)
    entry = registry.registry_entry("lin-laptop", "https://example.invalid/lin.pt", "cmd", directory=published)
    (published / "lin-laptop.json").unlink()
    monkeypatch.setattr(registry, "PUBLISHED_DIR", published)
    monkeypatch.setattr(registry, "download_file", lambda *a, **k: pytest.fail("downloaded instead of the copy"))
    cache = tmp_path / "cache"
    loaded, meta = registry.resolve_artifact("lin-laptop", lambda c: nn.Linear(c["n_in"], 2), directory=cache,
                                             registry={"lin-laptop": entry}, allow_download=False)
    assert (loaded.weight == model.weight).all() and meta["source"] == entry["url"]
    (cache / "lin-laptop.pt").unlink()
    (cache / "lin-laptop.json").unlink()
    (published / "lin-laptop.pt").write_bytes(b"not the registered file")
    with pytest.raises(registry.ArtifactError, match="published copy and course_lib/course/registry.json disagree"):
        registry.resolve_artifact("lin-laptop", lambda c: nn.Linear(c["n_in"], 2), directory=cache,
                                  registry={"lin-laptop": entry})
    assert json.loads(json.dumps(entry))["storage"] == "as trained"


def _publish_script():
    spec = importlib.util.spec_from_file_location("publish_model", Path(__file__).parents[2] / "scripts/publish_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_float16_storage_halves_the_file_and_rounds_only(tmp_path):
    """What publish_model.py --half stores: float16 weights (half the bytes) that load back into the float32
    model rounded to float16 and nothing else; its sampling check compares the two models' DDIM samples."""
    script = _publish_script()
    recipe = {"unet": "tiny", "schedule": "linear", "num_steps": 1000}
    torch.manual_seed(0)
    model = perturbed(UNet(ch03_ddpm.unet_config(recipe)), scale=0.01).eval()
    config = {"model": asdict(model.config), "recipe": recipe}
    full = save_artifact("u", model, config, profile="smoke", produced_by="test", directory=tmp_path / "a")
    half = save_artifact("u", model, config, profile="smoke", produced_by="test", directory=tmp_path / "b", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, meta = load_artifact("u", ch03_ddpm._build_unet, directory=tmp_path / "b")
    assert meta["storage"] == "float16" and next(loaded.parameters()).dtype == torch.float32
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(b, a.half().float() if a.is_floating_point() else a, rtol=0, atol=0, msg=k)
    assert script.sampling_difference(model, model, recipe) == 0
    assert script.sampling_difference(model, loaded, recipe) > 0  # measured and printed by the script


def test_fid_over_training_scores_each_snapshot(tmp_path, monkeypatch):
    """publish_model.py --fid-over-training: every EMA snapshot of the checkpoint scored with the same noise
    and sampler, in step order, with the training hours up to it; a snapshot's FID is the FID of its
    own samples (checked with a cheap stand-in feature network)."""
    from course_lib.evaluation.fid import FIDReference

    recipe = {"unet": "tiny", "schedule": "linear", "num_steps": 1000}
    config = ch03_ddpm.unet_config(recipe)
    torch.manual_seed(0)
    weights = {step: {k: v.half() for k, v in perturbed(UNet(config), scale=0.05).state_dict().items()}
               for step in (20, 10)}
    features = lambda x, batch_size=250: x.float().mean(dim=(2, 3))  # (N, 3) colour means
    ref = FIDReference("toy", torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64) * 100, 50)
    fids = ch03_ddpm.snapshot_fids(weights, config, recipe, ref, num_samples=6, num_steps=2, batch=4,
                                   bootstrap=3, features=features)
    assert list(fids) == [10, 20] and all(r.num_samples == 6 and r.std is not None for r in fids.values())
    samples = torch.cat([ch03_ddpm.sample_snapshots({10: weights[10]}, config, recipe, n, 2, seed=s)[10]
                         for n, s in ((4, 1000), (2, 1004))])
    from course_lib.evaluation.fid import fid
    assert fids[10].value == fid(samples, ref.mu, ref.sigma, "toy", features=features).value
    assert fids[10].value != fids[20].value

    script = _publish_script()
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"snapshots": weights, "marks": {10: 360.0, 20: 720.0}}, ckpt)
    monkeypatch.setattr(script, "load_cifar10", lambda split: type("D", (), {
        "images": torch.zeros(5, 3, 32, 32, dtype=torch.uint8), "source_id": "toy"})())
    monkeypatch.setattr(script, "reference_stats", lambda images, name, folder: ref)
    monkeypatch.setattr(script, "snapshot_fids", lambda snaps, *a, **k: {
        s: fids[s] for s in snaps})
    curve = script.fid_over_training(ckpt, recipe, num_samples=6)
    assert curve["steps"] == [10, 20] and curve["hours"] == [0.1, 0.2]
    assert curve["fid"] == [fids[10].value, fids[20].value] and curve["samples"] == 6
    torch.save({"snapshots": {}}, ckpt)
    with pytest.raises(SystemExit, match="keeps no EMA snapshots"):
        script.fid_over_training(ckpt, recipe, num_samples=6)


def test_the_half_precision_check_samples_with_the_models_own_target():
    """A v-prediction comparison model is checked by sampling it as a v-model (an epsilon reading of its
    output would compare two wrong samplers)."""
    script = _publish_script()
    assert set(ch03_ddpm.VARIANTS) <= set(script.HALF_CHECKS)
    recipe = {"unet": "tiny", "schedule": "cosine", "num_steps": 1000, "target": "v"}
    torch.manual_seed(0)
    model = perturbed(UNet(ch03_ddpm.unet_config(recipe)), scale=0.01).eval()
    seen = []
    real = script.ddim_sample
    script.ddim_sample = lambda *a, **k: seen.append(k.get("prediction_type")) or real(*a, **k)
    try:
        assert script.sampling_difference(model, model, recipe) == 0
    finally:
        script.ddim_sample = real
    assert seen == ["v", "v"]


def test_the_half_precision_check_samples_a_class_conditional_unet_with_labels():
    """Chapter 5's U-Net takes labels: the check samples it conditionally (a label-free call would fail)."""
    script = _publish_script()
    assert script.HALF_CHECKS["ch05_unet"] is ch03_ddpm._build_unet
    recipe = {"unet": "tiny", "schedule": "linear", "num_steps": 1000, "num_classes": 10}
    torch.manual_seed(0)
    model = perturbed(UNet(ch03_ddpm.unet_config(recipe, num_classes=10)), scale=0.01).eval()
    half = perturbed(UNet(ch03_ddpm.unet_config(recipe, num_classes=10)), scale=0.01).eval()
    half.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    assert script.sampling_difference(model, model, recipe) == 0
    assert 0 < script.sampling_difference(model, half, recipe) < 0.1  # rounding, measured
