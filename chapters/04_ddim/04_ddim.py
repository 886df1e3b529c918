# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
# ---

# %% [markdown]
# # 4. DDIM and fast samplers
#
# Chapter 3's sampler calls the network a thousand times per image. This chapter keeps the
# trained model exactly as it is and changes only the sampler. DDIM {cite:p}`song2021ddim`
# shows that the DDPM objective is shared by a whole family of generative processes, some of
# them deterministic, which can skip most of the steps; read as an ODE, the same model can then
# be integrated with better solvers: Euler, Heun {cite:p}`karras2022edm` and DPM-Solver++
# {cite:p}`lu2022dpmsolverpp`.
#
# **What you will build:** DDIM derived from a non-Markovian forward process (exercise: the DDIM
# step with $\eta$), $\eta$ from deterministic to DDPM, DDIM as Euler's method on the
# probability-flow ODE, the same trained model sampled with every sampler at several step
# counts with a table and plot of FID against the number of network evaluations, next to the
# DDIM paper's CIFAR-10 table, and DDIM inversion and interpolation in noise space (exercise:
# spherical interpolation).
#
# **Time:** about two minutes on a 2-core CPU in the `smoke` profile, which loads chapter 3's
# smoke model (a 280k-parameter U-Net trained for minutes: its samples are coloured blobs and
# its FIDs are far above the paper's; the code path is the real one). **Outputs on this page**
# were produced by executing it in the profile and on the hardware that the set-up cell prints.

# %%
import os
import sys

if "google.colab" in sys.modules:  # on Colab: install this course release
    URL = "git+https://github.com/diffusion-from-scratch/course@main"
    # %pip install -q "course-lib[colab] @ {URL}"
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
from course_lib.course.paths import cache_dir
from course_lib.data import load_cifar10, to_float, to_uint8
from course_lib.process.diffusion import eps_to_x0, gather
from course_lib.samplers.ddim import (ddim_invert, ddim_sample, ddim_sigma,
                                      slerp, timesteps)
from course_lib.evaluation.fid import fid, reference_stats
from course_lib.evaluation.metrics import psnr
from course_lib.samplers.ode import (dpm_solver_timesteps, dpmpp_2m_sample,
                                     euler_sample, heun_sample)
from course_lib.book.plotting import (figure_jpeg, frame_slider, image_grid,
                                      show_jpeg)
from course_lib.recipes.ch03_ddpm import chapter3_unet, ddpm_recipe
from course_lib.book.results import report
from course_lib.process.schedules import make_schedule

profile = course_lib.get_profile()
device = course_lib.default_device()
# chapter 3's model and schedule (course_lib.recipes.ch03_ddpm)
recipe = ddpm_recipe(profile)
# this chapter's sampling and evaluation sizes, per profile
P = profile.choose(
    smoke=dict(step_counts=(10, 20, 50), fid_samples=8, fid_reference=100,
               sample_batch=32, show_images=8,
               invert_images=8, invert_steps=(10, 50)),
    laptop=dict(step_counts=(10, 20, 50, 100), fid_samples=500,
                fid_reference=10_000, sample_batch=250, show_images=8,
                invert_images=64, invert_steps=(10, 50, 100)),
    colab=dict(step_counts=(10, 20, 50, 100), fid_samples=1_000,
               fid_reference=10_000, sample_batch=500,
               show_images=8, invert_images=64, invert_steps=(10, 50, 200)),
    full=dict(step_counts=(10, 20, 50, 100, 1000), fid_samples=5_000,
              fid_reference=10_000, sample_batch=1_000,
              show_images=8, invert_images=256, invert_steps=(10, 50, 200)),
)
course_lib.show_setup("4 · DDIM and fast samplers", {
    "model": f"chapter 3's EMA U-Net '{recipe['unet']}' "
             f"({recipe['schedule']} schedule, T = {recipe['num_steps']}), "
             "loaded as an artifact (trained again if missing)",
    "samplers": "DDIM (eta = 0 and 1), Euler, Heun, DPM-Solver++(2M)",
    "steps": ", ".join(map(str, P["step_counts"])),
    "FID": f"{P['fid_samples']:,} samples per sampler and step count "
           f"against {P['fid_reference']:,} test images",
}, profile, device)

