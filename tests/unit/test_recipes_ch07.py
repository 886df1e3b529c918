"""Chapter 7's recipes: DiT sizes per profile on chapter 2's latents, the U-Net at the main DiT's training
flops, train-or-load of both (a few steps on stand-in latents, in an isolated cache), and LoRA fine-tuning on
the latents of one class."""


import pytest
import torch

import course_lib.recipes.ch07_dit as dit_recipes
from course_lib.course.profiles import PROFILES, get_profile
from course_lib.evaluation.flops import model_gflops
from course_lib.models.dit import DiT
from course_lib.models.lora import LoRALinear, merge_lora, trainable_parameters
from course_lib.models.unet import UNet
from course_lib.process.guidance import cfg_model
from course_lib.process.schedules import make_schedule
from course_lib.recipes.ch06_ldm import check_autoencoder
from course_lib.samplers.ddim import ddim_sample, timesteps

from helpers import assert_loads_without_training, perturbed


@pytest.mark.parametrize("name", list(PROFILES))
@pytest.mark.parametrize("size", dit_recipes.SIZES)
def test_recipes_build_for_every_profile_and_size(name, size):
    recipe = dit_recipes.dit_recipe(get_profile(name), size)
    config = dit_recipes.dit_config(recipe)
    assert (config.input_size, config.in_channels, config.num_classes) == (8, 4, 10)  # chapter 2's latents
    assert config.patch_size == int(size[-1]) and recipe["p_uncond"] == 0.1
    if name == "smoke":
        assert config.hidden_size == 64 and recipe["steps"] <= 200
    else:
        assert recipe["model"] == size
    if name in ("colab", "full"):
        assert recipe["lr"] == 1e-4 and recipe["warmup"] == 0  # DiT Sec. 4
    if name == "full":
        assert recipe["batch"] == 256 and recipe["ema_decay"] == 0.9999
    lora = dit_recipes.lora_recipe(get_profile(name))
    assert set(lora) == {"rank", "alpha", "steps", "batch", "lr", "ema_decay", "p_uncond"} and lora["p_uncond"] == 1.0


@pytest.mark.parametrize("name", list(PROFILES))
def test_each_profile_plots_sizes_of_growing_gflops_with_the_main_one_among_them(name):
    main, sizes = dit_recipes.dit_sizes(get_profile(name))
    assert main in sizes and len(sizes) >= (2 if name == "smoke" else 3)
    with torch.device("meta"):
        g = [model_gflops(DiT(dit_recipes.dit_config(dit_recipes.dit_recipe(get_profile("laptop"), s))))
             for s in sizes]
    assert g == sorted(g) and len(set(g)) == len(g)


@pytest.mark.parametrize("name", list(PROFILES))
def test_the_unet_trains_with_the_main_dits_flops(name):
    profile = get_profile(name)
    u = dit_recipes.unet_recipe(profile)
    main = dit_recipes.dit_recipe(profile, dit_recipes.dit_sizes(profile)[0])
    with torch.device("meta"):
        dit_flops = model_gflops(DiT(dit_recipes.dit_config(main))) * main["batch"] * main["steps"]
        unet_flops = model_gflops(UNet(dit_recipes.unet_config(u))) * u["batch"] * u["steps"]
        per_100_steps = model_gflops(UNet(dit_recipes.unet_config(u))) * u["batch"] * 100
    assert abs(unet_flops - dit_flops) <= per_100_steps / 2 + 1e-9  # rounded to 100 steps
    assert u["batch"] == main["batch"] and u["latent_shape"] == main["latent_shape"] == (4, 8, 8)
    assert dit_recipes.unet_config(u).num_classes == 10 and dit_recipes.unet_config(u).context_dim is None


def test_unknown_size_and_the_reusable_models():
    with pytest.raises(ValueError, match="size must be one of"):
        dit_recipes.dit_recipe(get_profile("smoke"), "S/8")
    with pytest.raises(ValueError, match="size must be one of"):
        dit_recipes.chapter7_dit(get_profile("smoke"), size="S/4")
    assert sorted(dit_recipes.MODELS) == ["ch07_dit_S1", "ch07_dit_S2", "ch07_dit_XS1", "ch07_dit_XS2",
                                          "ch07_dit_XXS2", "ch07_unet"]


