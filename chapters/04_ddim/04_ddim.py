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
# DDIM paper's CIFAR-10 table; EDM's design space {cite:p}`karras2022edm`: the model as a
# denoiser $D(x; \sigma)$, Karras noise levels (exercise), Heun's method (exercise: one step), the
# effect of $\rho$ and of churn, and why the last step's signal-to-noise ratio matters; DDIM
# inversion and interpolation in noise space (exercise: spherical interpolation).
#
# **Time:** about three minutes on a 2-core CPU in the `smoke` profile, which loads chapter 3's
# smoke model (a 280k-parameter U-Net trained for minutes: its samples are coloured blobs and
# its FIDs are far above the paper's; the code path is the real one). In the `laptop` profile it
# loads chapter 3's published model and measures the points that the chapter's claims rest on
# (the other sweeps run on a GPU): an estimated 26 minutes on 2 cores. **Outputs on this page**
# were produced by executing it in the profile and on the hardware that the set-up cell prints.

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
from matplotlib.ticker import FormatStrFormatter

import course_lib
from course_lib.course.paths import cache_dir
from course_lib.data import load_cifar10, to_float, to_uint8
from course_lib.process.diffusion import eps_to_x0
from course_lib.samplers.ddim import (ddim_invert, ddim_sample, ddim_sigma,
                                      slerp, timesteps)
from course_lib.evaluation.fid import fid, reference_stats
from course_lib.evaluation.metrics import psnr
from course_lib.samplers.ode import (dpm_solver_timesteps, dpmpp_2m_sample,
                                     euler_sample, heun_sample)
from course_lib.process.edm import VPDenoiser, karras_sigmas
from course_lib.samplers.edm import (edm_dpmpp_2m_sample, edm_euler_sample,
                                     edm_heun_sample)
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
EVEN = ("DDIM, eta = 0", "DDIM, eta = 1", "Euler", "Heun", "DPM-Solver++(2M)")
KARRAS = ("Heun, Karras", "Euler, Karras", "DPM-Solver++(2M), Karras")
P = profile.choose(
    # grid, edm_grid: sampler -> the step counts whose FID is measured
    smoke=dict(grid={k: (10, 20, 50) for k in EVEN}, fid_samples=8,
               fid_reference=100, sample_batch=32, show_images=8,
               invert_images=8, invert_steps=(10, 50),
               edm_grid={k: (5, 10, 18) for k in KARRAS}, sweep_steps=10,
               sweep_samples=8, rhos=(1, 3, 7), churns=(0, 1, 2, 4),
               bootstrap=4),  # each resampling costs 0.3 s of CPU
    # laptop: what fits 30 minutes on 2 CPU cores (the U-Net's forward pass
    # runs at about 115 images/s, an FID of 500 samples needs a minute of
    # Inception features): the targets' points and EDM's two best solvers
    laptop=dict(grid={"DDIM, eta = 0": (10, 50, 100),
                      "DPM-Solver++(2M)": (10,)},
                fid_samples=500, fid_reference=10_000, sample_batch=250,
                show_images=8, invert_images=32, invert_steps=(10, 50, 100),
                edm_grid={"Heun, Karras": (10,),
                          "DPM-Solver++(2M), Karras": (10,)},
                sweep_steps=10, sweep_samples=500, rhos=(), churns=(),
                bootstrap=50),  # 200 would add 4.5 minutes
    colab=dict(grid={"DDIM, eta = 0": (10, 20, 50, 100),
                     "DDIM, eta = 1": (10, 20, 50, 100),
                     "Euler": (10, 20, 50, 100), "Heun": (10, 20, 50, 100),
                     "DPM-Solver++(2M)": (10, 20, 50, 100)},
               fid_samples=1_000, fid_reference=10_000, sample_batch=500,
               show_images=8, invert_images=64, invert_steps=(10, 50, 200),
               edm_grid={"Heun, Karras": (5, 10, 18),
                         "Euler, Karras": (5, 10, 18),
                         "DPM-Solver++(2M), Karras": (5, 10, 18)},
               sweep_steps=10, sweep_samples=1_000, rhos=(1, 3, 7),
               churns=(0, 1, 2, 4), bootstrap=200),
    full=dict(grid={k: (10, 20, 50, 100, 1000) for k in EVEN},
              fid_samples=5_000, fid_reference=10_000, sample_batch=1_000,
              show_images=8, invert_images=256, invert_steps=(10, 50, 200),
              edm_grid={k: (5, 10, 18, 50) for k in KARRAS}, sweep_steps=18,
              sweep_samples=5_000, rhos=(1, 3, 7, 12), churns=(0, 2, 4, 8),
              bootstrap=200),
)
course_lib.show_setup("4 · DDIM and fast samplers", {
    "model": f"chapter 3's EMA U-Net '{recipe['unet']}' "
             f"({recipe['schedule']} schedule, T = {recipe['num_steps']}), "
             "loaded as an artifact (trained again if missing)",
    "FID points": "; ".join(f"{k} {v}" for k, v in
                            {**P["grid"], **P["edm_grid"]}.items()),
    "FID": f"{P['fid_samples']:,} samples per sampler and step count "
           f"against {P['fid_reference']:,} test images",
}, profile, device)

