"""Chapter 9's recipes: latent consistency distillation (LCM, Luo et al. 2023, arXiv 2310.04378) of chapter 6's
text-to-image latent denoiser into a guidance-conditioned student that samples in 1-8 steps, and its LoRA
form (LCM-LoRA, Luo et al. 2023, arXiv 2311.05556).

    lcm_recipe(profile)                     distillation settings per profile
    distill_lcm(recipe, teacher, mu, logvar, tokens, scale, ...)   distils a student with the shared loop
    lcm_lora_student(teacher, rank)         the LCM-LoRA student: LoRA adapters on a copy of the teacher's attention
    GuidanceFreeStudent(denoiser)           ``model(z_t, t, tokens, w)`` that ignores w (LCM-LoRA has no w-condition)
    one_step_error(student, teacher, schedule, z_T, tokens, w)    RMS gap of f(z_T) to the teacher's 50-step DDIM
    chapter9_lcm(profile, device)           load the saved student, or distil it from chapter6_ldm and save it
    MODELS                         name -> train-or-load function (for scripts/train.py)

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py).

The data are the teacher's: the chapter 2 autoencoder's latents of CIFAR-10 (scaled by the teacher's kappa) with
their synthetic captions; LCM Alg. 1 distils on real latents and captions too (LAION there).
Settings (LCM Sec. 5.1 and diffusers' train_lcm_distill_sd_wds.py): 50 solver steps on the grid (k = 20),
the target's EMA rate mu = 0.95, pseudo-Huber c = 0.001, AdamW with gradient clipping at 1 (the shared loop's;
diffusers adds weight decay 1e-2). LCM samples omega = w - 1 in [2, 14] for Stable Diffusion; chapter 6's small
CIFAR models guide best near w = 3 and saturate far above it, so every profile here draws w in [1, 5], which
includes the unguided conditional model w = 1. The learning rates are larger than LCM's 8e-6 (Stable
Diffusion, batch 72) because these models are small and the runs short.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..training import distributed as dist
from ..course.artifacts import load_artifact, save_artifact
from ..process.consistency import consistency_output
from ..samplers.ddim import ddim_sample, timesteps
from ..data.latents import latent_batches
from .ch06_ldm import _training_data, chapter6_ldm
from ..process.lcm_distillation import LCMDistillationLoss
from ..models.lora import add_lora
from ..models.lcm import GuidanceConditionedDenoiser
from ..models.ldm import LatentDenoiser, LatentDenoiserConfig
from ..course.profiles import Profile
from .common import load_or_stand_in, train_config
from ..process.schedules import NoiseSchedule, make_schedule
from ..process.text_guidance import expand_tokens, text_cfg_model
from ..training.loop import TrainResult, train


def lcm_recipe(profile: Profile) -> dict[str, Any]:
    """Distillation settings per profile. ``smoke``: 400 steps, about 20 s on 2 CPU cores (measured, under load,
    at 18-21 steps/s), which brings the one-step gap to the smoke teacher's 50-step DDIM samples (``one_step_error``,
    w = 3) from 17.6 to about 11-12, between the teacher's own 2- and 4-step DDIM (14.1 and 6.3). colab and
    full (not yet run) use diffusers' LCM learning rate 1e-4 and half of it."""
    common = dict(original_inference_steps=50, w_min=1.0, w_max=5.0, mu=0.95, huber_c=0.001, w_embed_dim=256)
    return profile.choose(
        smoke=dict(steps=400, batch=32, lr=5e-4, warmup=20, ema_decay=0.99, train_images=2_000, **common),
        laptop=dict(steps=4_000, batch=64, lr=1e-4, warmup=200, ema_decay=0.999, train_images=None,
                    **common),  # provisional: sized in issue 20 (chapter 9)
        colab=dict(steps=4_000, batch=128, lr=1e-4, warmup=200, ema_decay=0.999, train_images=None, **common),
        full=dict(steps=20_000, batch=128, lr=5e-5, warmup=500, ema_decay=0.9995, train_images=None, **common),
    )