# %% [markdown]
# ## The model from chapter 3
#
# `course_lib.recipes.ch03_ddpm.chapter3_unet` loads the U-Net that chapter 3 saved for this profile,
# after checking its SHA-256; if it is missing (say, you opened this chapter first) it trains it
# with chapter 3's recipe and saves it. Nothing here retrains it.

# %%
t0 = time.perf_counter()
model, meta = chapter3_unet(profile, device)
model.eval()
schedule = make_schedule(recipe["schedule"], recipe["num_steps"])
alpha_bar = schedule.alpha_bar
T = schedule.num_steps
print(f"loaded in {time.perf_counter() - t0:.1f} s: {meta['name']}, "
      f"profile {meta['profile']}, "
      f"trained on {meta['hardware']} in {meta['train_seconds'] or 0:.0f} s "
      f"by {meta['produced_by']}")
print("its chapter 3 metrics:",
      {k: round(v, 2) if isinstance(v, float) else v
       for k, v in meta["metrics"].items()})

# %% [markdown]
# ## A family of processes with the same marginals
#
# DDPM's loss only ever uses the marginals $q(x_t \mid x_0) = \mathcal{N}(\sqrt{\bar\alpha_t}\,x_0, (1 - \bar\alpha_t) I)$,
# never the Markov chain that produces them. DDIM's observation is that many joint
# processes share these marginals. For any $\sigma_t \ge 0$, define the reverse conditionals
#
# $$ q_\sigma(x_{t-1} \mid x_t, x_0) = \mathcal{N}\Big(\sqrt{\bar\alpha_{t-1}}\,x_0
#    + \sqrt{1 - \bar\alpha_{t-1} - \sigma_t^2}\cdot\frac{x_t - \sqrt{\bar\alpha_t}\,x_0}{\sqrt{1 - \bar\alpha_t}},\ \sigma_t^2 I\Big)
#    \qquad \text{(DDIM Eq. 7)} $$
#
# By induction from $t = T$ down, $q_\sigma(x_{t-1} \mid x_0)$ is again
# $\mathcal{N}(\sqrt{\bar\alpha_{t-1}}\,x_0, (1 - \bar\alpha_{t-1}) I)$: the mean of $x_t$ is
# carried over, and the variance adds up to $(1 - \bar\alpha_{t-1} - \sigma_t^2) + \sigma_t^2$.
# The forward process of this family is no longer Markovian, but its ELBO is, up to weights, the
# same noise-prediction loss (DDIM Theorem 1), so **the model trained in chapter 3 serves every
# member of the family**. Sampling replaces $x_0$ by the prediction
# $\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon_\theta) / \sqrt{\bar\alpha_t}$ and
# $(x_t - \sqrt{\bar\alpha_t}\hat x_0)/\sqrt{1 - \bar\alpha_t}$ by $\epsilon_\theta$:
#
# $$ x_{t-1} = \underbrace{\sqrt{\bar\alpha_{t-1}}\,\hat x_0}_{\text{predicted } x_0}
#    + \underbrace{\sqrt{1 - \bar\alpha_{t-1} - \sigma_t^2}\;\epsilon_\theta(x_t, t)}_{\text{direction pointing to } x_t}
#    + \underbrace{\sigma_t z}_{\text{random noise}} . \qquad \text{(DDIM Eq. 12)} $$
#
# One parameter spans the family, $\sigma_t(\eta) = \eta\sqrt{(1 - \bar\alpha_{t-1})/(1 - \bar\alpha_t)}\sqrt{1 - \bar\alpha_t/\bar\alpha_{t-1}}$
# (DDIM Eq. 16): $\eta = 1$ is exactly DDPM's posterior variance $\tilde\beta_t$, and $\eta = 0$ a
# deterministic map from $x_T$ to $x_0$. Nothing in Eq. 12 needs $t - 1$ to be the step after $t$
# either: the same formula jumps between any two steps $t > t'$ of a shorter sequence (DDIM Sec. 4.2).

