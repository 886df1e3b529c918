"""Chapter 8's recipes: sizes per profile, flow matching and reflow on the swiss roll in the shared loop, and
train-or-load of the CIFAR-10 flow and its reflow (a few steps on a few real images, in an isolated cache)."""


import pytest
import torch

import course_lib.recipes.ch08_flow as fr
from course_lib.recipes import ch03_ddpm
from course_lib.data import swiss_roll
from course_lib.process.flow_matching import ExactOptimalTransportConditionalFlowMatcher
from course_lib.samplers.flow import flow_euler_sample
from course_lib.models import MLPDenoiser, UNet
from course_lib.course.profiles import PROFILES, get_profile

from helpers import assert_loads_without_training


@pytest.mark.parametrize("name", list(PROFILES))
@pytest.mark.parametrize("dataset", fr.DATASETS)
def test_recipes_build_for_every_profile(name, dataset):
    recipe = fr.fm_recipe(get_profile(name), dataset)
    model = fr.build_fm_model(recipe) if name == "smoke" or dataset == "swiss_roll" else None
    if dataset == "swiss_roll":
        assert isinstance(model, MLPDenoiser)
    elif name == "smoke":
        assert isinstance(model, UNet) and recipe["steps"] <= 300
    if name == "full" and dataset == "cifar10":  # torchcfm's CIFAR-10 settings (Tong et al. 2024)
        assert (recipe["lr"], recipe["batch"], recipe["ema_decay"], recipe["warmup"]) == (2e-4, 128, 0.9999, 5_000)
    reflow = fr.reflow_recipe(get_profile(name), dataset)
    assert {"pairs", "sample_steps", "steps", "lr"} <= set(reflow)
    with pytest.raises(ValueError, match="dataset must be one of"):
        fr.fm_recipe(get_profile(name), "mnist")


def test_flow_then_reflow_on_the_swiss_roll_trains_and_samples():
    recipe = {**fr.fm_recipe(get_profile("smoke"), "swiss_roll"), "mlp": dict(hidden=32, num_blocks=2), "steps": 60}
    data = swiss_roll(2_000, generator=torch.Generator().manual_seed(0))
    result = fr.train_fm(recipe, data, ExactOptimalTransportConditionalFlowMatcher(), progress=False)
    assert result.steps_run == 60 and result.history[-1][1] < result.history[0][1]
    reflow = {**fr.reflow_recipe(get_profile("smoke"), "swiss_roll"), "mlp": recipe["mlp"], "pairs": 256,
              "sample_steps": 5, "steps": 20}
    x0, eps = fr.make_reflow_pairs(result.ema, reflow, (2,), "cpu")
    assert x0.shape == eps.shape == (256, 2) and torch.isfinite(x0).all()
    before = {k: v.clone() for k, v in result.ema.state_dict().items()}
    second = fr.train_reflow(reflow, x0, eps, model=result.ema, progress=False)
    assert all(torch.equal(before[k], v) for k, v in result.ema.state_dict().items())  # the 1-flow is untouched
    x = flow_euler_sample(second.ema, torch.randn(8, 2), torch.linspace(1, 0, 3))
    assert x.shape == (8, 2) and torch.isfinite(x).all()


def test_the_reusable_models():
    assert sorted(fr.MODELS) == ["ch08_fm", "ch08_reflow"]


TINY = dict(unet="tiny", steps=2, batch=4, lr=1e-3, warmup=1, ema_decay=0.9, train_images=40)


def test_chapter8_fm_and_reflow_train_then_load(cache, monkeypatch):
    monkeypatch.setattr(fr, "fm_recipe", lambda profile, dataset="cifar10": dict(TINY))
    model, meta = fr.chapter8_fm(get_profile("smoke"))
    assert isinstance(model, UNet) and meta["produced_by"].endswith("train_fm")
    assert (cache / "artifacts/ch08_fm-smoke.pt").exists()
    assert_loads_without_training(monkeypatch, fr, "train_fm",
                                  lambda: fr.MODELS["ch08_fm"](get_profile("smoke")), model)
    monkeypatch.setattr(fr, "reflow_recipe", lambda profile, dataset="cifar10": {**TINY, "pairs": 8, "sample_steps": 2})
    second, meta2 = fr.chapter8_reflow(get_profile("smoke"))
    assert isinstance(second, UNet) and meta2["config"]["from"] == "ch08_fm-smoke"
    x = flow_euler_sample(second, torch.randn(2, 3, 32, 32), torch.linspace(1, 0, 3))
    assert x.shape == (2, 3, 32, 32) and torch.isfinite(x).all()


@pytest.mark.parametrize("name", ["smoke", "laptop"])
def test_the_cifar_flow_fine_tunes_chapter_3s_unet_of_its_profile(name):
    recipe = fr.fm_recipe(get_profile(name))
    assert recipe["init"] == f"ch03_unet-{name}" and fr.reflow_recipe(get_profile(name))["init"] == recipe["init"]
    with torch.device("meta"):
        assert fr.build_fm_model(recipe).config == UNet(ch03_ddpm.unet_config(ch03_ddpm.ddpm_recipe(get_profile(name)))).config
    assert fr.fm_recipe(get_profile("full"))["init"] is None  # torchcfm's recipe: from scratch


def test_train_fm_starts_from_chapter_3s_weights(cache, monkeypatch):
    monkeypatch.setattr(ch03_ddpm, "ddpm_recipe", lambda profile: dict(TINY, schedule="linear", num_steps=1000))
    ch3, _ = ch03_ddpm.chapter3_unet(get_profile("smoke"))
    seen = {}
    monkeypatch.setattr(fr, "train", lambda model, loss, batches, config: seen.setdefault("model", model))
    fr.train_fm({**TINY, "init": "ch03_unet-smoke"}, torch.zeros(8, 3, 32, 32, dtype=torch.uint8), progress=False)
    assert all(torch.equal(a, b) for a, b in zip(seen["model"].state_dict().values(), ch3.state_dict().values()))
