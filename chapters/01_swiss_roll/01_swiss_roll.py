# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
# ---

# %% [markdown]
# # 1. Diffusion on a swiss roll
#
# A diffusion model learns to undo noise. We first destroy data step by step with Gaussian noise
# (the *forward process*), then train a network to predict that noise, and finally run the
# destruction backwards, from pure noise to data (the *reverse process*). Everything in this
# chapter happens in two dimensions, so we can *see* every step: the data, the noised data at
# any step, the learned denoiser as a vector field, and the samples as they form.
#
# **What you will build:** the forward process in closed form, the DDPM training loss, the
# ancestral sampler, the score view with annealed Langevin sampling, a measured comparison
# of two noise schedules, and EDM's preconditioned denoiser with its few-step Heun sampler,
# each derived here in a few lines and then checked equal to the
# version in `course_lib` that later chapters import. The math follows
# {cite}`ho2020ddpm` (DDPM), with ideas from {cite}`sohldickstein2015deep`, {cite}`song2019generative`
# and {cite}`nichol2021improved`.
#
# **Time:** about 2 minutes on a 2-core CPU in the `smoke` profile and about 15 minutes in
# `laptop` (the run on this page); a few minutes on a GPU in `colab` or `full`. **Outputs on this page** were produced by executing it in the profile and on
# the hardware that the set-up cell below prints.

# %%
import os
import sys

if "google.colab" in sys.modules:  # on Colab: install this course release
    URL = "git+https://github.com/diffusion-from-scratch/course@main"
    # %pip install -q "course-lib[colab] @ {URL}"
    # keep checkpoints and data across sessions on your Google Drive:
    # from google.colab import drive
    # drive.mount("/content/drive")
    # os.environ["COURSE_CACHE"] = "/content/drive/MyDrive/course_lib"
    import torch

    GPU = torch.cuda.is_available()  # Runtime > Change runtime type > T4 GPU
    os.environ.setdefault("COURSE_PROFILE", "colab" if GPU else "laptop")
    if not GPU:
        print("No GPU in this runtime: running the laptop profile (CPU, "
              "slower). For the colab profile pick Runtime > Change "
              "runtime type > T4 GPU, then run this cell again.")

# %%
import time

import matplotlib.pyplot as plt
import torch

import course_lib
from course_lib.data import random_batches, swiss_roll
from course_lib.process.diffusion import EpsilonLoss, add_noise, eps_to_score
from course_lib.evaluation.metrics import sliced_wasserstein
from course_lib.models import MLPConfig, MLPDenoiser
from course_lib.book.plotting import (animate, figure_png, frame_slider,
                                      scatter2d, small_multiples)
from course_lib.book.results import report
from course_lib.samplers.ddpm import (annealed_langevin_sample, ddpm_sample,
                                      ddpm_step)
from course_lib.process.edm import EDMDenoiser, EDMLoss, karras_sigmas
from course_lib.process.schedules import make_schedule
from course_lib.samplers.edm import edm_heun_sample
from course_lib.training.loop import TrainConfig, train

profile = course_lib.get_profile()
device = course_lib.default_device()
# every size this chapter uses, per profile:
# only sizes change, never the code path
P = profile.choose(
    smoke=dict(hidden=64, blocks=3, steps=3000, batch=256,
               train_points=20_000),
    laptop=dict(hidden=128, blocks=4, steps=10_000, batch=512,
                train_points=100_000),
    colab=dict(hidden=128, blocks=4, steps=20_000, batch=1024,
               train_points=100_000),
    full=dict(hidden=128, blocks=4, steps=20_000, batch=1024,
              train_points=100_000),
)
course_lib.show_setup("1 · Diffusion on a swiss roll", {
    "denoiser": f"MLP, {P['blocks']} residual blocks of width "
                f"{P['hidden']}, fp32",
    "training": f"{P['steps']} steps of batch {P['batch']}, three times "
                "(linear and cosine schedule, EDM's loss)",
    "evaluation": "2,000 samples against 2,000 fresh data points "
                  "(sliced Wasserstein)",
}, profile, device)

# %% [markdown]
# ## The data
#
# Our data distribution $q(x_0)$ is the swiss roll: points on a spiral with a little noise,
# scaled so each coordinate has a standard deviation near one. We can draw as many fresh points
# as we like, which will let us measure later how close our samples are to the real thing.

# %%
g = course_lib.seed_everything(0)
data = swiss_roll(P["train_points"], generator=g).to(device)
fig, ax = plt.subplots(figsize=(4, 4))
scatter2d(ax, data[:3000], title="3,000 points of the swiss roll $q(x_0)$")
plt.show()

