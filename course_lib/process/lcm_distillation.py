"""Latent consistency distillation (LCD; LCM, Luo et al. 2023, arXiv 2310.04378, Alg. 1): a student
learns the consistency function of a classifier-free guided teacher's probability-flow ODE in latent space
(consistency distillation, CM Sec. 4, Alg. 2, Song et al. 2023, arXiv 2303.01469).

    guided_ddim_step(teacher, schedule, z_t, t, t_prev, tokens, w)   the teacher's skipping-step DDIM solver
    ddim_step_batched(schedule, eps, z_t, t, t_prev)                  one DDIM step with per-example steps
    pseudo_huber(diff, c)                                             the distance d (elementwise)
    LCMDistillationLoss(teacher, schedule, ...)                      ``loss(student, (z0, tokens))``, LCM Alg. 1

Time convention: integer steps t in {0, ..., T-1}, t = 0 nearest the data (see process/schedules.py). LCM's
grid is t_{n+k} in {19, 39, ..., 999} (k = T / 50 = 20, ``consistency.lcm_grid``); one solver step goes
from t_{n+k} to t_n = t_{n+k} - k, where t_n = -1 is the data end (alpha_bar = 1, as the samplers'
"step -1"), and there the target is the solver's x_{t_n} itself: the boundary condition f(x, eps) = x.
(diffusers' training script lands that step on alpha_bar_0 instead of 1; the two differ by 1e-4 in alpha_bar.)

Names -> symbols:
    z0, z_t       z, z_{t_{n+k}}   scaled latents (B, C, h, w), and the same noised to step t_{n+k} (DDPM Eq. 4)
    z_prev        hat z_{t_n}      one DDIM step of the teacher's guided PF-ODE from t_{n+k} to t_n (LCM Sec. 4.2-4.3)
    k             k                the skipping interval in steps (LCM Sec. 4.3): T / original_inference_steps
    w             w                the course's guidance scale (``guidance.guided_eps``), one per example,
                                   uniform in [w_min, w_max]; LCM's omega = w - 1 (its [2, 14] is w in [3, 15])
    student       theta            the online consistency model ``student(z_t, t, tokens, w) -> eps``
    target        theta^-          its EMA, updated with rate mu (LCM Alg. 1; CM Alg. 2): the target network
    mu            mu               the target's EMA decay (0.95, diffusers' LCM script's default)
    c             c                the pseudo-Huber constant: d(a, b) = mean of sqrt((a - b)^2 + c^2) - c
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .consistency import SIGMA_DATA, TIMESTEP_SCALING, consistency_output, lcm_grid
from .diffusion import add_noise, eps_to_x0, gather
from .schedules import NoiseSchedule
from .text_guidance import text_cfg_model
from ..training.ema import EMA


def _alpha_bar(schedule: NoiseSchedule, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """alpha_bar_t per example as (B, 1, ..., 1) in like's dtype; 1 at the data end t < 0."""
    a = gather(schedule.alpha_bar, t.clamp(min=0), like)  # (B, 1, ..., 1)
    return a.masked_fill((t < 0).reshape(a.shape).to(a.device), 1.0)


def ddim_step_batched(schedule: NoiseSchedule, eps: torch.Tensor, z_t: torch.Tensor, t: torch.Tensor,
                      t_prev: torch.Tensor) -> torch.Tensor:
    """One deterministic DDIM step z_t -> z_{t_prev} with a step per example (DDIM Eq. 12, eta = 0):
    sqrt(alpha_bar_prev) x0_hat + sqrt(1 - alpha_bar_prev) eps. ``t``, ``t_prev``: (B,) long, t_prev < t,
    t_prev = -1 the data end. Equal to ``samplers.ddim.ddim_step`` row by row."""
    if t.shape != (z_t.shape[0],) or t_prev.shape != t.shape or bool((t_prev >= t).any()):
        raise ValueError("t and t_prev must be (B,) steps with t_prev < t")
    a_bar, a_prev = _alpha_bar(schedule, t, z_t), _alpha_bar(schedule, t_prev, z_t)
    x0_hat = eps_to_x0(eps, z_t, a_bar)
    return a_prev.sqrt() * x0_hat + (1 - a_prev).sqrt() * eps  # DDIM Eq. 12 with sigma = 0


