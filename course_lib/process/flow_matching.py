"""Conditional flow matching: probability paths between data and noise, their velocities, and the loss.

Time convention (the course's, see process/schedules.py): continuous time s in [0, 1], s = 0 is data, s = 1 is
noise. A path x_s = mu_s(x0, eps) + sigma_s z runs from a data point x0 (s = 0) to a noise sample eps
(s = 1); its conditional velocity u_s = d x_s / ds points from data towards noise, and samplers
integrate dx/ds = v(x, s) from s = 1 down to s = 0 (samplers/flow.py). This is diffusers'
FlowMatchEulerDiscreteScheduler's and SD3's direction (their sigma is our s). torchcfm and the Flow
Matching paper run time the other way: their t = 1 - s, their x0 is our eps (noise) and their x1 our
x0 (data), so their u_t = -u_s.

The linear path's velocity also reads as a denoiser, a noise prediction and a score (``velocity_to_x0``,
``velocity_to_eps``, ``velocity_to_score``), and ``flow_model_as_eps`` runs a flow model in DDPM's samplers.

Models are called as ``model(x_s, time_scale * s)`` with time_scale = 1000 (TIME_SCALE): the course's
networks (MLP, U-Net, DiT) embed time with sinusoidal features made for step units 0..999, and
diffusers' flow-matching pipelines feed their transformers 1000 * sigma the same way.

Names -> symbols:
    x0        x_0       a data sample (s = 0)
    eps       epsilon   a standard Gaussian sample, the path's end at s = 1
    s         s         continuous time in [0, 1], (B,)
    mu_t      mu_s      the path's mean given (x0, eps)            (FM Eq. 10 conditions on one endpoint; CFM on both)
    sigma_t   sigma_s   extra Gaussian width around it (0 here by default), with z ~ N(0, I)
    x_s       x_s       a point on the path
    u_s       u_s       the conditional velocity d x_s / ds       (FM Eq. 15; eps - x0 on the linear path)
    v         v(x, s)   the model's velocity, trained to regress u_s  (the CFM loss, FM Eq. 9 / RF Eq. 1)

References: Lipman et al. 2023 (FM, arXiv 2210.02747); Liu et al. 2023 (RF, arXiv 2209.03003);
Tong et al. 2024 (torchcfm, I-CFM and OT-CFM, arXiv 2302.00482); Pooladian et al. 2023 (multisample FM).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from .diffusion import gather
from .schedules import NoiseSchedule

TIME_SCALE = 1000.0  # model(x_s, TIME_SCALE * s): the networks' time features are made for step units
Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def pad_like(s: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor | float:
    """(B,) times as (B, 1, ..., 1) to broadcast against x; a number stays a number."""
    if isinstance(s, (int, float)):
        return s
    return s.reshape(-1, *([1] * (x.ndim - 1)))


class ConditionalFlowMatcher:
    """The independent linear path: x_s = (1 - s) x0 + s eps (+ sigma z), u_s = eps - x0.

    With sigma = 0 (the default) this is rectified flow (RF Eq. 1), I-CFM of Tong et al. with x0 and
    eps drawn independently, and the path of diffusers' FlowMatchEuler and SD3. Subclasses change the
    path by overriding ``compute_mu_t``, ``compute_sigma_t`` and ``compute_conditional_flow`` (torchcfm's
    pattern), or the pairing of data and noise by overriding ``couple``.
    """

    def __init__(self, sigma: float = 0.0, time_scale: float = TIME_SCALE):
        self.sigma, self.time_scale = sigma, time_scale

    def compute_mu_t(self, x0: torch.Tensor, eps: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        s = pad_like(s, x0)
        return (1 - s) * x0 + s * eps  # RF Eq. 1: X_t = t X_1 + (1 - t) X_0 with t = 1 - s

    def compute_sigma_t(self, s: torch.Tensor) -> torch.Tensor | float:
        return self.sigma  # I-CFM (Tong et al. Eq. 14): a constant width

    def compute_conditional_flow(self, x0: torch.Tensor, eps: torch.Tensor, s: torch.Tensor,
                                 x_s: torch.Tensor) -> torch.Tensor:
        return eps - x0  # d mu_s / ds: Tong et al. Eq. 15 and RF Eq. 1's X_1 - X_0, with the sign of our time

    def couple(self, x0: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pair data and noise within the batch: independently here, so as given."""
        return x0, eps

    def sample_xt(self, x0: torch.Tensor, eps: torch.Tensor, s: torch.Tensor,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """x_s = mu_s + sigma_s z, z ~ N(0, I) drawn from ``generator`` (only if sigma_s is not 0)."""
        mu, sigma = self.compute_mu_t(x0, eps, s), self.compute_sigma_t(s)
        if isinstance(sigma, (int, float)) and sigma == 0:
            return mu
        z = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return mu + pad_like(sigma, x0) * z

    def sample_location_and_conditional_flow(self, x0: torch.Tensor, eps: torch.Tensor,
                                             s: torch.Tensor | None = None,
                                             generator: torch.Generator | None = None):
        """(s, x_s, u_s) for data x0 and noise eps, both (B, ...), after ``couple`` pairs them.

        s: (B,) times in [0, 1]; drawn uniformly from ``generator`` if None (in x0's dtype and device).
        Returns s (B,), x_s and u_s of x0's shape. The data keep their order (labels stay aligned).
        """
        if eps.shape != x0.shape:
            raise ValueError(f"eps must have x0's shape {tuple(x0.shape)}, got {tuple(eps.shape)}")
        x0, eps = self.couple(x0, eps)
        if s is None:
            s = torch.rand(x0.shape[0], generator=generator, device=x0.device, dtype=x0.dtype)
        if s.shape != (x0.shape[0],):
            raise ValueError(f"s must have shape ({x0.shape[0]},), got {tuple(s.shape)}")
        x_s = self.sample_xt(x0, eps, s, generator)
        return s, x_s, self.compute_conditional_flow(x0, eps, s, x_s)

    def loss(self, model: Model, x0: torch.Tensor, eps: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """|| v(x_s, s) - u_s ||^2 averaged over the batch and dimensions, for given x0 and eps."""
        s, x_s, u_s = self.sample_location_and_conditional_flow(x0, eps, generator=generator)
        return F.mse_loss(model(x_s, self.time_scale * s).float(), u_s.float())  # FM Eq. 9; RF Eq. 1

    def __call__(self, model: Model, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The CFM loss on a batch of data x0 (B, ...), with fresh noise eps ~ N(0, I) from ``generator``."""
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return self.loss(model, x0, eps, generator)


def exact_ot_permutation(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The permutation p (B,) that minimises sum_i ||x0_i - eps_{p_i}||^2: the exact optimal transport plan
    between two uniform batches of equal size is a permutation (Birkhoff), found here by the assignment
    solver of scipy. torchcfm solves the same problem with POT's ot.emd on the same squared-distance cost."""
    cost = torch.cdist(x0.detach().flatten(1).double(), eps.detach().flatten(1).double()) ** 2  # (B, B)
    rows, cols = linear_sum_assignment(cost.cpu().numpy())  # rows = 0..B-1 in order
    return torch.as_tensor(cols, dtype=torch.long, device=x0.device)


class ExactOptimalTransportConditionalFlowMatcher(ConditionalFlowMatcher):
    """OT-CFM (Tong et al. 2024, Alg. 2; Pooladian et al. 2023): the linear path, with the batch's noise
    re-paired to its data by the exact minibatch optimal transport assignment. The paths cross less, so
    the learned flow is straighter. torchcfm then draws B pairs from the plan with replacement; we keep
    the B pairs of the plan itself (the same coupling, without duplicates)."""

    def couple(self, x0: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x0, eps[exact_ot_permutation(x0, eps)]


class VariancePreservingConditionalFlowMatcher(ConditionalFlowMatcher):
    """The trigonometric path x_s = cos(pi s / 2) x0 + sin(pi s / 2) eps (torchcfm's VP-CFM; Albergo &
    Vanden-Eijnden's trigonometric interpolant): variance preserving, alpha_bar(s) = cos^2(pi s / 2), the
    cosine schedule of Improved DDPM without its offset (FM Sec. 4.1 writes DDPM's VP path this way)."""

    def compute_mu_t(self, x0: torch.Tensor, eps: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        s = pad_like(s, x0)
        return torch.cos(math.pi / 2 * s) * x0 + torch.sin(math.pi / 2 * s) * eps

    def compute_conditional_flow(self, x0: torch.Tensor, eps: torch.Tensor, s: torch.Tensor,
                                 x_s: torch.Tensor) -> torch.Tensor:
        s = pad_like(s, x0)
        return math.pi / 2 * (torch.cos(math.pi / 2 * s) * eps - torch.sin(math.pi / 2 * s) * x0)  # d mu_s / ds


class TargetConditionalFlowMatcher(ConditionalFlowMatcher):
    """Lipman et al.'s OT path (FM Eqs. 20-23): x_s = (1 - s) x0 + (sigma_min + (1 - sigma_min) s) eps,
    u_s = (1 - sigma_min) eps - x0; ``sigma`` is sigma_min, the width left around each data point at s = 0.
    With sigma = 0 it is the linear path above (torchcfm's TargetConditionalFlowMatcher)."""

    def compute_mu_t(self, x0: torch.Tensor, eps: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        s = pad_like(s, x0)
        return (1 - s) * x0 + (self.sigma + (1 - self.sigma) * s) * eps  # FM Eq. 20 with t = 1 - s

    def compute_sigma_t(self, s: torch.Tensor) -> float:
        return 0.0  # the Gaussian width is carried by eps in mu_s above

    def compute_conditional_flow(self, x0: torch.Tensor, eps: torch.Tensor, s: torch.Tensor,
                                 x_s: torch.Tensor) -> torch.Tensor:
        return (1 - self.sigma) * eps - x0  # FM Eq. 23's target, with the sign of our time


class PairedFlowMatchingLoss:
    """The flow matching loss on given couplings (x0, eps), the batch a pair of (B, ...) tensors, as the
    shared training loop calls it: ``loss(model, (x0, eps))``. Reflow (RF Sec. 2.2, Alg. 1) trains the
    next rectified flow on the pairs (sample, noise) that the previous flow's ODE produced."""

    def __init__(self, matcher: ConditionalFlowMatcher | None = None):
        self.matcher = matcher or ConditionalFlowMatcher()

    def __call__(self, model: Model, batch: tuple[torch.Tensor, torch.Tensor],
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x0, eps = batch
        return self.matcher.loss(model, x0, eps, generator)


# ---- reading a velocity on the linear path as a denoiser, a noise prediction and a score -----------

def velocity_to_x0(v: torch.Tensor, x_s: torch.Tensor, s: torch.Tensor | float) -> torch.Tensor:
    """x0_hat = x_s - s v on the linear path (x_s = (1-s) x0 + s eps, v = eps - x0); s (B,) or a number."""
    return x_s - pad_like(s, x_s) * v


def velocity_to_eps(v: torch.Tensor, x_s: torch.Tensor, s: torch.Tensor | float) -> torch.Tensor:
    """eps_hat = x_s + (1 - s) v on the linear path."""
    return x_s + (1 - pad_like(s, x_s)) * v


def velocity_to_score(v: torch.Tensor, x_s: torch.Tensor, s: torch.Tensor | float) -> torch.Tensor:
    """grad log p_s(x_s) = -eps_hat / s on the linear path (Tweedie: x_s | x0 ~ N((1-s) x0, s^2 I)); s > 0."""
    return -velocity_to_eps(v, x_s, s) / pad_like(s, x_s)


def eps_to_velocity(eps: torch.Tensor, x_s: torch.Tensor, s: torch.Tensor | float) -> torch.Tensor:
    """v = (eps_hat - x_s) / (1 - s): a noise prediction read as a velocity on the linear path (s < 1)."""
    return (eps - x_s) / (1 - pad_like(s, x_s))


def flow_time_of_alpha_bar(alpha_bar: torch.Tensor | float) -> torch.Tensor | float:
    """The linear-path time s whose x_s is DDPM's x_t rescaled: x_t / (sqrt(a) + sqrt(1 - a)) = x_s with
    s = sqrt(1 - a) / (sqrt(a) + sqrt(1 - a)), a = alpha_bar_t (both paths hold x0 and eps in the same ratio)."""
    a, b = alpha_bar ** 0.5, (1 - alpha_bar) ** 0.5
    return b / (a + b)


def flow_model_as_eps(model: Model, schedule: NoiseSchedule, time_scale: float = TIME_SCALE) -> Model:
    """A linear-path velocity model read as DDPM's noise predictor eps(x_t, t) on ``schedule`` (t integer steps),
    so that chapter 3-4's samplers run it: x_t is rescaled onto the path, x_s = x_t / (sqrt(a) + sqrt(1 - a)) at
    s = flow_time_of_alpha_bar(a), a = alpha_bar_t, and eps_hat = x_s + (1 - s) v (the same eps in both)."""
    def eps_model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = gather(schedule.alpha_bar, t, x_t)  # (B, 1, ..., 1)
        scale = a.sqrt() + (1 - a).sqrt()
        s, x_s = (1 - a).sqrt() / scale, x_t / scale
        v = model(x_s, time_scale * s.reshape(-1))  # (B, ...)
        return velocity_to_eps(v.to(x_t.dtype), x_s, s)

    return eps_model