# %% [markdown]
# ## The forward process
#
# DDPM destroys a data point $x_0$ in $T$ small steps. Step $t$ shrinks the point a little and
# adds Gaussian noise of variance $\beta_t$:
#
# $$ q(x_t \mid x_{t-1}) = \mathcal{N}\!\left(x_t;\ \sqrt{1-\beta_t}\, x_{t-1},\ \beta_t I\right). \qquad \text{(DDPM Eq. 2)} $$
#
# The shrinking by $\sqrt{1-\beta_t}$ keeps the variance of unit-variance data at one, so after
# many steps $x_T$ is a standard Gaussian. DDPM uses $T = 1000$ and $\beta_t$ rising linearly
# from $10^{-4}$ to $0.02$.
#
# **Time convention.** In the math, steps run $t = 1, \dots, T$ and $x_0$ is the data, as in the
# papers. In code, arrays are indexed from 0: the integer step `t` in `0..T-1` stands for the
# math's step $t+1$, so `alpha_bar[0]` is $\bar\alpha_1$ and `t = T-1` is the noisiest step.
# This is diffusers' convention too; the {doc}`notation page </book/notation>` has the full table.

# %%
T = 1000
# DDPM Sec. 4: linear, float64
betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
schedule = make_schedule("linear", T)
torch.testing.assert_close(betas, schedule.betas)
print(f"beta_1 = {betas[0]:.4g}, beta_T = {betas[-1]:.4g}; "
      "code index 0 holds step 1")

# %% [markdown]
# Running the chain step by step is slow. Because every step is Gaussian and linear in the
# previous one, the composition is Gaussian too, with a closed form. Write
# $\alpha_t = 1 - \beta_t$ and $\bar\alpha_t = \prod_{s=1}^{t} \alpha_s$. Then
#
# $$ q(x_t \mid x_0) = \mathcal{N}\!\left(x_t;\ \sqrt{\bar\alpha_t}\, x_0,\ (1-\bar\alpha_t) I\right),
# \quad\text{i.e.}\quad x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1-\bar\alpha_t}\, \epsilon,\ \ \epsilon \sim \mathcal{N}(0, I). \qquad \text{(DDPM Eq. 4)} $$
#
# *Why:* if $x_{t-1} = \sqrt{\bar\alpha_{t-1}} x_0 + \sqrt{1-\bar\alpha_{t-1}}\,\epsilon'$, then
# $x_t = \sqrt{\alpha_t}\sqrt{\bar\alpha_{t-1}} x_0 + \big(\sqrt{\alpha_t(1-\bar\alpha_{t-1})}\,\epsilon' + \sqrt{\beta_t}\,\epsilon''\big)$,
# and the two independent noises add up to variance $\alpha_t - \bar\alpha_t + 1 - \alpha_t = 1 - \bar\alpha_t$.
# Let us check that claim numerically: run the chain for 300 steps on many points and compare
# the result's statistics with the closed form.

# %%
# DDPM Eq. 4: alpha_bar_t = prod_s (1 - beta_s)
alpha_bar = torch.cumprod(1 - betas, dim=0)
torch.testing.assert_close(alpha_bar, schedule.alpha_bar)

x0 = swiss_roll(20_000, generator=torch.Generator().manual_seed(1),
                dtype=torch.float64)
x = x0.clone()
chain = torch.Generator().manual_seed(2)
for t in range(300):  # code steps 0..299 = math steps 1..300
    x = (1 - betas[t]).sqrt() * x + betas[t].sqrt() * torch.randn(
        x.shape, generator=chain, dtype=torch.float64)
closed = add_noise(schedule, x0, 299, torch.randn(x0.shape, generator=chain,
                                                  dtype=torch.float64))
print(f"after 300 steps, mean of x_t/x0 ratio: "
      f"chain {(x * x0).mean() / (x0 * x0).mean():.3f}, "
      f"closed form {(closed * x0).mean() / (x0 * x0).mean():.3f}, "
      f"sqrt(alpha_bar) {alpha_bar[299].sqrt():.3f}")
torch.testing.assert_close(x.var(0), closed.var(0), rtol=0.03, atol=0.0)