# %% [markdown]
# ## The model from chapter 3
#
# `course_lib.recipes.ch03_ddpm.chapter3_unet` loads the U-Net that chapter 3 saved for this profile,
# after checking its SHA-256; if it is missing (say, you opened this chapter first) it trains it
# with chapter 3's recipe and saves it. On Colab, where every notebook starts on a fresh machine,
# it loads the published `laptop` model instead when no `colab` one exists, and says so. Nothing
# here retrains it.

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
print("its recorded metrics:",
      {k: round(v, 2) if isinstance(v, float) else v
       for k, v in meta["metrics"].items() if isinstance(v, (int, float))})

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
slider_counts = sorted({n for c in P["grid"].values() for n in c} | {5, 1000})
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
# The samplers at several step counts, the same model and the same starting noise (which points
# a profile measures is its `grid`, printed in the set-up cell: on 2 CPU cores the `laptop` page
# measures the points that the questions below need). Each sampler uses its own usual timesteps
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
    for n in P["grid"].get(name, ()):
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
                    f"{test_data.source_id} test", ref_count=ref.num_images,
                    bootstrap=P["bootstrap"])
        results[name, n] = dict(fid=score.value, std=score.std, nfe=nfe(n),
                                seconds=seconds)
print(f"FID ± bootstrap sd of {n_fid:,} samples each against "
      f"{ref.num_images:,} {test_data.source_id} test images "
      f"({P['sample_batch']} per batch on {device})")
print(f"{'sampler':<18}{'steps':>6}{'NFE':>5}{'FID':>9}{'sd':>7}"
      f"{'seconds':>9}")
for name, n in results:
    r = results[name, n]
    print(f"{name:<18}{n:>6}{r['nfe']:>5}{r['fid']:>9.2f}{r['std']:>7.2f}"
          f"{r['seconds']:>9.1f}")

# %% [markdown]
# Two questions the table answers, where the profile measures their points: does a
# second-order solver at 10 steps match DDIM at 100, and is DDIM at 10 steps really worse than at
# 50, by more than the FIDs' own noise (twice the bootstrap standard deviation)?

# %%
def fid_pm(name, n):
    return f"{results[name, n]['fid']:.2f} ± {results[name, n]['std']:.2f}"


if {("DDIM, eta = 0", 100), ("DPM-Solver++(2M)", 10)} <= set(results):
    ratio = (results["DPM-Solver++(2M)", 10]["fid"]
             / results["DDIM, eta = 0", 100]["fid"])
    print(f"DPM-Solver++(2M), 10 steps: FID {fid_pm('DPM-Solver++(2M)', 10)}"
          f"; DDIM, 100 steps: {fid_pm('DDIM, eta = 0', 100)}; "
          f"ratio {ratio:.3f}")
