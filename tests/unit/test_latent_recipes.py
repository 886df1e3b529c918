"""Chapter 6's recipes: per-profile sizes, train-or-load of the text-to-image latent denoiser on the chapter 2
VAE's latents of a few real CIFAR-10 images (the VAE trained first when missing), and the cost helpers."""


import pytest
import torch

import course_lib.recipes.ch06_ldm as lr
from course_lib.recipes import ch02_vae
from course_lib.data.captions import tokenize
from course_lib.samplers.ddim import ddim_sample, timesteps
from course_lib.data.latents import decode_latents
from course_lib.models import LatentDenoiser
from course_lib.course.profiles import PROFILES, get_profile
from course_lib.process.schedules import make_schedule
from course_lib.process.text_guidance import CaptionDropoutLoss, text_cfg_model

from helpers import assert_loads_without_training


TINY_VAE = dict(model=dict(base_channels=8, channel_mult=(1, 2, 2), blocks_per_level=1, latent_channels=4),
                steps=2, batch=8, lr=1e-3, beta=1.0, ema_decay=0.9, train_images=40)


@pytest.mark.parametrize("name", list(PROFILES))
def test_recipes_build_for_every_profile(name):
    recipe = lr.ldm_recipe(get_profile(name))
    config = lr.ldm_config(recipe, (4, 8, 8))
    assert config.unet.context_dim == config.text.width and config.unet.in_channels == 4
    assert recipe["p_uncond"] == 0.1 and config.text.max_len == recipe["max_tokens"]
    with torch.device("meta"):
        n = sum(p.numel() for p in LatentDenoiser(config).parameters())
    assert n < 0.5e6 if name == "smoke" else n > 1e6



def test_chapter6_ldm_trains_the_autoencoder_then_itself_then_loads_and_samples(cache, monkeypatch):
    smoke = get_profile("smoke")
    monkeypatch.setattr(ch02_vae, "vae_recipe", lambda profile: TINY_VAE)
    original = lr.ldm_recipe
    monkeypatch.setattr(lr, "ldm_recipe", lambda profile: {**original(profile), "batch": 8, "train_images": 40})
    model, meta = lr.chapter6_ldm(smoke, steps=3)
    assert isinstance(model, LatentDenoiser) and not model.training
    assert (cache / "artifacts/ch02_vae-smoke.pt").exists() and (cache / "artifacts/ch06_ldm-smoke.pt").exists()
    config = meta["config"]
    assert config["vae"] == "ch02_vae-smoke" and config["recipe"]["steps"] == 3 and config["latent_scale"] > 0
    assert meta["produced_by"].endswith("train_ldm")
    assert [step for step, _ in meta["history"]] == [1, 2, 3]  # the loss curve the chapter plots
    assert meta["train_seconds"] > 0
    assert_loads_without_training(monkeypatch, lr, "train_ldm", lambda: lr.chapter6_ldm(smoke), model)
    vae, _ = ch02_vae.chapter2_vae(smoke)
    guided = text_cfg_model(model, tokenize("a photo of a red truck")[0], 3.0)
    z = ddim_sample(guided, make_schedule("linear", 1000), torch.randn(2, 4, 8, 8), timesteps(1000, 2))
    images = decode_latents(vae, z, config["latent_scale"])
    assert images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()


def test_training_and_sampling_cost_on_cpu():
    recipe = lr.ldm_recipe(get_profile("smoke"))
    model = LatentDenoiser(lr.ldm_config(recipe, (4, 8, 8)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = iter(lambda: (torch.randn(4, 4, 8, 8), tokenize(["a photo of a cat"] * 4)), None)
    cost = lr.training_cost(model, CaptionDropoutLoss(make_schedule("linear", 1000)), batches, steps=2, warmup=1)
    assert cost.steps_per_second > 0 and cost.peak_memory_mib is None  # not measured on the CPU
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # a copy was trained
    model.requires_grad_(False)  # an EMA model: frozen weights, measured all the same
    assert lr.training_cost(model, CaptionDropoutLoss(make_schedule("linear", 1000)), batches, steps=1,
                            warmup=0).steps_per_second > 0
    assert not any(p.requires_grad for p in model.parameters())
    seconds = lr.sampling_seconds_per_image(lambda: torch.zeros(4, 3, 32, 32), 4)
    assert 0 <= seconds < 1
    with pytest.raises(ValueError, match="num_images"):
        lr.sampling_seconds_per_image(lambda: None, 0)