# %% [markdown]
# ```{exercise} The forward process in one line
# :label: ex-q-sample
#
# Write `q_sample(x0, t, noise, alpha_bar)` that returns $x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$
# for a batch: `x0` and `noise` have shape `(B, D)`, `t` is a `(B,)` tensor of integer steps
# (code convention, `0..T-1`), and `alpha_bar` has shape `(T,)`. Each row uses its own step.
# The cell after the solution checks your function against `course_lib` on random inputs.
# ```
#
# ```{solution-start} ex-q-sample
# :class: dropdown
# ```

# %% tags=["solution"]
def q_sample(x0, t, noise, alpha_bar):
    # (B,) -> (B, 1), broadcasts over the D coordinates
    a = alpha_bar[t][:, None]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch01 import check_q_sample

check_q_sample(q_sample)

# %% [markdown]
# Here is the forward process on the swiss roll. The spiral is clear for the first fifty or so
# steps, faint at step 100 and gone by step 200; from there on the linear schedule spends
# hundreds of steps turning one blob of noise into another, and at $t = T$ the points are
# indistinguishable from a standard Gaussian.

# %%
show_steps = [0, 50, 100, 200, 400, 600, 999]
noise = torch.randn(3000, 2, generator=torch.Generator().manual_seed(3))
clouds = [add_noise(schedule, data[:3000].cpu(), t, noise) for t in show_steps]
small_multiples(clouds, [f"$x_{{{t + 1}}}$" for t in show_steps],
                suptitle="Forward process, linear schedule")
plt.show()

# %% [markdown]
# Drag the slider (or press play) to move through the steps. In Jupyter and Colab this is a
# live widget; in the book it runs from the frames stored with the page.

# %%
slider_steps = list(range(0, 1000, 50)) + [999]
frames = []
for t in slider_steps:
    fig, ax = plt.subplots(figsize=(3.6, 3.6))
    scatter2d(ax, add_noise(schedule, data[:3000].cpu(), t, noise),
              title=f"$x_t$ at t = {t + 1}")
    frames.append(figure_png(fig, dpi=70))
frame_slider(frames,
             [f"t = {t + 1}: alpha_bar = {alpha_bar[t]:.3f}"
              for t in slider_steps],
             description="step t")

# %% [markdown]
# ## Noise schedules: linear and cosine
#
# The schedule decides how fast the signal fraction $\bar\alpha_t$ falls. With the linear
# schedule it collapses early: by the middle of the chain almost nothing is left, so many steps
# are spent on near-pure noise. Improved DDPM's cosine schedule {cite}`nichol2021improved`
# defines $\bar\alpha_t$ directly,
#
# $$ \bar\alpha_t = \frac{f(t)}{f(0)},\quad f(t) = \cos^2\!\left(\frac{t/T + s}{1 + s}\cdot\frac{\pi}{2}\right),\ s = 0.008,
# \qquad \beta_t = \min\!\left(1 - \frac{\bar\alpha_t}{\bar\alpha_{t-1}},\ 0.999\right) \qquad \text{(iDDPM Eq. 17)} $$
#
# so that it falls slowly at both ends. The plot shows $\bar\alpha_t$ and the signal-to-noise
# ratio $\bar\alpha_t / (1 - \bar\alpha_t)$ for both.

# %%
import math

f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2
cos_betas = torch.tensor(
    [min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)],
    dtype=torch.float64)
cosine = make_schedule("cosine", T)
# iDDPM Eq. 17, as course_lib computes it
torch.testing.assert_close(cos_betas, cosine.betas)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for name, sch in [("linear", schedule), ("cosine", cosine)]:
    axes[0].plot(range(1, T + 1), sch.alpha_bar, label=name)
    axes[1].semilogy(range(1, T + 1), sch.alpha_bar / (1 - sch.alpha_bar),
                     label=name)
axes[0].set(title=r"signal fraction $\bar\alpha_t$", xlabel="step $t$")
axes[1].set(title=r"SNR $\bar\alpha_t / (1-\bar\alpha_t)$", xlabel="step $t$")
for ax in axes:
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The reverse process
#
# To generate, we run the chain backwards: start from $x_T \sim \mathcal{N}(0, I)$ and sample
# $x_{t-1}$ given $x_t$. The true reverse step $q(x_{t-1} \mid x_t)$ depends on the whole data
# distribution, but conditioned on $x_0$ it is a Gaussian we can write down (Bayes' rule on two
# Gaussians):
#
# $$ q(x_{t-1} \mid x_t, x_0) = \mathcal{N}\!\left(x_{t-1};\ \tilde\mu_t(x_t, x_0),\ \tilde\beta_t I\right),\quad
# \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\, x_0 + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\, x_t,\quad
# \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t. \qquad \text{(DDPM Eqs. 6-7)} $$
#
# We do not know $x_0$ when sampling, so a network predicts it. DDPM lets the network
# $\epsilon_\theta(x_t, t)$ predict the *noise* instead, and reads off $x_0$ by inverting Eq. 4:
#
# $$ \hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t)}{\sqrt{\bar\alpha_t}}. \qquad \text{(DDPM Eq. 15)} $$
#
# Plugging $\hat x_0$ into $\tilde\mu_t$ and adding noise of variance $\sigma_t^2$ gives the
# ancestral step. DDPM tried $\sigma_t^2 = \tilde\beta_t$ and $\sigma_t^2 = \beta_t$ and found
# both work; we use $\tilde\beta_t$ (the "small" variance).