def _loss(recipe: dict[str, Any], teacher: nn.Module, schedule: NoiseSchedule, mu: float | None = None):
    return LCMDistillationLoss(teacher, schedule, original_inference_steps=recipe["original_inference_steps"],
                               w_min=recipe["w_min"], w_max=recipe["w_max"],
                               mu=recipe["mu"] if mu is None else mu, huber_c=recipe["huber_c"])


def distill_lcm(recipe: dict[str, Any], teacher: LatentDenoiser, mu: torch.Tensor, logvar: torch.Tensor,
                tokens: torch.Tensor, scale: float, *, steps: int | None = None, student: nn.Module | None = None,
                schedule: NoiseSchedule | None = None, target_mu: float | None = None, seed: int = 0,
                progress: bool = True, checkpoint_path=None) -> TrainResult:
    """Distils ``teacher`` (a LatentDenoiser, frozen) into ``student`` (default: a GuidanceConditionedDenoiser
    initialised from it) with ``LCMDistillationLoss`` in the shared training loop, on scaled latents kappa z,
    z ~ q(z | x) drawn afresh from the posteriors (mu, logvar) (N, C, h, w), with caption ``tokens`` (N, L).
    ``schedule``: the teacher's (default: linear, T = 1000, chapter 6's); ``target_mu``: replaces the recipe's
    mu (LCM-LoRA: 0). Returns the loop's result: ``result.ema`` is the student to keep. A run resumed from
    ``checkpoint_path`` restarts the target theta^- from the resumed student (the checkpoint does not hold it)."""
    torch.manual_seed(seed)
    teacher = teacher.to(mu.device).eval().requires_grad_(False)
    if student is None:
        student = GuidanceConditionedDenoiser.from_teacher(teacher, recipe["w_embed_dim"])
    schedule = schedule if schedule is not None else make_schedule("linear", 1000)
    gen = torch.Generator(mu.device).manual_seed(seed)
    batches = latent_batches(mu, logvar, tokens.to(mu.device), recipe["batch"], scale, generator=gen)
    return train(student, _loss(recipe, teacher, schedule, target_mu), batches,
                 train_config(recipe, steps, progress, checkpoint_path))


class GuidanceFreeStudent(nn.Module):
    """``model(z_t, t, tokens, w)`` that ignores w: the LCM-LoRA student, which has no w-condition
    (LCM-LoRA Sec. 3) and so learns the teacher's trajectories averaged over the distilled range of w."""

    def __init__(self, denoiser: nn.Module):
        super().__init__()
        self.denoiser = denoiser

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor, w=None) -> torch.Tensor:
        return self.denoiser(z_t, t, tokens)

    def empty_tokens(self, *args, **kwargs):
        return self.denoiser.empty_tokens(*args, **kwargs)


def lcm_lora_student(teacher: LatentDenoiser, rank: int = 4, alpha: float | None = None) -> GuidanceFreeStudent:
    """LCM-LoRA's student: a copy of the teacher whose U-Net attention projections (self-attention qkv, proj;
    cross-attention q, k, v, proj) carry LoRA adapters (``lora.add_lora``, B = 0 so it starts as the teacher),
    everything else frozen. Distil it with ``distill_lcm(..., student=..., target_mu=0.0)``: LCM-LoRA's
    target is the online network under stop-gradient (mu = 0)."""
    denoiser = copy.deepcopy(teacher)
    attention = ("qkv", "proj", "q", "k", "v")
    add_lora(denoiser, lambda name, linear: name.startswith("unet.") and name.rsplit(".", 1)[-1] in attention,
             rank=rank, alpha=alpha)
    return GuidanceFreeStudent(denoiser).train()


