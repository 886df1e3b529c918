"""Chapter 7's recipes: DiT sizes per profile, train-or-load of the class-conditional DiT (a few steps on a
few real CIFAR-10 images, in an isolated cache), and LoRA fine-tuning on one class."""


import pytest
import torch

import course_lib.recipes.ch07_dit as dit_recipes
from course_lib.samplers.ddim import ddim_sample, timesteps
from course_lib.process.guidance import cfg_model
from course_lib.models.lora import LoRALinear, merge_lora, trainable_parameters
from course_lib.models.dit import DiT
from course_lib.course.profiles import PROFILES, get_profile
from course_lib.process.schedules import make_schedule

from helpers import assert_loads_without_training, perturbed



@pytest.mark.parametrize("name", list(PROFILES))
@pytest.mark.parametrize("size", ["S/2", "S/4", "B/2", "B/4"])
def test_recipes_build_for_every_profile_and_size(name, size):
    recipe = dit_recipes.dit_recipe(get_profile(name), size)
    config = dit_recipes.dit_config(recipe)
    assert (config.input_size, config.in_channels, config.num_classes) == (32, 3, 10)
    assert config.patch_size == int(size[-1]) and recipe["p_uncond"] == 0.1
    if name == "smoke":
        assert config.hidden_size == 64 and recipe["steps"] <= 200
    else:
        assert recipe["model"] == size and recipe["lr"] == 1e-4 and recipe["warmup"] == 0  # DiT Sec. 4
    if name == "full":
        assert recipe["batch"] == 256 and recipe["ema_decay"] == 0.9999
    assert set(dit_recipes.lora_recipe(get_profile(name))) == {"rank", "alpha", "steps", "batch", "lr", "ema_decay"}


def test_unknown_size_and_the_reusable_models():
    with pytest.raises(ValueError, match="size must be one of"):
        dit_recipes.dit_recipe(get_profile("smoke"), "S/8")
    assert sorted(dit_recipes.MODELS) == ["ch07_dit_B2", "ch07_dit_B4", "ch07_dit_S2", "ch07_dit_S4"]


TINY_DIT = dict(size="S/4", model="tiny/4", schedule="linear", num_steps=1000, steps=2, batch=4, lr=1e-3, warmup=1,
                ema_decay=0.9, train_images=40, num_classes=10, p_uncond=0.1)



def test_chapter7_dit_trains_then_loads_and_samples_with_guidance(cache, monkeypatch):
    monkeypatch.setattr(dit_recipes, "dit_recipe", lambda profile, size: {**TINY_DIT, "size": size})
    model, meta = dit_recipes.chapter7_dit(get_profile("smoke"), size="S/4")
    assert isinstance(model, DiT) and model.config.num_classes == 10 and model.config.patch_size == 4
    assert meta["produced_by"].endswith("train_dit") and (cache / "artifacts/ch07_dit_S4-smoke.pt").exists()
    again = assert_loads_without_training(monkeypatch, dit_recipes, "train_dit",
                                          lambda: dit_recipes.MODELS["ch07_dit_S4"](get_profile("smoke")), model)
    x = ddim_sample(cfg_model(again, torch.tensor([3, 7]), 2.0), make_schedule("linear", 1000),
                    torch.randn(2, 3, 32, 32), timesteps(1000, 2))
    assert x.shape == (2, 3, 32, 32) and torch.isfinite(x).all()


def test_finetune_lora_adapts_a_copy_on_one_class():
    model = DiT(dit_recipes.dit_config(TINY_DIT))
    perturbed(model, 0.05, seed=None)  # as after training: at init adaLN-Zero's gates are 0 and no gradient reaches attention
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    labels = torch.full((8,), 3)
    result = dit_recipes.finetune_lora(model, images, labels, rank=2, steps=3, batch=4, lr=1e-2, ema_decay=0.5,
                                       progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the base model is untouched
    tuned = result.model
    assert sum(isinstance(m, LoRALinear) for m in tuned.modules()) == 2 * model.config.depth
    assert trainable_parameters(tuned) == sum(p.numel() for n, p in tuned.named_parameters() if "lora_" in n)
    assert result.steps_run == 3 and any(m.lora_B.abs().sum() > 0 for m in tuned.modules() if isinstance(m, LoRALinear))
    merged = merge_lora(result.ema)
    assert set(merged.state_dict()) == set(model.state_dict())