# %% [markdown]
# ```{exercise} The posterior mean
# :label: ex-posterior-mean
#
# Write `posterior_mean(x0, x_t, t, alpha_bar)` returning $\tilde\mu_t(x_t, x_0)$ of Eq. 7 for a
# batch (`x0`, `x_t` of shape `(B, D)`, `t` of shape `(B,)` in code convention). Derive
# $\beta_t$ from `alpha_bar` as $1 - \bar\alpha_t / \bar\alpha_{t-1}$, and mind the first step,
# where $\bar\alpha_{t-1} = \bar\alpha_0 = 1$ (code step `t = 0` has no entry before it).
# ```
#
# ```{solution-start} ex-posterior-mean
# :class: dropdown
# ```

# %% tags=["solution"]
def posterior_mean(x0, x_t, t, alpha_bar):
    a_bar = alpha_bar[t][:, None]
    a_bar_prev = torch.where(t > 0, alpha_bar[(t - 1).clamp(min=0)],
                             torch.ones_like(alpha_bar[t]))[:, None]
    beta = 1 - a_bar / a_bar_prev
    return (a_bar_prev.sqrt() * beta * x0
            + (1 - beta).sqrt() * (1 - a_bar_prev) * x_t) / (1 - a_bar)


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch01 import check_posterior_mean

check_posterior_mean(posterior_mean)

# %% [markdown]
# With the posterior mean in hand, one ancestral step is three lines. It must agree with
# `course_lib.samplers.ddpm.ddpm_step`, which later chapters use:

# %%
x_t, eps, z = torch.randn(3, 8, 2, generator=torch.Generator().manual_seed(4),
                          dtype=torch.float64)
t = 500
tt = torch.full((8,), t)
# DDPM Eq. 15
x0_hat = (x_t - (1 - alpha_bar[t]).sqrt() * eps) / alpha_bar[t].sqrt()
# beta_tilde, DDPM Eq. 7
var = (1 - alpha_bar[t - 1]) / (1 - alpha_bar[t]) * betas[t]
# DDPM Algorithm 2, line 4
x_prev = posterior_mean(x0_hat, x_t, tt, alpha_bar) + var.sqrt() * z
torch.testing.assert_close(x_prev, ddpm_step(schedule, eps, t, x_t, z))
print("✓ our ancestral step equals course_lib.samplers.ddpm.ddpm_step")

# %% [markdown]
# ## Training: predict the noise
#
# DDPM's variational bound reduces, up to weights that the paper drops, to a regression: noise a
# data point to a random step and ask the network for the noise,
#
# $$ L_\text{simple} = \mathbb{E}_{t \sim \mathcal{U}\{1..T\},\ x_0 \sim q,\ \epsilon \sim \mathcal{N}(0, I)}
# \left\| \epsilon - \epsilon_\theta\!\left(\sqrt{\bar\alpha_t} x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t\right) \right\|^2. \qquad \text{(DDPM Eq. 14)} $$
#
# Our $\epsilon_\theta$ is a small residual MLP that is told the step through sinusoidal
# features (the same embedding transformers use for positions). Below we write the loss inline
# and check it equals `course_lib`'s `EpsilonLoss` under the same random draws.

# %%
torch.manual_seed(0)
model = MLPDenoiser(MLPConfig(hidden=P["hidden"],
                              num_blocks=P["blocks"])).to(device)
batch = data[:256]

def simple_loss(model, x0, generator):
    t = torch.randint(0, T, (x0.shape[0],), device=x0.device,
                      generator=generator)
    noise = torch.randn(x0.shape, device=x0.device, generator=generator)
    return ((model(q_sample(x0, t, noise, schedule.alpha_bar.to(x0)), t)
             - noise) ** 2).mean()  # DDPM Eq. 14