@torch.no_grad()
def guided_ddim_step(teacher: nn.Module, schedule: NoiseSchedule, z_t: torch.Tensor, t: torch.Tensor,
                     t_prev: torch.Tensor, tokens: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The skipping-step solver of LCM Sec. 4.2-4.3: one DDIM step from t to t_prev along the teacher's
    classifier-free guided PF-ODE, eps_uncond + w (eps_cond - eps_uncond) (one pass of the doubled batch,
    ``text_guidance.text_cfg_model``). teacher ``teacher(z_t, t, tokens)``; tokens (B, L); w (B,)."""
    eps = text_cfg_model(teacher, tokens, w)(z_t, t)  # LCM Sec. 4.2: the augmented PF-ODE's guided eps
    return ddim_step_batched(schedule, eps.to(z_t.dtype), z_t, t, t_prev)


def pseudo_huber(diff: torch.Tensor, c: float = 0.001) -> torch.Tensor:
    """sqrt(diff^2 + c^2) - c elementwise (diffusers' LCM training script's "huber" loss, c = 0.001 there):
    |diff| for |diff| >> c, diff^2 / (2c) near 0, so the loss is L1-like yet smooth at the minimum."""
    return (diff.float().pow(2) + c ** 2).sqrt() - c


class LCMDistillationLoss:
    """Latent consistency distillation, LCM Alg. 1, called as ``loss(student, (z0, tokens))`` (the batches of
    ``latent.latent_batches``), so it trains in the course's loop (``training.train``).

    Per example: a grid step t_{n+k} and a guidance scale w ~ U[w_min, w_max]; z_{t_{n+k}} = add_noise(z0);
    the teacher's guided DDIM step to z_{t_n}; then d(f_theta(z_{t_{n+k}}, w, c, t_{n+k}),
    f_theta^-(z_{t_n}, w, c, t_n)) with d the elementwise pseudo-Huber distance (``huber_c``; None: squared
    L2), averaged over the batch and the latent's entries.

    The target theta^- is an EMA (decay ``mu``) of the student, separate from the training loop's own EMA
    (which is the model a chapter keeps). It is made from the student at the first call and updated,
    while the student is in training mode, at the start of each later call: the loop calls the loss once
    per optimizer step, so that is LCM Alg. 1's update after each step. A call on a student in eval mode
    (a measurement) leaves it alone. The caption dropout of chapter 6 is not used: LCM distils with captions.
    """

    def __init__(self, teacher: nn.Module, schedule: NoiseSchedule, *, original_inference_steps: int = 50,
                 w_min: float = 3.0, w_max: float = 15.0, mu: float = 0.95, huber_c: float | None = 0.001,
                 sigma_data: float = SIGMA_DATA, timestep_scaling: float = TIMESTEP_SCALING):
        if not 0.0 <= mu < 1.0 or not w_min <= w_max or (huber_c is not None and huber_c <= 0):
            raise ValueError(f"need mu in [0, 1), w_min <= w_max and huber_c None or > 0; "
                             f"got {mu}, {w_min}, {w_max}, {huber_c}")
        self.teacher = teacher.eval().requires_grad_(False)
        self.schedule, self.grid = schedule, lcm_grid(schedule.num_steps, original_inference_steps)
        self.k = schedule.num_steps // original_inference_steps  # LCM Sec. 4.3: the skipping interval
        self.w_min, self.w_max, self.mu, self.huber_c = w_min, w_max, mu, huber_c
        self.scalings = dict(sigma_data=sigma_data, timestep_scaling=timestep_scaling)
        self.target: EMA | None = None

    def f(self, model: Callable, z_t: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor, w: torch.Tensor):
        """The consistency function f(z_t, w, c, t) of an eps-model ``model(z_t, t, tokens, w)`` (LCM Eq. 9)."""
        return consistency_output(self.schedule, model(z_t, t, tokens, w).to(z_t.dtype), z_t, t, **self.scalings)

    def update_target(self, student: nn.Module) -> None:
        """theta^- <- mu theta^- + (1 - mu) theta (LCM Alg. 1), or a copy of the student the first time."""
        student = getattr(student, "_orig_mod", student)  # the module itself under torch.compile
        if self.target is None:
            self.target = EMA(student, self.mu)
        else:
            self.target.update(student)

    def __call__(self, student: nn.Module, batch, generator: torch.Generator | None = None) -> torch.Tensor:
        z0, tokens = batch  # (B, C, h, w), (B, L)
        if self.target is None or student.training:
            self.update_target(student)  # after the previous optimizer step
        B, dev = z0.shape[0], z0.device
        n = torch.randint(0, len(self.grid), (B,), generator=generator, device=dev)  # LCM Alg. 1: n ~ U[1, N-k]
        t = self.grid.to(dev)[n]  # t_{n+k}: 19, 39, ..., 999
        t_prev = t - self.k  # t_n; -1 is the data end
        u = torch.rand(B, generator=generator, device=dev)
        w = self.w_min + (self.w_max - self.w_min) * u  # w ~ U[w_min, w_max] (LCM Alg. 1)
        noise = torch.randn(z0.shape, generator=generator, device=dev, dtype=z0.dtype)
        z_t = add_noise(self.schedule, z0, t, noise)  # DDPM Eq. 4: z_{t_{n+k}} ~ q(z_{t_{n+k}} | z0)
        z_prev = guided_ddim_step(self.teacher, self.schedule, z_t, t, t_prev, tokens, w)  # hat z_{t_n}
        pred = self.f(student, z_t, t, tokens, w)  # f_theta(z_{t_{n+k}}, w, c, t_{n+k})
        with torch.no_grad():  # f at t_n = -1 is the identity; at step 0, c_skip = 1 and c_out = 0 give just that
            target = self.f(self.target.model, z_prev, t_prev.clamp(min=0), tokens, w)  # f_theta^-(hat z_{t_n}, ...)
        if self.huber_c is None:
            return (pred.float() - target.float()).pow(2).mean()  # d = squared L2 (diffusers' default "l2")
        return pseudo_huber(pred - target, self.huber_c).mean()  # LCM Alg. 1: d(f_theta, f_theta^-)