# %% [markdown]
# ```{exercise} The DDIM step
# :label: ex-ddim-step
#
# Write `ddim_step(x_t, eps, t, t_prev, alpha_bar, eta, noise)` returning $x_{t'}$ of DDIM Eq. 12
# for a jump from step `t` to step `t_prev` (Python ints, `t_prev < t`; `t_prev = -1` is the data
# end, where $\bar\alpha = 1$), with $\sigma$ from Eq. 16. `x_t`, `eps` and `noise` have shape
# `(B, 3, H, W)`; `alpha_bar` has shape `(T,)`. The checker compares it with
# `course_lib.samplers.ddim.ddim_step` for several jumps and values of $\eta$.
# ```
#
# ```{solution-start} ex-ddim-step
# :class: dropdown
# ```

# %% tags=["solution"]
def ddim_step(x_t, eps, t, t_prev, alpha_bar, eta, noise):
    a = alpha_bar[t]
    a_prev = (alpha_bar[t_prev] if t_prev >= 0
              else torch.tensor(1.0, dtype=alpha_bar.dtype))
    x0_hat = (x_t - (1 - a).sqrt() * eps) / a.sqrt()  # DDPM Eq. 15
    # DDIM Eq. 16
    sigma = eta * ((1 - a_prev) / (1 - a)).sqrt() * (1 - a / a_prev).sqrt()
    return (a_prev.sqrt() * x0_hat + (1 - a_prev - sigma**2).sqrt() * eps
            + sigma * noise)  # DDIM Eq. 12


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch04 import check_ddim_step

check_ddim_step(ddim_step)

# %% [markdown]
# The sampler is a loop over a decreasing subsequence of steps, here DDIM's "leading" spacing
# (`timesteps(T, N)`: every $T/N$-th step). Inline, and checked against
# `course_lib.samplers.ddim.ddim_sample` with a cheap stand-in network:

# %%
@torch.no_grad()
def sample_ddim(model, x_T, steps, eta=0.0, generator=None):
    x = x_T
    stride = T // len(steps)
    for t in steps.tolist():
        eps = model(x, torch.full((x.shape[0],), t, device=x.device,
                                  dtype=torch.long))
        noise = (torch.randn(x.shape, generator=generator, device=x.device,
                             dtype=x.dtype) if eta > 0
                 else torch.zeros_like(x))
        x = ddim_step(x, eps, t, t - stride, alpha_bar.to(x), eta, noise)
    return x


stand_in = lambda x, t: 0.3 * x + 0.001 * t.view(-1, 1, 1, 1)
x_T = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0),
                  dtype=torch.float64)
for eta in (0.0, 0.6):
    torch.testing.assert_close(
        sample_ddim(stand_in, x_T, timesteps(T, 20), eta,
                    torch.Generator().manual_seed(1)),
        ddim_sample(stand_in, schedule, x_T, timesteps(T, 20), eta=eta,
                    generator=torch.Generator().manual_seed(1)))
print("inline DDIM loop == course_lib.samplers.ddim.ddim_sample "
      "(eta = 0 and 0.6)")
print("the 10 steps of timesteps(1000, 10):", timesteps(T, 10).tolist())

# %% [markdown]
# ## Samples with fewer steps
#
# Now the real model, from the same starting noise, with 10 to 1000 steps of deterministic
# DDIM. Move the slider: with DDIM the images change little between 50 and 1000 steps, which is
# the point of the method (on a well-trained model; the `smoke` model is another matter).