gen = lambda: torch.Generator(device).manual_seed(5)
torch.testing.assert_close(simple_loss(model, batch, gen()),
                           EpsilonLoss(schedule)(model, batch,
                                                 generator=gen()))
print(f"✓ inline loss equals EpsilonLoss; the untrained model's loss is "
      f"{EpsilonLoss(schedule)(model, batch).item():.2f} "
      f"(≈ 1: it predicts noise of unit variance poorly)")

# %% [markdown]
# Now we train with the course's training loop (`course_lib.training.loop.train`): AdamW, a short
# learning-rate warm-up, gradient clipping, and an exponential moving average (EMA) of the
# weights, which we sample from. On a GPU it also switches on mixed precision. Expected time:
# about 20 seconds on a 2-core CPU in `smoke`.

# %%
config = TrainConfig(steps=P["steps"], lr=2e-3, warmup_steps=100,
                     ema_decay=0.995, log_every=250)
result = train(model, EpsilonLoss(schedule),
               random_batches(data, P["batch"],
                              torch.Generator(device).manual_seed(6)),
               config)
steps, losses = zip(*result.history)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(steps, losses)
ax.set(title="training loss (mean over each 250 steps)", xlabel="step",
       ylabel="$L_\\mathrm{simple}$")
plt.show()
print(f"trained {result.steps_run} steps in {result.seconds:.1f} s "
      f"on {device}; final loss {losses[-1]:.3f}")

# %% [markdown]
# ## Sampling
#
# DDPM's sampler (Algorithm 2) is a plain loop: predict the noise, take the ancestral step,
# repeat from $t = T$ down to $1$. Written out for a few points it must give exactly what
# `course_lib.samplers.ddpm.ddpm_sample` gives with the same random numbers:

# %%
@torch.no_grad()
def sample_inline(model, x, generator):
    for t in reversed(range(T)):  # code steps T-1 .. 0 = math steps T .. 1
        eps = model(x, torch.full((x.shape[0],), t, device=x.device))
        z = torch.randn(x.shape, generator=generator, device=x.device)
        # DDPM Algorithm 2, lines 3-4 (no noise at the last step)
        x = ddpm_step(schedule, eps, t, x, z)
    return x

x_T = torch.randn(64, 2, device=device, generator=gen())
torch.testing.assert_close(sample_inline(result.ema, x_T, gen()),
                           ddpm_sample(result.ema, schedule, x_T,
                                       generator=gen()))
print("✓ the inline loop equals course_lib.samplers.ddpm.ddpm_sample")

# %% [markdown]
# Now 2,000 samples, keeping every 25th state so we can watch the roll form out of noise.
# The animation has its own controls: play, step, and a scrubber.

# %%
t0 = time.perf_counter()
samples, trajectory = ddpm_sample(
    result.ema, schedule, torch.randn(2000, 2, device=device, generator=gen()),
    generator=gen(), keep_every=25)
sample_seconds = time.perf_counter() - t0
labels = ["$x_T$ (noise)"] + [f"after step t = {t + 1}"
                              for t in range(975, -1, -25)]
animate(lambda ax, i: scatter2d(ax, trajectory[i], title=labels[i]),
        num_frames=len(trajectory),
        title="DDPM sampling: noise to swiss roll")

# %% [markdown]
# ## How good are the samples?
#
# Pictures can fool us, so we measure. The *sliced Wasserstein distance* (SW) {cite}`bonneel2015sliced` projects both
# point clouds onto many random directions and compares the sorted projections. Even two
# independent samples of the true distribution are not at distance zero: with 2,000 points each,
# sampling noise alone gives a *floor*. A perfect model would sit at that floor; we average both
# over five fresh draws of the data.

# %%
def sw_to_data(x, repeats=5, seed=100):
    g = torch.Generator().manual_seed(seed)
    return sum(sliced_wasserstein(x, swiss_roll(len(x), generator=g),
                                  generator=g)
               for _ in range(repeats)).item() / repeats

floor = sw_to_data(swiss_roll(2000,
                              generator=torch.Generator().manual_seed(7)))
ddpm_sw = sw_to_data(samples)
print(f"floor (true vs true):     SW = {floor:.4f}")
print(f"DDPM samples vs true:     SW = {ddpm_sw:.4f}  = "
      f"{ddpm_sw / floor:.2f} x floor")
print(f"training took {result.seconds:.1f} s, sampling 2,000 points with "
      f"1,000 steps {sample_seconds:.1f} s ({profile.name} profile, "
      f"{device})")
