"""Chapter 9's recipes: per-profile settings, LCM-LoRA's student, and train-or-load of the latent consistency
model distilled from chapter 6's LDM (itself trained first, on the chapter 2 VAE's latents of a few real
CIFAR-10 images) in an isolated cache."""

import importlib.util
from pathlib import Path

import pytest
import torch

import course_lib.recipes.ch06_ldm as lr
import course_lib.recipes.ch09_lcm as lcm
from course_lib.recipes import ch02_vae
from course_lib.data.captions import tokenize
from course_lib.samplers.consistency import lcm_sample
from course_lib.data.latents import decode_latents
from course_lib.models.lora import trainable_parameters
from course_lib.models.lcm import GuidanceConditionedDenoiser
from course_lib.course.profiles import PROFILES, get_profile
from course_lib.process.schedules import make_schedule

from helpers import assert_loads_without_training

from test_consistency import tiny_teacher
from test_latent_recipes import TINY_VAE


@pytest.mark.parametrize("name", list(PROFILES))
def test_recipe_for_every_profile(name):
    recipe = lcm.lcm_recipe(get_profile(name))
    assert recipe["original_inference_steps"] == 50 and recipe["mu"] == 0.95 and recipe["w_embed_dim"] == 256
    assert 1.0 <= recipe["w_min"] < recipe["w_max"] and recipe["steps"] > 0 and recipe["batch"] > 0
    assert lcm.MODELS["ch09_lcm"] is lcm.chapter9_lcm


def test_train_script_offers_the_chapter_9_model():
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("train_script", root / "scripts/train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.parse_args(["ch09_lcm", "--profile", "smoke"]).model == "ch09_lcm"


def test_lcm_lora_student_starts_as_the_teacher_and_trains_only_adapters():
    teacher = tiny_teacher()
    student = lcm.lcm_lora_student(teacher, rank=2)
    lora = [n for n, p in student.named_parameters() if p.requires_grad]
    assert lora and all(".lora_A" in n or ".lora_B" in n for n in lora) and all(".unet." in n for n in lora)
    assert trainable_parameters(student) < 0.2 * sum(p.numel() for p in teacher.parameters())
    z, t, tokens = torch.randn(2, 4, 8, 8), torch.tensor([10, 900]), tokenize(["a photo of a cat", "a ship"])
    with torch.no_grad():
        torch.testing.assert_close(student.eval()(z, t, tokens, 3.0), teacher(z, t, tokens))
    mu, logvar = torch.randn(16, 4, 8, 8), torch.full((16, 4, 8, 8), -4.0)
    recipe = {**lcm.lcm_recipe(get_profile("smoke")), "batch": 4}
    result = lcm.distill_lcm(recipe, teacher, mu, logvar, tokenize(["a photo of a cat"] * 16), 1.0, steps=2,
                             student=student, target_mu=0.0, progress=False)
    assert result.steps_run == 2 and any(float(p.detach().abs().sum()) > 0 for n, p in student.named_parameters()
                                          if n.endswith("lora_B"))


def test_one_step_error_is_the_gap_to_the_teachers_ddim_trajectory():
    teacher, schedule = tiny_teacher(), make_schedule("linear", 1000)
    student = GuidanceConditionedDenoiser.from_teacher(teacher).eval()
    z_T, tokens = torch.randn(2, 4, 8, 8), tokenize("a photo of a red truck")[0]
    gap = lcm.one_step_error(student, teacher, schedule, z_T, tokens, 3.0)
    assert gap > 0 and lcm.one_step_error(student, teacher, schedule, z_T, tokens, 3.0) == gap



def test_chapter9_lcm_trains_the_teacher_then_distils_then_loads_and_samples(cache, monkeypatch):
    smoke = get_profile("smoke")
    monkeypatch.setattr(ch02_vae, "vae_recipe", lambda profile: TINY_VAE)
    ldm_original, lcm_original = lr.ldm_recipe, lcm.lcm_recipe
    monkeypatch.setattr(lr, "ldm_recipe", lambda p: {**ldm_original(p), "batch": 8, "train_images": 40, "steps": 3})
    monkeypatch.setattr(lcm, "lcm_recipe", lambda p: {**lcm_original(p), "batch": 8, "train_images": 40})
    student, meta = lcm.chapter9_lcm(smoke, steps=3)
    assert isinstance(student, GuidanceConditionedDenoiser) and not student.training
    for name in ("ch02_vae-smoke", "ch06_ldm-smoke", "ch09_lcm-smoke"):
        assert (cache / f"artifacts/{name}.pt").exists()
    config = meta["config"]
    assert config["teacher"] == "ch06_ldm-smoke" and config["recipe"]["steps"] == 3 and config["latent_scale"] > 0
    assert meta["produced_by"].endswith("distill_lcm")
    assert [step for step, _ in meta["history"]] == [1, 2, 3] and meta["train_seconds"] > 0
    assert_loads_without_training(monkeypatch, lcm, "distill_lcm",
                                  lambda: lcm.chapter9_lcm(smoke), student, verb="distilled")
    vae, _ = ch02_vae.chapter2_vae(smoke)
    z = lcm_sample(student, make_schedule("linear", 1000), torch.randn(2, 4, 8, 8), 4, 3.0,
                   tokenize("a photo of a red truck")[0], torch.Generator().manual_seed(0))
    images = decode_latents(vae, z, config["latent_scale"])
    assert images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()