TINY = dict(schedule="linear", num_steps=1000, steps=2, batch=4, lr=1e-3, warmup=1, ema_decay=0.9, train_images=40,
            num_classes=10, p_uncond=0.1, latent_shape=(4, 8, 8))
TINY_DIT = dict(TINY, size="XS/1", model="tiny/1")
TINY_UNET = dict(TINY, unet="tiny", unet_overrides=dict(channel_mult=(1, 2), attention_resolutions=(4,)))


def _stand_in_latents(profile, train_images, device):
    """latent_training_set without chapter 2's autoencoder: random posteriors for 40 images."""
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(train_images, 4, 8, 8, generator=g)
    return dict(mu=mu, logvar=torch.full_like(mu, -2.0), labels=torch.arange(train_images) % 10, scale=0.5,
                vae="ch02_vae-smoke", vae_sha256="ab" * 32, data="stand-in")


def test_chapter7_dit_trains_then_loads_and_samples_with_guidance(cache, monkeypatch):
    monkeypatch.setattr(dit_recipes, "dit_recipe", lambda profile, size: {**TINY_DIT, "size": size})
    monkeypatch.setattr(dit_recipes, "latent_training_set", _stand_in_latents)
    model, meta = dit_recipes.chapter7_dit(get_profile("smoke"), size="XS/1")
    assert isinstance(model, DiT) and model.config.num_classes == 10 and model.config.patch_size == 1
    assert meta["produced_by"].endswith("train_latent") and (cache / "artifacts/ch07_dit_XS1-smoke.pt").exists()
    assert meta["config"]["latent_scale"] == 0.5 and meta["config"]["vae"] == "ch02_vae-smoke"
    check_autoencoder(meta, {"name": "ch02_vae-smoke", "sha256": "ab" * 32})
    with pytest.raises(ValueError, match="trained on the latents of ch02_vae-smoke .* train it again"):
        check_autoencoder(meta, {"name": "ch02_vae-smoke", "sha256": "cd" * 32})
    again = assert_loads_without_training(monkeypatch, dit_recipes, "train_latent",
                                          lambda: dit_recipes.MODELS["ch07_dit_XS1"](get_profile("smoke")), model)
    x = ddim_sample(cfg_model(again, torch.tensor([3, 7]), 2.0), make_schedule("linear", 1000),
                    torch.randn(2, 4, 8, 8), timesteps(1000, 2))
    assert x.shape == (2, 4, 8, 8) and torch.isfinite(x).all()


def test_chapter7_unet_trains_then_loads(cache, monkeypatch):
    monkeypatch.setattr(dit_recipes, "unet_recipe", lambda profile: TINY_UNET)
    monkeypatch.setattr(dit_recipes, "latent_training_set", _stand_in_latents)
    unet, meta = dit_recipes.chapter7_unet(get_profile("smoke"))
    assert isinstance(unet, UNet) and unet.config.num_classes == 10 and unet.config.in_channels == 4
    assert (cache / "artifacts/ch07_unet-smoke.pt").exists() and meta["config"]["recipe"]["steps"] == 2
    assert_loads_without_training(monkeypatch, dit_recipes, "train_latent",
                                  lambda: dit_recipes.chapter7_unet(get_profile("smoke")), unet)


def test_finetune_lora_adapts_a_copy_on_the_latents_of_one_class():
    model = DiT(dit_recipes.dit_config(TINY_DIT))
    perturbed(model, 0.05, seed=None)  # as after training: at init adaLN-Zero's gates are 0 and no gradient reaches attention
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mu = torch.randn(8, 4, 8, 8)
    result = dit_recipes.finetune_lora(model, mu, torch.full_like(mu, -3.0), torch.full((8,), 3), 0.5, rank=2,
                                       steps=3, batch=4, lr=1e-2, ema_decay=0.5, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the base model is untouched
    tuned = result.model
    assert sum(isinstance(m, LoRALinear) for m in tuned.modules()) == 2 * model.config.depth
    assert trainable_parameters(tuned) == sum(p.numel() for n, p in tuned.named_parameters() if "lora_" in n)
    assert result.steps_run == 3 and any(m.lora_B.abs().sum() > 0 for m in tuned.modules() if isinstance(m, LoRALinear))
    merged = merge_lora(result.ema)
    assert set(merged.state_dict()) == set(model.state_dict())