assert ddpm_sw < 2 * floor, (
    "the trained model should reach within 2x of the statistical floor")

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
scatter2d(axes[0],
          swiss_roll(2000, generator=torch.Generator().manual_seed(8)),
          title="true data")
scatter2d(axes[1], samples,
          title=f"DDPM samples (SW = {ddpm_sw / floor:.2f} x floor)",
          color="C1")
plt.show()

# %% [markdown]
# Within 2x of the floor, as promised, yet look closely: the samples are blurrier than the data
# along the tight inner turn, and a few stray between the arms. The sliced distance compares
# one-dimensional projections, in which a slight blur costs little, so it is a lenient judge.
# A bigger network trained longer does not close the gap by itself (the `laptop` profile's
# network is twice as wide, with four times the training, and lands no closer to the floor
# than `smoke`'s); the section on EDM at the end of this chapter shows that the same network,
# parametrised and sampled differently, gets much closer. We will meet this again with images,
# where FID plays the role of our SW.
#
# ## The score view
#
# There is a second way to read the trained network. The *score* of a distribution is the
# gradient of its log-density, $\nabla_x \log p(x)$: an arrow at every point, pointing towards
# where the data is denser. For $q(x_t \mid x_0)$ of Eq. 4 it is
# $-(x_t - \sqrt{\bar\alpha_t} x_0)/(1-\bar\alpha_t) = -\epsilon / \sqrt{1-\bar\alpha_t}$, and
# averaging over $x_0$ (Tweedie's formula) gives the score of the noised data distribution from
# the noise prediction:
#
# $$ \nabla_{x_t} \log q_t(x_t) \approx s_\theta(x_t, t) = -\frac{\epsilon_\theta(x_t, t)}{\sqrt{1-\bar\alpha_t}}. $$
#
# This is the bridge to score-based models {cite}`song2019generative,song2021scorebased`.

# %% [markdown]
# ```{exercise} From noise to score
# :label: ex-score
#
# Write `score_from_eps(eps, t, alpha_bar)` returning $-\epsilon / \sqrt{1-\bar\alpha_t}$ for a
# batch (`eps` of shape `(B, D)`, `t` of shape `(B,)`).
# ```
#
# ```{solution-start} ex-score
# :class: dropdown
# ```

# %% tags=["solution"]
def score_from_eps(eps, t, alpha_bar):
    return -eps / (1 - alpha_bar[t][:, None]).sqrt()


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch01 import check_score_from_eps

check_score_from_eps(score_from_eps)

# %% [markdown]
# The learned score field at three noise levels. At high noise it points everywhere towards the
# centre of mass; at low noise it points onto the spiral's arms.

# %%
grid = torch.stack(torch.meshgrid(torch.linspace(-2.4, 2.4, 25),
                                  torch.linspace(-2.4, 2.4, 25),
                                  indexing="xy"), -1).reshape(-1, 2).to(device)
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, t in zip(axes, [600, 150, 20]):
    tt = torch.full((len(grid),), t, device=device)
    with torch.no_grad():
        score = eps_to_score(schedule, result.ema(grid, tt), tt)
    torch.testing.assert_close(
        score, score_from_eps(result.ema(grid, tt).detach(), tt,
                              schedule.alpha_bar.to(grid)))
    arrows = (score / score.norm(dim=1, keepdim=True).clamp(min=1e-6)).cpu()
    scatter2d(ax, data[:1500], color="0.7")
    ax.quiver(grid[:, 0].cpu(), grid[:, 1].cpu(), arrows[:, 0], arrows[:, 1],
              score.norm(dim=1).log().cpu(), cmap="viridis", scale=30)
    ax.set_title(f"t = {t + 1}")
fig.suptitle("direction of the learned score (colour: log of its length) "
             "over the data (grey)")
plt.tight_layout()
plt.show()

# %% [markdown]
# If we know the score, we do not need DDPM's reverse chain at all: *Langevin dynamics*
# $x \leftarrow x + \tfrac{a}{2}\nabla_x \log p(x) + \sqrt{a}\,z$ samples from $p$ for small steps
# $a$. Annealed Langevin sampling {cite}`song2019generative` runs it at a sequence of decreasing
# noise levels, with a step size proportional to each level's noise variance $1-\bar\alpha_t$.
# Same network, different sampler:

# %%
t0 = time.perf_counter()
langevin = annealed_langevin_sample(
    result.ema, schedule, torch.randn(2000, 2, device=device, generator=gen()),
    levels=list(range(999, -1, -10)), steps_per_level=10, step_scale=0.1,
    generator=gen())