if {("DDIM, eta = 0", 10), ("DDIM, eta = 0", 50)} <= set(results):
    a, b = results["DDIM, eta = 0", 10], results["DDIM, eta = 0", 50]
    print(f"DDIM 10 steps minus 50 steps: {a['fid'] - b['fid']:+.2f} FID; "
          f"twice the larger bootstrap sd: {2 * max(a['std'], b['std']):.2f}")

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
    counts = P["grid"].get(name, ())
    if not counts:  # not measured in this profile
        continue
    ax.plot([results[name, n]["nfe"] for n in counts],
            [results[name, n]["fid"] for n in counts],
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
ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
ax.legend(fontsize=7, ncol=2)
plt.show()

# %% [markdown]
# ## The design space of samplers (EDM)
#
# {cite:t}`karras2022edm` (EDM) rewrite every diffusion model in one frame: data $y$ plus noise
# of level $\sigma$, $x = y + \sigma n$, and a *denoiser* $D(x; \sigma) \approx \mathbb{E}[y \mid x]$.
# Sampling is then the probability-flow ODE
#
# $$ \frac{dx}{d\sigma} = \frac{x - D(x; \sigma)}{\sigma}
#    \qquad \text{(EDM Eq. 3 with } \sigma(t) = t,\ s(t) = 1\text{)} $$
#
# integrated from $\sigma_{\max}$ down to $0$, and the sampler's design splits into independent
# choices: **which noise levels** to visit, **which solver** takes the steps, and **how much fresh
# noise** to inject on the way. Chapter 3's model enters without retraining: our
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon$ is $x / \sqrt{1 + \sigma^2}$ for
# $x = x_0 + \sigma\epsilon$ with $\sigma_t = \sqrt{(1 - \bar\alpha_t)/\bar\alpha_t}$ (the $\sigma$ of
# the previous section), so
#
# $$ D(x; \sigma_t) = x - \sigma_t\,\epsilon_\theta\big(x / \sqrt{1 + \sigma_t^2},\ t\big)
#    \qquad \text{(EDM Table 1, VP: } c_\text{skip} = 1,\ c_\text{out} = -\sigma,\
#    c_\text{in} = 1/\sqrt{\sigma^2 + 1}\text{)} $$
#
# which is `course_lib.process.edm.VPDenoiser` (k-diffusion's `DiscreteEpsDDPMDenoiser`; an
# arbitrary $\sigma$ goes to the nearest step $t$). Its output is DDPM's $\hat x_0$ (Eq. 15):

# %%
denoiser = VPDenoiser(model, schedule)
t_check = 600
x_vp = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
x_vp = x_vp.to(device)
sigma_t = float(denoiser.sigmas[t_check])
with torch.no_grad():
    eps = model(x_vp, torch.full((4,), t_check, device=device))
    torch.testing.assert_close(
        denoiser(x_vp * (1 + sigma_t**2) ** 0.5, sigma_t),
        eps_to_x0(eps, x_vp, float(alpha_bar[t_check])),
        rtol=1e-4, atol=1e-4)
print(f"D(x; sigma_t) == DDPM's x0_hat at t = {t_check} "
      f"(sigma_t = {sigma_t:.3f}); the model's noise levels run from "
      f"sigma_min = {denoiser.sigma_min:.4f} to "
      f"sigma_max = {denoiser.sigma_max:.1f}")

# %% [markdown]
# **Which noise levels.** DDIM's "leading" steps are evenly spaced in $t$; EDM spaces them by a
# power law in $\sigma$ that crowds them near the data, where the images' detail is decided:
#
# $$ \sigma_i = \Big(\sigma_{\max}^{1/\rho} + \tfrac{i}{N-1}\big(\sigma_{\min}^{1/\rho}
#    - \sigma_{\max}^{1/\rho}\big)\Big)^{\rho},\quad i = 0, \dots, N-1, \qquad \sigma_N = 0
#    \qquad \text{(EDM Eq. 5)} $$
#
# with $\rho = 7$. $\rho = 1$ is even spacing in $\sigma$; $\rho \to \infty$ even spacing in
# $\log\sigma$.

# %% [markdown]
# ```{exercise} Karras sigmas
# :label: ex-karras-sigmas
#
# Write `karras_sigmas(num_steps, sigma_min, sigma_max, rho)` returning the $N + 1$ noise levels of
# EDM Eq. 5 as a float64 tensor: $\sigma_{\max}$ first, $\sigma_{\min}$ at index $N - 1$, then a $0$.
# The checker compares it with `course_lib.process.edm.karras_sigmas`.
# ```
#
# ```{solution-start} ex-karras-sigmas
# :class: dropdown
# ```

# %% tags=["solution"]
def my_karras_sigmas(num_steps, sigma_min, sigma_max, rho):
    ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)  # i / (N-1)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho  # EDM Eq. 5
    return torch.cat([sigmas, sigmas.new_zeros(1)])  # sigma_N = 0


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch04 import check_karras_sigmas