# %%
x_T_show = torch.randn(P["show_images"], 3, 32, 32,
                       generator=torch.Generator().manual_seed(7)).to(device)
slider_counts = sorted({*P["step_counts"], 5, 1000})
frames, labels = [], []
for n in slider_counts:
    t0 = time.perf_counter()
    x = ddim_sample(model, schedule, x_T_show, timesteps(T, n)).clamp(-1, 1)
    seconds = time.perf_counter() - t0
    fig = image_grid(x.cpu(), nrow=P["show_images"],
                     title=f"DDIM, eta = 0, {n} steps",
                     figsize=(8, 1.3)).figure
    frames.append(figure_jpeg(fig, dpi=70))
    labels.append(f"{n} steps: {n} network evaluations, {seconds:.1f} s "
                  f"for {P['show_images']} images on {device}")
frame_slider(frames, labels, description="steps")

# %% [markdown]
# ## From deterministic to DDPM: $\eta$
#
# With 50 steps and the same $x_T$, raising $\eta$ injects fresh noise at every step: the
# samples drift away from the deterministic ones, and with few steps the extra noise costs
# quality (the DDIM paper's $\eta = 1$ row is far worse than $\eta = 0$ at 10-50 steps). With all
# 1000 steps, $\eta = 1$ *is* DDPM's ancestral sampler (course_lib's tests check it draw for draw).

# %%
etas = [0.0, 0.2, 0.5, 1.0]
rows = [ddim_sample(model, schedule, x_T_show, timesteps(T, 50), eta=e,
                    generator=torch.Generator(device).manual_seed(0))
        .clamp(-1, 1).cpu() for e in etas]
image_grid(torch.cat(rows), nrow=P["show_images"], figsize=(8, 4.4),
           title="DDIM, 50 steps, same x_T; rows: eta = "
                 + ", ".join(map(str, etas)))
show_jpeg()
print("sigma of the first jump (999 -> 979) at each eta:",
      ", ".join(f"{e}: {ddim_sigma(schedule, 999, 979, e):.3f}" for e in etas))

# %% [markdown]
# ## DDIM is Euler's method on an ODE
#
# Divide Eq. 12 with $\eta = 0$ by $\sqrt{\bar\alpha_{t-1}}$ and write
# $\bar x = x / \sqrt{\bar\alpha}$ and $\sigma = \sqrt{(1 - \bar\alpha)/\bar\alpha}$ (the noise
# level of EDM, {cite:t}`karras2022edm`):
#
# $$ \bar x_{t-1} = \bar x_t + (\sigma_{t-1} - \sigma_t)\,\epsilon_\theta(x_t, t) . $$
#
# That is one step of Euler's method for the ODE $d\bar x / d\sigma = \epsilon_\theta$, the
# *probability-flow ODE* of the diffusion {cite:p}`song2021scorebased`, whose solutions carry
# $\mathcal{N}(0, (1 + \sigma_{\max}^2) I)$ to the data distribution. Deterministic DDIM is
# therefore a first-order ODE solver, and better solvers should need fewer steps: Heun's method
# (second order, two evaluations per step, EDM's choice) and DPM-Solver++(2M) (second order,
# multistep: it reuses the previous step's $\hat x_0$, so one evaluation per step). The check
# below runs one DDIM step and one Euler step in these coordinates:

# %%
g = torch.Generator().manual_seed(2)
x_t, eps = (torch.randn(4, 3, 32, 32, generator=g, dtype=torch.float64),
            torch.randn(4, 3, 32, 32, generator=g, dtype=torch.float64))
t, t_prev = 700, 650
sig = lambda s: ((1 - alpha_bar[s]) / alpha_bar[s]).sqrt()
# Euler in (sigma, x / sqrt(alpha_bar))
euler = x_t / alpha_bar[t].sqrt() + (sig(t_prev) - sig(t)) * eps
torch.testing.assert_close(euler * alpha_bar[t_prev].sqrt(),
                           ddim_step(x_t, eps, t, t_prev, alpha_bar, 0.0,
                                     torch.zeros_like(x_t)))