langevin_sw = sw_to_data(langevin)
print(f"annealed Langevin (100 levels x 10 steps): SW = {langevin_sw:.4f} = "
      f"{langevin_sw / floor:.2f} x floor, "
      f"{time.perf_counter() - t0:.1f} s")
fig, ax = plt.subplots(figsize=(4, 4))
scatter2d(ax, langevin, title="annealed Langevin samples", color="C2")
plt.show()

# %% [markdown]
# ## Does the schedule matter?
#
# Let us train the same network with the cosine schedule, with the same budget, and sample it.
# One detail bites here: the cosine schedule's last step has $\beta_T = 0.999$ (the clip in
# Eq. 17), so $\bar\alpha_T \approx 2\cdot 10^{-9}$ and Eq. 15 divides by
# $\sqrt{\bar\alpha_T} \approx 5\cdot 10^{-5}$. Any error in $\epsilon_\theta$ at that step is
# blown up, and the chain never recovers. Image models avoid this by clipping $\hat x_0$ to the
# data range $[-1, 1]$; we do the same with the swiss roll's range, and show both.

# %%
torch.manual_seed(0)
model_cos = MLPDenoiser(MLPConfig(hidden=P["hidden"],
                                  num_blocks=P["blocks"])).to(device)
result_cos = train(model_cos, EpsilonLoss(cosine),
                   random_batches(data, P["batch"],
                                  torch.Generator(device).manual_seed(6)),
                   config)
x_T = torch.randn(2000, 2, device=device, generator=gen())
cos_raw = ddpm_sample(result_cos.ema, cosine, x_T, generator=gen())
# the data lie in [-2.5, 2.5]^2
cos_clip = ddpm_sample(result_cos.ema, cosine, x_T, generator=gen(),
                       clip_x0=2.5)
lin_clip = ddpm_sample(result.ema, schedule, x_T, generator=gen(), clip_x0=2.5)
rows = [("linear", ddpm_sw), ("linear, x0 clipped", sw_to_data(lin_clip)),
        ("cosine", sw_to_data(cos_raw)),
        ("cosine, x0 clipped", sw_to_data(cos_clip))]
print(f"{'schedule':<22}{'SW':>9}{'x floor':>10}")
for name, sw in rows:
    print(f"{name:<22}{sw:9.4f}{sw / floor:10.2f}")

# %% [markdown]
# On this toy problem the linear schedule is as good as the cosine one (or better), once the
# cosine schedule's last step is tamed: cosine was designed for images, where the linear
# schedule wastes its last few hundred steps on almost pure noise (see the SNR plot above).
# What transfers to every later chapter: **the schedule and the sampler's numerical details
# matter as much as the network.** Chapter 3 trains the same recipe on CIFAR-10 images.

# %% [markdown]
# ## Another design: EDM's preconditioning and loss
#
# Noise prediction is one way to parametrise the network, not the only one.
# {cite:t}`karras2022edm` (EDM) write noisy data as $x = x_0 + \sigma\epsilon$ and train a
# *denoiser* $D(x; \sigma) \approx \mathbb{E}[x_0 \mid x]$ directly, wrapping the raw network $F$
# so that its input and its target have unit variance at every noise level:
#
# $$ D(x; \sigma) = c_\text{skip}(\sigma)\,x + c_\text{out}(\sigma)\,
#    F\big(c_\text{in}(\sigma)\,x;\ c_\text{noise}(\sigma)\big) \qquad \text{(EDM Eq. 7)} $$
#
# with $c_\text{skip} = \sigma_\text{data}^2/(\sigma^2 + \sigma_\text{data}^2)$,
# $c_\text{out} = \sigma\sigma_\text{data}/\sqrt{\sigma^2 + \sigma_\text{data}^2}$,
# $c_\text{in} = 1/\sqrt{\sigma^2 + \sigma_\text{data}^2}$, $c_\text{noise} = \ln(\sigma)/4$
# (EDM Table 1). The loss draws $\ln\sigma \sim \mathcal{N}(-1.2, 1.2^2)$ and weights the error
# by $\lambda(\sigma) = 1/c_\text{out}^2$, so the network's own error has unit weight (EDM Eq. 8).
# Sampling integrates $dx/d\sigma = (x - D(x; \sigma))/\sigma$ from $\sigma = 80$ to $0$ with
# Heun's method on EDM's noise levels (chapter 4 derives both). The same MLP, the same data and
# training budget, $\sigma_\text{data} = 1$ (the swiss roll's coordinates have a standard
# deviation near one):