check_karras_sigmas(my_karras_sigmas)

# %% [markdown]
# The ten levels each spacing visits, on the model's own range of $\sigma$ (from $t = 0$ to
# $t = T - 1$ of the linear schedule): DDIM's leading steps start at $t = 900$ ($\sigma \approx 61$),
# below the noisiest level the model was trained on, and are evenly spread in $t$; $\rho = 1$
# leaves a single step below $\sigma = 17$; $\rho = 7$ starts at $\sigma_{\max}$ and still puts
# three of its ten levels below $\sigma = 0.4$, where the images' fine detail is decided.

# %%
n_show = 10
spacings = {
    f"Karras, rho = {r}": karras_sigmas(n_show, denoiser.sigma_min,
                                        denoiser.sigma_max, rho=r)[:-1]
    for r in P["rhos"]}
spacings["DDIM leading"] = denoiser.sigmas[timesteps(T, n_show)]
fig, ax = plt.subplots(figsize=(7, 3))
for k, (name, s) in enumerate(spacings.items()):
    ax.plot(range(n_show), s, marker="o", label=name,
            ls="--" if "DDIM" in name else "-")
ax.set(yscale="log", xlabel="step i", ylabel="sigma_i",
       title=f"the {n_show} noise levels visited before sigma = 0")
ax.legend(fontsize=8)
plt.show()
for name, s in spacings.items():
    print(f"{name:<17}", " ".join(f"{v:7.3f}" for v in s.tolist()))

# %% [markdown]
# **Which solver.** EDM's Algorithm 1 is Heun's method: an Euler step to the next level, then a
# correction with the average of the slopes at both ends (the trapezoid rule), except on the
# last step to $\sigma = 0$, where the slope cannot be evaluated and the step stays Euler's:
# $2N - 1$ network evaluations for $N$ steps.

# %% [markdown]
# ```{exercise} One Heun step
# :label: ex-heun-step
#
# Write `heun_step(denoiser, x, sigma, sigma_next)` for floats `sigma > sigma_next >= 0`: with
# $d = (x - D(x; \sigma))/\sigma$, the Euler step $x' = x + (\sigma' - \sigma)\,d$; if
# $\sigma' > 0$, correct it to $x + (\sigma' - \sigma)(d + d')/2$ with
# $d' = (x' - D(x'; \sigma'))/\sigma'$ (EDM Algorithm 1, lines 4-8). The checker runs it with two
# denoisers against one step of `course_lib.samplers.edm.edm_heun_sample`.
# ```
#
# ```{solution-start} ex-heun-step
# :class: dropdown
# ```

# %% tags=["solution"]
def heun_step(denoiser, x, sigma, sigma_next):
    d = (x - denoiser(x, sigma)) / sigma  # EDM Alg. 1, line 4
    x_next = x + (sigma_next - sigma) * d  # line 5: Euler
    if sigma_next == 0:
        return x_next
    d_next = (x_next - denoiser(x_next, sigma_next)) / sigma_next  # line 7
    return x + (sigma_next - sigma) * (d + d_next) / 2  # line 8


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch04 import check_heun_step

check_heun_step(heun_step)

# %% [markdown]
# The whole sampler is the step in a loop, from $x = \sigma_0 z$; checked against
# `course_lib.samplers.edm.edm_heun_sample` with a stand-in denoiser:

# %%
@torch.no_grad()
def sample_heun(denoiser, z, sigmas):
    x = sigmas[0] * z  # x = y + sigma_0 n with y negligible
    for sigma, sigma_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist()):
        x = heun_step(denoiser, x, sigma, sigma_next)
    return x


stand_in_D = lambda x, sigma: torch.tanh(x) / 2
z = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(4),
                dtype=torch.float64)
s8 = karras_sigmas(8, 0.01, 80.0)
torch.testing.assert_close(sample_heun(stand_in_D, z, s8),
                           edm_heun_sample(stand_in_D, s8[0] * z, s8))
print("inline Heun loop == course_lib.samplers.edm.edm_heun_sample")

# %% [markdown]
# Now chapter 3's model, on Karras sigmas ($\rho = 7$, the model's own $\sigma_{\min}$ and
# $\sigma_{\max}$), with Heun, Euler and DPM-Solver++(2M), and the FIDs of the previous section's
# DDIM and DPM-Solver++ (evenly spaced steps) beside them, against the number of network
# evaluations. Every run starts from the same noise $z$ (the VP samplers from $x_T = z$, the EDM
# ones from $x = \sigma_{\max} z$, the same point).

# %%
def karras(n, rho=7.0):
    return karras_sigmas(n, denoiser.sigma_min, denoiser.sigma_max, rho=rho)


edm_samplers = {
    "Heun, Karras": (lambda z, n, g: edm_heun_sample(
        denoiser, karras(n)[0] * z, karras(n)), lambda n: 2 * n - 1),
    "Euler, Karras": (lambda z, n, g: edm_euler_sample(
        denoiser, karras(n)[0] * z, karras(n)), lambda n: n),
    "DPM-Solver++(2M), Karras": (lambda z, n, g: edm_dpmpp_2m_sample(
        denoiser, karras(n)[0] * z, karras(n)), lambda n: n),
}


def fid_of(run, n, samples, bootstrap=0):
    """FID of `samples` images from run(z, n, generator), batched; the
    same starting noise z for every sampler (seeded per batch)."""
    t0 = time.perf_counter()
    g = torch.Generator(device).manual_seed(0)
    x = torch.cat([
        run(torch.randn(min(batch, samples - i), 3, 32, 32,
                        generator=torch.Generator().manual_seed(1000 + i)
                        ).to(device), n, g)
        for i in range(0, samples, batch)]).clamp(-1, 1)
    seconds = time.perf_counter() - t0
    score = fid(to_uint8(x), ref.mu, ref.sigma, f"{test_data.source_id} test",
                ref_count=ref.num_images, bootstrap=bootstrap)
    return score, seconds


for name, (run, nfe) in edm_samplers.items():
    for n in P["edm_grid"].get(name, ()):
        score, seconds = fid_of(run, n, n_fid, bootstrap=P["bootstrap"])
        results[name, n] = dict(fid=score.value, std=score.std, nfe=nfe(n),
                                seconds=seconds)
grids = {**P["grid"], **P["edm_grid"]}
fig, ax = plt.subplots(figsize=(7, 4))
for k, name in enumerate([*edm_samplers, "DDIM, eta = 0",
                          "DPM-Solver++(2M)"]):
    counts = grids.get(name, ())
    if not counts:  # not measured in this profile
        continue
    ax.plot([results[name, n]["nfe"] for n in counts],
            [results[name, n]["fid"] for n in counts], marker="o",
            ls="-" if name in edm_samplers else "--", color=f"C{k}",
            label=name if name in edm_samplers else f"{name} (even steps)")
ax.set(xscale="log", yscale="log", xlabel="network evaluations (NFE)",
       ylabel="FID", title=f"the same model, several samplers ({n_fid:,} "
                           f"samples per point, {profile.name})")
for axis in (ax.xaxis, ax.yaxis):  # plain numbers on the log axes
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(FormatStrFormatter("%g"))
ax.legend(fontsize=8)
plt.show()
print(f"{'sampler':<26}{'steps':>6}{'NFE':>5}{'FID':>9}{'sd':>7}"
      f"{'seconds':>9}")