print("a deterministic DDIM step == an Euler step of the probability-flow ODE")

# %% [markdown]
# ## FID against the number of network evaluations
#
# Every sampler, every step count, the same model. Each sampler uses its own usual timesteps
# (DDIM: "leading", as in its paper; the ODE solvers: diffusers' defaults) and is checked
# against the corresponding diffusers scheduler, step for step in float64, by the course's
# tests. The cost that matters is the number of function evaluations (NFE) of the network:
# $N$ for DDIM, Euler and DPM-Solver++, $2N - 1$ for Heun.

# %%
samplers = {
    "DDIM, eta = 0": (
        lambda x, n, g: ddim_sample(model, schedule, x, timesteps(T, n)),
        lambda n: n),
    "DDIM, eta = 1": (
        lambda x, n, g: ddim_sample(model, schedule, x, timesteps(T, n),
                                    eta=1.0, generator=g),
        lambda n: n),
    "Euler": (
        lambda x, n, g: euler_sample(model, schedule, x,
                                     timesteps(T, n, "linspace")),
        lambda n: n),
    "Heun": (
        lambda x, n, g: heun_sample(model, schedule, x,
                                    timesteps(T, n, "linspace")),
        lambda n: 2 * n - 1),
    "DPM-Solver++(2M)": (
        lambda x, n, g: dpmpp_2m_sample(model, schedule, x,
                                        dpm_solver_timesteps(T, n)),
        lambda n: n),
}
test_data = load_cifar10("test", subset=P["fid_reference"]
                         if P["fid_reference"] < 10_000 else None)
ref = reference_stats(test_data.images[: P["fid_reference"]].to(device),
                      f"{test_data.source_id}-test-{P['fid_reference']}",
                      cache_dir() / "fid")
n_fid, batch = P["fid_samples"], P["sample_batch"]
results = {}
for name, (run, nfe) in samplers.items():
    for n in P["step_counts"]:
        t0 = time.perf_counter()
        g = torch.Generator(device).manual_seed(0)
        x = torch.cat([
            run(torch.randn(
                min(batch, n_fid - i), 3, 32, 32,
                generator=torch.Generator().manual_seed(1000 + i)).to(device),
                n, g)
            for i in range(0, n_fid, batch)]).clamp(-1, 1)
        seconds = time.perf_counter() - t0
        score = fid(to_uint8(x), ref.mu, ref.sigma,
                    f"{test_data.source_id} test", ref_count=ref.num_images)
        results[name, n] = dict(fid=score.value, nfe=nfe(n), seconds=seconds)
print(f"FID of {n_fid:,} samples each against {ref.num_images:,} "
      f"{test_data.source_id} test images "
      f"({P['sample_batch']} per batch on {device}); "
      "sampling seconds in brackets")
print(f"{'sampler':<18}"
      + "".join(f"{n:>16} steps" for n in P["step_counts"]))
for name in samplers:
    print(f"{name:<18}"
          + "".join(f"{results[name, n]['fid']:>12.2f} "
                    f"({results[name, n]['seconds']:>5.1f})"
                    for n in P["step_counts"]))

# %% [markdown]
# The DDIM paper's CIFAR-10 numbers, for reference (Table 1 of {cite:t}`song2021ddim`: DDPM's
# 35.7M-parameter model, 50,000 samples against the training set; not ours):
#
# | steps | 10 | 20 | 50 | 100 | 1000 |
# |---|---|---|---|---|---|
# | DDIM, $\eta = 0$ | 13.36 | 6.84 | 4.67 | 4.16 | 4.04 |
# | DDIM, $\eta = 1$ | 41.07 | 18.36 | 8.01 | 5.78 | 4.73 |
#
# Our numbers are comparable with these only in the `full` profile (the same architecture,
# fewer training steps, 5,000 samples against the test set: expect somewhat higher values, since
# FID falls with the number of samples).