# %%
torch.manual_seed(0)
net_edm = MLPDenoiser(MLPConfig(hidden=P["hidden"],
                                num_blocks=P["blocks"])).to(device)
edm_loss = EDMLoss(sigma_data=1.0)


def edm_loss_fn(net, x0):  # the raw network F, wrapped as D for the loss
    return edm_loss(EDMDenoiser(net, sigma_data=1.0), x0)


result_edm = train(net_edm, edm_loss_fn,
                   random_batches(data, P["batch"],
                                  torch.Generator(device).manual_seed(6)),
                   config)
D_edm = EDMDenoiser(result_edm.ema, sigma_data=1.0)
z = torch.randn(2000, 2, device=device, generator=gen())
print(f"trained {result_edm.steps_run} steps in {result_edm.seconds:.1f} s; "
      f"sampled with EDM's Heun (Algorithm 1) on Karras sigmas:")
print(f"{'Heun steps':>10}{'network evaluations':>21}{'SW / floor':>12}")
edm_sw = {}
for n in (5, 10, 18, 40):
    sigmas = karras_sigmas(n)  # sigma_max = 80 ... sigma_min = 0.002, 0
    x = edm_heun_sample(D_edm, sigmas[0] * z, sigmas)
    edm_sw[n] = sw_to_data(x)
    print(f"{n:>10}{2 * n - 1:>21}{edm_sw[n] / floor:>12.2f}")
print(f"DDPM above: 1,000 steps and network evaluations, "
      f"{ddpm_sw / floor:.2f} x floor")

# %% [markdown]
# Read the table against DDPM's line: EDM's 18 Heun steps (35 network evaluations, the paper's
# CIFAR-10 setting) against DDPM's 1,000, and five steps, whose first jumps between EDM's noise
# levels are huge. Chapter 4 takes the sampler side of this design space apart on chapter 3's
# image model.

# %% [markdown]
# The chapter's headline numbers, recorded for the course's {doc}`Results page </book/results>`:

# %%
report({
    "ddpm_sw": {"value": ddpm_sw,
                "description": "sliced Wasserstein, DDPM samples vs fresh "
                               "data",
                "samples": len(samples),
                "reference": "fresh swiss-roll points, mean of 5 draws",
                "sampling_steps": schedule.num_steps},
    "sw_floor": {"value": floor,
                 "description": "sliced Wasserstein, true vs true data: "
                                "the statistical floor",
                 "samples": 2000,
                 "reference": "fresh swiss-roll points, mean of 5 draws"},
    "ddpm_sw_over_floor": {"value": ddpm_sw / floor,
                           "description": "DDPM samples, in multiples of the "
                                          "floor (1 is perfect)",
                           "samples": len(samples),
                           "sampling_steps": schedule.num_steps},
    "langevin_sw_over_floor": {"value": langevin_sw / floor,
                               "description": "annealed Langevin (100 levels "
                                              "x 10 steps), in multiples of "
                                              "the floor",
                               "samples": len(langevin),
                               "sampling_steps": 1000},
    "edm_heun_sw_over_floor": {"value": edm_sw[18] / floor,
                               "description": "EDM preconditioning and loss, "
                                              "Heun on 18 Karras sigmas, in "
                                              "multiples of the floor",
                               "samples": len(z), "sampling_steps": 35},
}, notes={"training": f"{result.steps_run:,} steps in {result.seconds:.0f} s "
                      f"on {device} (per schedule)"})

# %% [markdown]
# ## Summary
#
# - The forward process has a closed form, $x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1-\bar\alpha_t}\epsilon$,
#   so training never runs the chain: it noises a data point to a random step and regresses the noise.
# - Sampling runs the learned reverse chain from noise; each step is the Gaussian posterior
#   $q(x_{t-1}\mid x_t, \hat x_0)$ with $\hat x_0$ read off the predicted noise.
# - The noise predictor is also a score model, $s_\theta = -\epsilon_\theta / \sqrt{1-\bar\alpha_t}$,
#   which Langevin dynamics can sample from directly.
# - We measured the samples against a statistical floor instead of trusting the picture.
# - EDM's preconditioned denoiser, sampled with Heun's method on Karras noise levels, got closer
#   to that floor with 35 network evaluations than DDPM's sampler with 1,000.
#
# The papers cited here are listed in the course's {doc}`bibliography </book/bibliography>`.