for name in edm_samplers:
    for n in P["edm_grid"].get(name, ()):
        r = results[name, n]
        print(f"{name:<26}{n:>6}{r['nfe']:>5}{r['fid']:>9.2f}"
              f"{r['std']:>7.2f}{r['seconds']:>9.1f}")

# %% [markdown]
# **How much noise, and where.** Two knobs, each measured at a fixed budget
# (the profile's `sweep_steps` Heun steps) with the bootstrap standard deviation of each FID
# (the spread that a difference must exceed to mean anything): $\rho$, and EDM's *churn*
# (Algorithm 2), which before each step raises the noise level from $\sigma_i$ to
# $\hat\sigma_i = (1 + \gamma)\sigma_i$ by adding fresh noise of variance
# $\hat\sigma_i^2 - \sigma_i^2$, $\gamma = \min(S_\text{churn}/N, \sqrt 2 - 1)$ for
# $\sigma_i \in [S_{t\min}, S_{t\max}]$. Fresh noise lets the sampler correct errors of earlier
# steps, at the cost of some detail. We use EDM's range for its CIFAR-10 VP model,
# $S_{t\min} = 0.01$, $S_{t\max} = 1$, $S_\text{noise} = 1.007$ (EDM Table 5), and sweep
# $S_\text{churn}$ below the cap: EDM's own $S_\text{churn} = 30$ already reaches
# $\gamma = \sqrt 2 - 1$ at these step counts, where every larger value gives the same sampler.

# %%
n_sweep, sweep_samples = P["sweep_steps"], P["sweep_samples"]
sweeps = {}
for rho in P["rhos"]:
    sweeps["rho", rho] = fid_of(
        lambda z, n, g: edm_heun_sample(denoiser, karras(n, rho)[0] * z,
                                        karras(n, rho)),
        n_sweep, sweep_samples, bootstrap=P["bootstrap"])
for churn in P["churns"]:
    sweeps["churn", churn] = fid_of(
        lambda z, n, g: edm_heun_sample(
            denoiser, karras(n)[0] * z, karras(n), S_churn=churn,
            S_tmin=0.01, S_tmax=1.0, S_noise=1.007, generator=g),
        n_sweep, sweep_samples, bootstrap=P["bootstrap"])
if sweeps:
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharey=True)
    for ax, knob, label in [(axes[0], "rho", "rho"),
                            (axes[1], "churn", "S_churn")]:
        values = [v for k, v in sweeps if k == knob]
        scores = [sweeps[knob, v][0] for v in values]
        ax.errorbar(values, [s.value for s in scores],
                    yerr=[s.std for s in scores], marker="o", capsize=3)
        ax.set(xlabel=label, title=f"Heun, {n_sweep} steps "
                                   f"({2 * n_sweep - 1} NFE)")
    axes[0].set_ylabel(f"FID ({sweep_samples:,} samples, ± bootstrap sd)")
    plt.show()
else:
    print(f"No rho or churn sweep in the {profile.name} profile: their "
          f"{sweep_samples:,}-sample FIDs do not fit its time budget.")
for (knob, v), (score, _) in sweeps.items():
    gamma = (f" (gamma = {min(v / n_sweep, 2**0.5 - 1):.3f})"
             if knob == "churn" else "")
    print(f"{knob:>5} = {v:<4}: FID {score.value:8.2f} ± {score.std:.2f}"
          f"{gamma}")

# %% [markdown]
# **Why the last step's signal-to-noise ratio matters.** Every sampler above starts from pure
# noise, as if $\bar\alpha_{T} = 0$. The schedules we train with do not quite get there: at the
# last step a little of the image is left,

# %%
for name, kw in [("linear", {}), ("cosine", {}),
                 ("scaled_linear", dict(beta_start=0.00085, beta_end=0.012)),
                 ("scaled_linear", dict(beta_start=0.00085, beta_end=0.012,
                                        zero_terminal_snr=True))]:
    s = make_schedule(name, 1000, **kw)
    a = float(s.alpha_bar[-1])
    label = name + (", zero terminal SNR" if kw.get("zero_terminal_snr")
                    else "")
    print(f"{label:<34} alpha_bar_T = {a:.2e}, signal left "
          f"sqrt(alpha_bar_T) = {a ** 0.5:.4f}")