# %%
ddim_paper = {
    "DDIM, eta = 0": {10: 13.36, 20: 6.84, 50: 4.67, 100: 4.16, 1000: 4.04},
    "DDIM, eta = 1": {10: 41.07, 20: 18.36, 50: 8.01, 100: 5.78, 1000: 4.73}}
fig, ax = plt.subplots(figsize=(7, 4))
for k, name in enumerate(samplers):
    ax.plot([results[name, n]["nfe"] for n in P["step_counts"]],
            [results[name, n]["fid"] for n in P["step_counts"]],
            marker="o", color=f"C{k}", label=f"{name} (ours, {profile.name})")
    if name in ddim_paper:
        steps_ref = sorted(ddim_paper[name])
        ax.plot(steps_ref, [ddim_paper[name][n] for n in steps_ref], ls="--",
                marker="x", color=f"C{k}",
                alpha=0.6, label=f"{name}: DDIM paper (reference)")
ax.set(xscale="log", yscale="log", xlabel="network evaluations (NFE)",
       ylabel="FID",
       title=f"FID vs NFE ({n_fid:,} samples per point; "
             "reference: 50k samples)")
ax.legend(fontsize=7, ncol=2)
plt.show()

# %% [markdown]
# ## Inversion: from an image back to its noise
#
# Because deterministic DDIM is an ODE solver, it can run backwards: integrate from an image
# $x_0$ up to $x_T$ (DDIM Sec. 4.3), using the model at each step's target level (the exact
# inverse would need $\epsilon_\theta$ at a point not yet known). Sampling from that $x_T$ gives
# the image back, up to the discretisation error of both directions, which shrinks with more
# steps. This is how image editing with diffusion models finds the noise of a real photo.