@torch.no_grad()
def one_step_error(student: nn.Module, teacher: LatentDenoiser, schedule: NoiseSchedule, z_T: torch.Tensor,
                   tokens: torch.Tensor, w: float) -> float:
    """RMS distance between the student's one-step estimate f(z_T, w, c, 999) and the end of the teacher's
    guided 50-step DDIM trajectory from the same z_T (the trailing grid 999, 979, ..., 19 down to the data
    end: the solver chain distillation follows). What consistency distillation drives down; at initialisation
    the student's f is the teacher's one-step x0 estimate."""
    B = z_T.shape[0]
    tokens = expand_tokens(tokens, B)  # (B, L)
    grid = timesteps(schedule.num_steps, 50, "trailing")  # 999, 979, ..., 19, then the data end
    reference = ddim_sample(text_cfg_model(teacher, tokens, w), schedule, z_T, grid)
    t = torch.full((B,), schedule.num_steps - 1, dtype=torch.long, device=z_T.device)
    f = consistency_output(schedule, student(z_T, t, tokens, torch.full((B,), float(w), device=z_T.device)), z_T, t)
    return float((f - reference).pow(2).mean().sqrt())


def _build_student(config: dict[str, Any]) -> GuidanceConditionedDenoiser:
    denoiser = LatentDenoiser(LatentDenoiserConfig.from_dict(config["model"]))
    return GuidanceConditionedDenoiser(denoiser, config["recipe"]["w_embed_dim"])


def chapter9_lcm(profile: Profile, device: torch.device | str = "cpu", retrain: bool = False, *,
                 steps: int | None = None, checkpoint_path: str | Path | None = None,
                 stand_in: bool = True) -> tuple[GuidanceConditionedDenoiser, dict]:
    """The chapter 9 latent consistency model for ``profile``: loaded from artifact ``ch09_lcm-PROFILE``, else
    distilled with ``distill_lcm`` from ``chapter6_ldm(profile)`` (trained first if missing) on the teacher's
    latents and captions, and saved (the loop's EMA of the student, with its loss history). ``meta["config"]``
    holds the teacher's ``latent_scale``, ``teacher_sha256`` and ``vae``; ``steps`` replaces the recipe's
    (tests); ``checkpoint_path``: resume/save; ``stand_in=False`` (chapter 9 itself): distil this profile's
    model rather than load another profile's published one."""
    name = f"ch09_lcm-{profile.name}"
    if not retrain and (saved := load_or_stand_in(name, _build_student, profile, device,
                                                  f"Distilling it now with distill_lcm ({profile.name} recipe).",
                                                  recipe_fn=lcm_recipe, stand_in=stand_in)):
        return saved
    teacher, teacher_meta = chapter6_ldm(profile, device)
    tconfig = teacher_meta["config"]
    recipe = lcm_recipe(profile) if steps is None else {**lcm_recipe(profile), "steps": steps}
    d = _training_data(profile, {"train_images": recipe["train_images"], "max_tokens": tconfig["recipe"]["max_tokens"]},
                       device)
    if d["vae_sha256"] != tconfig["vae_sha256"]:
        raise ValueError(f"the VAE {d['vae']} is not the one {teacher_meta['name']} was trained on; "
                         "retrain the teacher (chapter6_ldm(..., retrain=True)) first")
    schedule = make_schedule(tconfig["recipe"]["schedule"], tconfig["recipe"]["num_steps"])
    scale = tconfig["latent_scale"]  # the teacher's kappa, not one measured again
    result = distill_lcm(recipe, teacher, d["mu"], d["logvar"], d["tokens"], scale, schedule=schedule,
                         checkpoint_path=checkpoint_path)
    if dist.is_main():
        config = {"model": result.ema.denoiser.config.to_dict(), "recipe": recipe, "teacher": teacher_meta["name"],
                  "teacher_sha256": teacher_meta["sha256"], "latent_scale": scale, "vae": tconfig["vae"],
                  "vae_sha256": tconfig["vae_sha256"], "data": d["data"], "processes": dist.world_size()}
        save_artifact(name, result.ema, config, profile=profile.name, produced_by="course_lib.recipes.ch09_lcm.distill_lcm",
                      seconds=result.total_seconds, history=result.history,
                      metrics={"final_loss": result.history[-1][1]} if result.history else None)
    dist.barrier()
    return load_artifact(name, _build_student, map_location=device)


# scripts/train.py trains these by name (artifact NAME-PROFILE), with the chapter's own train-or-load function.
MODELS = {"ch09_lcm": chapter9_lcm}