# %% [markdown]
# Stable Diffusion's `scaled_linear` schedule keeps 7% of the image at its last step. The
# network learns to read the image's mean colour from that leak, and at sampling time, fed pure
# noise, it keeps producing images of medium brightness: it cannot draw a black night or a white
# page {cite:p}`lin2024flawed`. Lin et al. rescale the schedule to $\bar\alpha_T = 0$ exactly
# (`make_schedule(..., zero_terminal_snr=True)`), which needs a $v$- or $x_0$-prediction (an
# $\epsilon$-model cannot recover $x_0$ from pure noise: Eq. 15 divides by
# $\sqrt{\bar\alpha_T} = 0$) and steps that start at $t = T - 1$ ("trailing" spacing). Our
# linear schedule keeps 0.6%, small enough that chapter 3's model does not show the effect.

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
        "DPM-Solver++(2M)": "dpmpp_2m", "Heun, Karras": "edm_heun_karras",
        "Euler, Karras": "edm_euler_karras",
        "DPM-Solver++(2M), Karras": "edm_dpmpp_2m_karras"}
paper_key = lambda name, n: ({"paper": f"ddim_cifar10_fid_{n}"}
                             if name == "DDIM, eta = 0"
                             and n in ddim_paper[name] else {})
report({
    **{f"fid_{slug[name]}_{n}": {
           "value": results[name, n]["fid"], "std": results[name, n]["std"],
           "samples": n_fid, "sampling_steps": results[name, n]["nfe"],
           "reference": f"{test_data.source_id} test, "
                        f"{ref.num_images:,} images",
           "description": f"{name}, {n} steps", **paper_key(name, n)}
       for name in samplers for n in P["grid"].get(name, ())},
    **{f"fid_{slug[name]}_{n}": {
           "value": results[name, n]["fid"], "std": results[name, n]["std"],
           "samples": n_fid, "sampling_steps": results[name, n]["nfe"],
           "reference": f"{test_data.source_id} test, "
                        f"{ref.num_images:,} images",
           "description": f"{name}, {n} steps"}
       for name in edm_samplers for n in P["edm_grid"].get(name, ())},
    **{f"inversion_psnr_{n}": {
           "value": inv["psnr"], "unit": "dB", "samples": P["invert_images"],
           "sampling_steps": 2 * n,
           "description": f"DDIM inversion then sampling, {n} steps each way"}
       for n, inv in inversions.items()},
    **{f"fid_edm_heun_{knob}_{v}": {
           "value": score, "sampling_steps": 2 * n_sweep - 1,
           "description": f"EDM Heun, {n_sweep} Karras steps, {knob} = {v}"}
       for (knob, v), (score, _) in sweeps.items()},
}, notes={"model": f"{meta['name']} ({meta['profile']}, "
                   f"trained on {meta['hardware']})"})

# %% [markdown]
# ## Summary
#
# - DDPM's loss only sees the marginals $q(x_t \mid x_0)$, so one trained model serves a family
#   of samplers; DDIM's (Eq. 12) has a noise knob $\eta$ and can skip steps.
# - Deterministic DDIM is Euler's method on the probability-flow ODE; higher-order solvers (Heun,
#   DPM-Solver++) reach a given FID with fewer network evaluations.
# - EDM separates a sampler's design into the noise levels (Karras sigmas, $\rho$), the solver
#   and the injected noise (churn); any trained model enters as a denoiser $D(x; \sigma)$. A
#   schedule whose last step keeps signal ($\bar\alpha_T > 0$) teaches the model something that
#   sampling from pure noise never provides.
# - A deterministic sampler is an invertible map between noise and images: inversion recovers the
#   noise of a real image, and slerp between noises interpolates between images.
#
# Next: chapter 5 adds class conditioning and classifier-free guidance to this U-Net.