# %%
one_per_class = [int((test_data.labels == k % 10).nonzero()[k // 10])
                 for k in range(P["invert_images"])]
# the classes in turn
x_real = to_float(test_data.images[one_per_class]).to(device)
inversions = {}
for n in P["invert_steps"]:
    ts = timesteps(T, n)
    z = ddim_invert(model, schedule, x_real, ts)
    back = ddim_sample(model, schedule, z, ts).clamp(-1, 1)
    inversions[n] = dict(z=z, back=back, psnr=psnr(back, x_real).mean().item())
    print(f"{n:>4} steps: round-trip PSNR {inversions[n]['psnr']:.1f} dB, "
          f"inverted x_T has mean {z.mean():+.3f} and std {z.std():.3f} "
          "(noise: 0 and 1)")
n_best = max(P["invert_steps"])
rows = [x_real[:8].cpu(),
        inversions[n_best]["z"][:8].clamp(-2.5, 2.5).cpu() / 2.5,
        inversions[n_best]["back"][:8].cpu()]
image_grid(torch.cat(rows), nrow=8, figsize=(8, 3.3),
           title=f"test images, their DDIM-inverted noise ({n_best} steps), "
                 "and the samples from it (rows)")
show_jpeg()

# %% [markdown]
# ## Interpolation in noise space
#
# With a deterministic sampler, each $x_T$ names one image, so walking between two noises walks
# between two images. The walk should stay where Gaussian noise lives: in high dimension almost
# all of it lies near the sphere of radius $\sqrt{d}$, and the straight line between two such
# points dips well inside it (by $\sqrt 2$ at the midpoint for independent noises), where the
# model has never been trained. Spherical interpolation (slerp) moves along the sphere
# instead; the DDIM paper interpolates this way (DDIM Sec. 5.3).

# %% [markdown]
# ```{exercise} Spherical interpolation
# :label: ex-slerp
#
# Write `slerp(z0, z1, weight)` for two batches of noise of shape `(B, 3, H, W)` and a float
# weight $w \in [0, 1]$: per example, with $\theta$ the angle between the flattened $z_0$ and
# $z_1$, return $\frac{\sin((1 - w)\theta)}{\sin\theta} z_0 + \frac{\sin(w\theta)}{\sin\theta} z_1$.
# ```
#
# ```{solution-start} ex-slerp
# :class: dropdown
# ```

# %% tags=["solution"]
def my_slerp(z0, z1, weight):
    a, b = z0.flatten(1), z1.flatten(1)
    theta = (torch.arccos((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)))
             .view(-1, *([1] * (z0.ndim - 1))))
    return (torch.sin((1 - weight) * theta) * z0
            + torch.sin(weight * theta) * z1) / torch.sin(theta)


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch04 import check_slerp

check_slerp(my_slerp)

# %% [markdown]
# Two test images, inverted to noise, and the DDIM samples (50 steps) along the slerp and along
# the straight line between their noises. The norms say why the straight line fails:

# %%
z_a, z_b = inversions[n_best]["z"][0:1], inversions[n_best]["z"][1:2]
weights = torch.linspace(0, 1, 8)
paths = {"slerp": torch.cat([slerp(z_a, z_b, float(w)) for w in weights]),
         "straight line": torch.cat([(1 - w) * z_a + w * z_b
                                     for w in weights])}
ts = timesteps(T, n_best)
rows = [ddim_sample(model, schedule, path, ts).clamp(-1, 1).cpu()
        for path in paths.values()]
image_grid(torch.cat(rows), nrow=8, figsize=(8, 2.3),
           title="DDIM from interpolated noise: slerp (top), "
                 "straight line (bottom)")
show_jpeg()
for name, path in paths.items():
    print(f"{name:>13}: norm / sqrt(d) along the path:",
          " ".join(f"{v:.2f}"
                   for v in path.flatten(1).norm(dim=1) / 3072**0.5))

# %% [markdown]
# The chapter's headline numbers, recorded for the course's {doc}`Results page </book/results>`:

# %%
slug = {"DDIM, eta = 0": "ddim_eta0", "DDIM, eta = 1": "ddim_eta1",
        "Euler": "euler", "Heun": "heun",
        "DPM-Solver++(2M)": "dpmpp_2m"}
paper_key = lambda name, n: ({"paper": f"ddim_cifar10_fid_{n}"}
                             if name == "DDIM, eta = 0"
                             and n in ddim_paper[name] else {})
report({
    **{f"fid_{slug[name]}_{n}": {
           "value": results[name, n]["fid"], "samples": n_fid,
           "sampling_steps": results[name, n]["nfe"],
           "reference": f"{test_data.source_id} test, "
                        f"{ref.num_images:,} images",
           "description": f"{name}, {n} steps", **paper_key(name, n)}
       for name in samplers for n in P["step_counts"]},
    **{f"inversion_psnr_{n}": {
           "value": inv["psnr"], "unit": "dB", "samples": P["invert_images"],
           "sampling_steps": 2 * n,
           "description": f"DDIM inversion then sampling, {n} steps each way"}
       for n, inv in inversions.items()},
}, notes={"model": f"{meta['name']} ({meta['profile']}, "
                   f"trained on {meta['hardware']})"})

# %% [markdown]
# ## Summary
#
# - DDPM's loss only sees the marginals $q(x_t \mid x_0)$, so one trained model serves a family
#   of samplers; DDIM's (Eq. 12) has a noise knob $\eta$ and can skip steps.
# - Deterministic DDIM is Euler's method on the probability-flow ODE; higher-order solvers (Heun,
#   DPM-Solver++) reach a given FID with fewer network evaluations.
# - A deterministic sampler is an invertible map between noise and images: inversion recovers the
#   noise of a real image, and slerp between noises interpolates between images.
#
# Next: chapter 5 adds class conditioning and classifier-free guidance to this U-Net.
