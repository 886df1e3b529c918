"""Chapter 5's recipes: per-profile settings, and train-or-load of the evaluation classifier, the
noise-aware classifier and the class-conditional U-Net (a few steps on a few real CIFAR-10 images)."""

import importlib.util
from pathlib import Path

import pytest
import torch

from course_lib.recipes import ch03_ddpm, ch05_cfg
from course_lib.samplers.ddim import ddim_sample, timesteps
from course_lib.process.guidance import cfg_model
from course_lib.models import Classifier
from course_lib.course.profiles import PROFILES, get_profile
from course_lib.process.schedules import make_schedule

from helpers import assert_loads_without_training

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", list(PROFILES))
def test_recipes_build_for_every_profile(name):
    profile = get_profile(name)
    clean, noisy, cfg = (ch05_cfg.classifier_recipe(profile), ch05_cfg.noisy_classifier_recipe(profile),
                         ch05_cfg.cfg_recipe(profile))
    assert not ch05_cfg.classifier_config(clean).time_conditioned and ch05_cfg.classifier_config(noisy).time_conditioned
    assert noisy["num_steps"] == ch03_ddpm.ddpm_recipe(profile)["num_steps"]  # guides the chapter 3 U-Net
    assert cfg["num_classes"] == 10 and cfg["p_uncond"] == 0.1
    assert ch03_ddpm.unet_config(cfg, num_classes=10) == ch03_ddpm.unet_config(ch03_ddpm.ddpm_recipe(profile), num_classes=10)
    expected = {"smoke": "tiny", "laptop": "small"}.get(name, "standard")
    assert clean["model"] == expected and clean["crop"] == 4


def test_train_script_offers_the_chapter_5_to_7_models():
    spec = importlib.util.spec_from_file_location("train_script", ROOT / "scripts/train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for name in ("ch05_classifier", "ch05_noisy_classifier", "ch05_unet", "ch06_ldm", "ch07_dit_XS1", "ch07_unet"):
        assert script.parse_args([name, "--profile", "smoke"]).model == name


TINY_CLASSIFIER = dict(model="tiny", steps=2, batch=8, lr=1e-3, weight_decay=0.0, warmup=1, ema_decay=0.9,
                       label_smoothing=0.1, crop=4, train_images=40, test_images=20)
TINY_CFG = dict(unet="tiny", schedule="linear", num_steps=1000, steps=2, batch=4, lr=1e-3, warmup=1, ema_decay=0.9,
                train_images=40, num_classes=10, p_uncond=0.1)



def test_chapter5_classifier_trains_records_its_accuracy_then_loads(cache, monkeypatch):
    monkeypatch.setattr(ch05_cfg, "classifier_recipe", lambda profile: TINY_CLASSIFIER)
    clf, meta = ch05_cfg.chapter5_classifier(get_profile("smoke"))
    assert isinstance(clf, Classifier) and not clf.training and not clf.config.time_conditioned
    assert 0.0 <= meta["metrics"]["test_accuracy"] <= 1.0 and meta["produced_by"].endswith("train_classifier")
    assert (cache / "artifacts/ch05_classifier-smoke.pt").exists()
    assert_loads_without_training(monkeypatch, ch05_cfg, "train_classifier",
                                  lambda: ch05_cfg.chapter5_classifier(get_profile("smoke")), clf)


def test_chapter5_noisy_classifier_is_time_conditioned(cache, monkeypatch):
    monkeypatch.setattr(ch05_cfg, "classifier_recipe", lambda profile: TINY_CLASSIFIER)
    clf, meta = ch05_cfg.chapter5_noisy_classifier(get_profile("smoke"))
    assert clf.config.time_conditioned and meta["config"]["recipe"]["num_steps"] == 1000
    assert clf(torch.zeros(2, 3, 32, 32), torch.tensor([0, 999])).shape == (2, 10)


def test_chapter5_unet_trains_then_loads_and_samples_with_guidance(cache, monkeypatch):
    monkeypatch.setattr(ch05_cfg, "cfg_recipe", lambda profile: TINY_CFG)
    unet, meta = ch05_cfg.chapter5_unet(get_profile("smoke"))
    assert unet.config.num_classes == 10 and meta["produced_by"].endswith("train_cfg")
    assert_loads_without_training(monkeypatch, ch05_cfg, "train_cfg",
                                  lambda: ch05_cfg.chapter5_unet(get_profile("smoke")), unet)
    x = ddim_sample(cfg_model(unet, torch.tensor([3, 7]), 2.0), make_schedule("linear", 1000),
                    torch.randn(2, 3, 32, 32), timesteps(1000, 2))
    assert x.shape == (2, 3, 32, 32) and torch.isfinite(x).all()


def test_the_laptop_cfg_unet_starts_from_chapter_3s(cache, monkeypatch, capsys):
    """The laptop recipe fine-tunes chapter 3's U-Net: loaded into the class-conditional U-Net with the label
    embedding at zero, the model equals chapter 3's for every label (and the null label) before training; a
    name that is not a chapter 3 U-Net, or a U-Net of another size, is refused."""
    assert ch05_cfg.cfg_recipe(get_profile("laptop"))["init"] == "ch03_unet-laptop"
    assert ch05_cfg.cfg_recipe(get_profile("smoke"))["init"] == "ch03_unet-smoke"  # CI runs the laptop path
    assert ch05_cfg.cfg_recipe(get_profile("colab"))["init"] is None  # a T4 trains its own from scratch
    tiny3 = {k: v for k, v in TINY_CFG.items() if k not in ("num_classes", "p_uncond")}
    monkeypatch.setattr(ch03_ddpm, "ddpm_recipe", lambda profile: tiny3)
    ch3, _ = ch03_ddpm.chapter3_unet(get_profile("smoke"))
    torch.manual_seed(1)
    model = ch03_ddpm.UNet(ch03_ddpm.unet_config(TINY_CFG, num_classes=10)).eval()
    ch05_cfg.init_from_chapter3(model, "ch03_unet-smoke")
    assert "starting from ch03_unet-smoke (SHA-256" in capsys.readouterr().out
    x, t = torch.randn(3, 3, 32, 32), torch.tensor([10, 500, 990])
    with torch.no_grad():
        for y in (torch.tensor([0, 4, 9]), torch.tensor([10, 10, 10])):
            torch.testing.assert_close(model(x, t, y), ch3(x, t), rtol=0, atol=0)
    run = ch05_cfg.train_cfg({**TINY_CFG, "init": "ch03_unet-smoke"}, torch.zeros(8, 3, 32, 32, dtype=torch.uint8),
                             torch.arange(8) % 10, progress=False)
    assert run.steps_run == 2
    with pytest.raises(ValueError, match="must name a chapter 3 U-Net artifact"):
        ch05_cfg.init_from_chapter3(model, "ch05_unet-smoke")
    wider = ch03_ddpm.UNet(ch03_ddpm.unet_config(TINY_CFG, num_classes=10, base_channels=32))
    with pytest.raises(ValueError, match="does not fit this U-Net"):
        ch05_cfg.init_from_chapter3(wider, "ch03_unet-smoke")
