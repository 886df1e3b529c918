# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
# ---

# %% [markdown]
# # 8. Flow matching and rectified flow
#
# Chapters 1 to 7 reach the data by undoing a noising process, step by step. Flow matching
# {cite:p}`lipman2023flow,liu2023rectified` asks for less: pick *any* path from noise to data, say
# the straight line, and train a network to predict the velocity of samples moving along it. The
# sampler integrates that velocity field, an ordinary differential equation, from noise to data.
# Straight paths need few integration steps; "reflow" makes them straighter still. Stable
# Diffusion 3 and FLUX are trained this way {cite:p}`esser2024sd3`.
#
# **What you will build:** the linear path and its velocity (exercise); the conditional flow
# matching loss and why it trains the marginal field; rectified flow and minibatch optimal-transport
# flow on chapter 1's swiss roll, with trajectories and their straightness; an Euler sampler
# (exercise), midpoint, Heun and an adaptive solver; reflow, measured at 1, 2 and 4 steps; the link
# to diffusion (a flow read as a noise predictor and sampled by chapter 4's DDIM); and rectified
# flow on CIFAR-10 with chapter 3's U-Net, reflowed.
#
# **Time:** about two and a half minutes on a 2-core CPU in the `smoke` profile (the swiss roll trains for
# real; the CIFAR-10 U-Net is tiny and trained for a few hundred steps, so its samples are blobs).
# **Outputs on this page** were produced by executing it in the profile and on the hardware that
# the set-up cell prints.

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
import matplotlib.pyplot as plt
import torch

import course_lib
from course_lib.course.paths import cache_dir
from course_lib.data import load_cifar10, swiss_roll, to_uint8
from course_lib.samplers.ddim import ddim_sample, timesteps
from course_lib.evaluation.fid import fid, reference_stats
from course_lib.process.flow_matching import (
    ConditionalFlowMatcher, ExactOptimalTransportConditionalFlowMatcher,
    VariancePreservingConditionalFlowMatcher, flow_model_as_eps,
    flow_time_of_alpha_bar, velocity_to_x0)
from course_lib.recipes.ch03_ddpm import chapter3_unet
from course_lib.samplers.ode import dpm_solver_timesteps, dpmpp_2m_sample
from course_lib.recipes.ch08_flow import (chapter8_fm, chapter8_reflow,
                                          fm_recipe, reflow_recipe, train_fm,
                                          train_reflow)
from course_lib.samplers.flow import (flow_euler_sample, flow_heun_sample,
                                      flow_midpoint_sample,
                                      flow_odeint_sample, reflow_pairs,
                                      straightness)
from course_lib.evaluation.metrics import sliced_wasserstein
from course_lib.book.plotting import image_grid, scatter2d, show_jpeg
from course_lib.book.results import report
from course_lib.process.schedules import make_schedule

profile = course_lib.get_profile()
device = course_lib.default_device()
# the 2D model's sizes and training (course_lib.recipes.ch08_flow)
toy = fm_recipe(profile, "swiss_roll")
toy_reflow = reflow_recipe(profile, "swiss_roll")
cifar = fm_recipe(profile, "cifar10")
P = profile.choose(  # this chapter's evaluation sizes, per profile
    smoke=dict(eval_points=2_000, cifar_steps=(1, 4), fid_samples=64,
               fid_reference=200, bootstrap=4, straight_samples=8,
               compare_steps=4),  # FID: ~10 s each on CPU
    laptop=dict(eval_points=5_000, cifar_steps=(1, 2, 4, 20), fid_samples=500,
                fid_reference=10_000, bootstrap=20, straight_samples=64,
                compare_steps=20),
    colab=dict(eval_points=5_000, cifar_steps=(1, 2, 4, 20, 100),
               fid_samples=2_000, fid_reference=10_000, bootstrap=50,
               straight_samples=256, compare_steps=20),
    full=dict(eval_points=10_000, cifar_steps=(1, 2, 4, 20, 100),
              fid_samples=10_000, fid_reference=10_000, bootstrap=200,
              straight_samples=1_000, compare_steps=20),
)
course_lib.show_setup("8 · Flow matching and rectified flow", {
    "swiss roll": f"MLP {toy['mlp']}, {toy['steps']:,} steps of batch "
                  f"{toy['batch']} per model (rectified flow, "
                  f"OT-CFM at batch {toy['ot_batch']}, "
                  f"reflow on {toy_reflow['pairs']:,} couplings)",
    "CIFAR-10": f"'{cifar['unet']}' U-Net, {cifar['steps']:,} steps"
                + (f" from {cifar['init']}" if cifar["init"] else "")
                + " (loaded as an artifact, or trained), then reflowed",
    "evaluation": f"sliced Wasserstein on {P['eval_points']:,} points; "
                  f"FID of {P['fid_samples']:,} samples against "
                  f"{P['fid_reference']:,} test images at "
                  f"{P['cifar_steps']} Euler steps",
}, profile, device)

# %% [markdown]
# ## A path from data to noise, and its velocity
#
# The course's time runs from data at $s = 0$ to noise at $s = 1$ (the notation page). Join a data
# point $x_0$ and a noise sample $\epsilon \sim \mathcal N(0, I)$ by the straight line
#
# $$ x_s = (1 - s)\, x_0 + s\, \epsilon, \qquad u_s = \frac{d x_s}{ds} = \epsilon - x_0 . \qquad \text{(RF Eq. 1)} $$
#
# Drawing $x_0$, $\epsilon$ and $s$ at random makes a **probability path** $p_s$: the data at
# $s = 0$, pure noise at $s = 1$. Among all velocity fields that carry $p_1$ to $p_0$, one moves
# exactly along it: the *marginal* field $v(x, s) = \mathbb E[u_s \mid x_s = x]$, the average of the
# straight-line velocities of all pairs whose line passes through $x$ at time $s$. Integrating
# $dx/ds = v(x, s)$ from noise at $s = 1$ down to $s = 0$ then produces data.
#
# We cannot compute that expectation, but we do not need to: the **conditional flow matching** loss
# $\mathbb E\,\| v_\theta(x_s, s) - u_s \|^2$ regresses on the per-pair velocity, and since a
# regression's optimum is the conditional mean, it has the same minimizer and the same gradients as
# regressing on the marginal field (FM Theorem 2). Training is chapter 3's loop with a different
# target: $\epsilon - x_0$ instead of $\epsilon$.

# %% [markdown]
# ```{exercise} The linear path
# :label: ex-linear-path
#
# Write `linear_path(x0, eps, s)` returning `(x_s, u_s)` for data `x0` and noise `eps` of one shape
# `(B, ...)` and times `s` of shape `(B,)`: the point on the straight line at time $s$ and its
# velocity $dx_s/ds$.
# ```
#
# ```{solution-start} ex-linear-path
# :class: dropdown
# ```

# %% tags=["solution"]
def my_linear_path(x0, eps, s):
    s = s.reshape(-1, *([1] * (x0.ndim - 1)))  # (B, 1, ..., 1)
    return (1 - s) * x0 + s * eps, eps - x0  # RF Eq. 1 and its derivative


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch08 import check_linear_path

check_linear_path(my_linear_path)

# %% [markdown]
# `course_lib.process.flow_matching.ConditionalFlowMatcher` is this path; its variants are small subclasses
# that override the path (`compute_mu_t`, `compute_conditional_flow`) or the pairing of data and
# noise (`couple`), as in torchcfm {cite:p}`tong2024improving`, whose matchers our tests match in
# float64 (with its time reversed: torchcfm's $t$ is our $1 - s$).

# %% tags=["nbval-check-output"]
g = torch.Generator().manual_seed(0)
x0, eps, s = (torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g),
              torch.rand(6, generator=g))
_, x_s, u_s = ConditionalFlowMatcher().sample_location_and_conditional_flow(
    x0, eps, s)
torch.testing.assert_close((x_s, u_s), my_linear_path(x0, eps, s))
print("my linear path equals course_lib's ConditionalFlowMatcher")

# %% [markdown]
# ## Rectified flow on the swiss roll
#
# Chapter 1's data and MLP, trained with this loss (the model is told the time as $1000\,s$, the
# step units its sinusoidal features were made for). Two ways to pair data and noise in a batch:
#
# - **independent** pairs, as above: rectified flow, or I-CFM;
# - **minibatch optimal transport** (OT-CFM, {cite:t}`tong2024improving`): within each batch,
#   re-pair noise and data by the assignment that minimizes the total squared distance (an exact
#   assignment problem, solved with SciPy). Paired lines then rarely cross, so the marginal field is
#   already nearly straight. The exact assignment costs about the cube of the batch size on the CPU
#   each step, so a profile may train OT-CFM at a smaller batch (`ot_batch`; 256 in `colab`).

# %%
data = swiss_roll(toy["train_points"],
                  generator=torch.Generator().manual_seed(1)).to(device)
flows = {}
# OT-CFM at its own batch size: the exact assignment costs ~batch^3 a step
for name, matcher, batch in (
        ("rectified flow", ConditionalFlowMatcher(), toy["batch"]),
        ("OT-CFM", ExactOptimalTransportConditionalFlowMatcher(),
         toy["ot_batch"])):
    run = train_fm({**toy, "batch": batch}, data, matcher)
    flows[name] = run.ema.eval()
    print(f"{name}: {toy['steps']:,} steps of batch {batch} in "
          f"{run.seconds:.0f} s, final loss {run.history[-1][1]:.3f}")

# %% [markdown]
# The sampler integrates $dx/ds = v_\theta(x, s)$ from $s = 1$ to $s = 0$. The simplest integrator
# is Euler's: $x \leftarrow x + (s_{i+1} - s_i)\, v_\theta(x, s_i)$, a negative step since time runs
# down.

# %% [markdown]
# ```{exercise} An Euler sampler for the flow ODE
# :label: ex-flow-euler
#
# Write `euler(v, noise, times)` that starts from `noise` and, for each consecutive pair
# $(s, s_{\text{next}})$ of the grid `times` (a tensor from 1 down to 0, not necessarily uniform),
# takes the step $x \leftarrow x + (s_{\text{next}} - s)\, v(x, s)$; `v(x, s)` takes a float `s`.
# Return the final `x`.
# ```
#
# ```{solution-start} ex-flow-euler
# :class: dropdown
# ```

# %% tags=["solution"]
def my_euler(v, noise, times):
    x = noise
    for s_cur, s_next in zip(times[:-1].tolist(), times[1:].tolist()):
        # one Euler step, towards the data
        x = x + (s_next - s_cur) * v(x, s_cur)
    return x


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch08 import check_euler_sampler

check_euler_sampler(my_euler)

# %%
model = flows["rectified flow"]
noise = torch.randn(P["eval_points"], 2,
                    generator=torch.Generator().manual_seed(2)).to(device)
grid = torch.linspace(1, 0, 21)
velocity = lambda x, s: model(  # noqa: E731
    x, torch.full((len(x),), 1000.0 * s, device=device))
with torch.no_grad():
    torch.testing.assert_close(my_euler(velocity, noise, grid),
                               flow_euler_sample(model, noise, grid))
print("my Euler sampler equals course_lib's flow_euler_sample")
truth = swiss_roll(P["eval_points"],
                   generator=torch.Generator().manual_seed(3))
sw = lambda x: float(sliced_wasserstein(  # noqa: E731
    x, truth, generator=torch.Generator().manual_seed(4)))
floor = sw(swiss_roll(P["eval_points"],
                      generator=torch.Generator().manual_seed(5)))
print("sliced Wasserstein distance between two draws of the data "
      f"(the floor): {floor:.3f}")

# %% [markdown]
# ## Trajectories and straightness
#
# {cite:t}`liu2023rectified` measure how far sampled paths are from straight lines by their
# **straightness** $S = \int_0^1 \mathbb E\,\| (x_1 - x_0) - \tfrac{dx}{ds} \|^2 ds$, zero for
# paths that are straight and travelled at constant speed (and so integrated exactly by a single
# Euler step). Independent pairs give crossing lines whose average bends; OT pairing does not.

# %%
fine = torch.linspace(1, 0, 101)
fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
curves = {}
for ax, (name, m) in zip(axes, flows.items()):
    x_end, traj = flow_euler_sample(m, noise, fine, keep_trajectory=True)
    curves[name] = dict(straightness=straightness(traj, fine))
    for i in range(60):
        ax.plot(traj[:, i, 0].cpu(), traj[:, i, 1].cpu(), lw=0.6, alpha=0.7,
                color="tab:blue")
    scatter2d(ax, x_end[:60],
              title=f"{name}: S = {curves[name]['straightness']:.3f}")
    ax.scatter(noise[:60, 0].cpu(), noise[:60, 1].cpu(), s=4, color="gray")
fig.suptitle("ODE trajectories from noise (gray) to samples, 100 Euler steps")
show_jpeg(fig)

# %% [markdown]
# ## Samplers and the number of steps
#
# The same trained field, integrated with Euler (one network evaluation per step), the midpoint
# rule and Heun's method (two per step, second order), and Dormand-Prince's adaptive solver from
# `torchdiffeq` (it picks its own steps to a tolerance and reports how many evaluations it used).

# %%
rows = []
for name, m in flows.items():
    for n in (1, 2, 5, 20):
        times = torch.linspace(1, 0, n + 1)
        rows.append((name, "Euler", n, sw(flow_euler_sample(m, noise, times))))
        rows.append((name, "midpoint", 2 * n,
                     sw(flow_midpoint_sample(m, noise, times))))
        rows.append((name, "Heun", 2 * n - 1,
                     sw(flow_heun_sample(m, noise, times))))
    x_ode, nfe = flow_odeint_sample(m, noise, rtol=1e-4, atol=1e-4)
    rows.append((name, "dopri5", nfe, sw(x_ode)))
    curves[name]["nfe_dopri5"], curves[name]["sw_dopri5"] = nfe, rows[-1][3]
fig, ax = plt.subplots(figsize=(6, 3.6))
for name in flows:
    for solver, marker in (("Euler", "o-"), ("midpoint", "s-"),
                           ("Heun", "^-")):
        pts = [(r[2], r[3]) for r in rows if r[0] == name and r[1] == solver]
        ax.plot(*zip(*pts), marker, label=f"{name}, {solver}", alpha=0.8)
ax.axhline(floor, color="gray", ls=":", label="floor (two data draws)")
ax.set(xscale="log", yscale="log", xlabel="network evaluations",
       ylabel="sliced Wasserstein to data",
       title="swiss roll: quality against evaluations")
ax.legend(fontsize=7)
show_jpeg(fig)
for name in flows:
    print(f"{name}: dopri5 used {curves[name]['nfe_dopri5']} evaluations, "
          f"SW {curves[name]['sw_dopri5']:.3f}")

# %% [markdown]
# ## Reflow
#
# Rectified flow's trained ODE defines a deterministic **coupling**: each noise sample $\epsilon$
# goes to one sample $x_0$. Training a new flow on these fixed pairs (RF Alg. 1), rather than on
# independent ones, gives a "2-rectified" flow whose lines no longer cross, so its paths are nearly
# straight and a single Euler step goes a long way. We start it from the first flow's weights.

# %%
pairs_noise = torch.randn(
    toy_reflow["pairs"], 2,
    generator=torch.Generator().manual_seed(6)).to(device)
pair_x0, pair_eps = reflow_pairs(
    flows["rectified flow"], pairs_noise,
    torch.linspace(1, 0, toy_reflow["sample_steps"] + 1))
reflowed = train_reflow(toy_reflow, pair_x0, pair_eps,
                        model=flows["rectified flow"])
flows["2-rectified flow"] = reflowed.ema.eval()
_, traj2 = flow_euler_sample(flows["2-rectified flow"], noise, fine,
                             keep_trajectory=True)
curves["2-rectified flow"] = dict(straightness=straightness(traj2, fine))
print(f"reflow: {toy_reflow['pairs']:,} couplings from "
      f"{toy_reflow['sample_steps']} Euler steps, "
      f"{toy_reflow['steps']:,} training steps in {reflowed.seconds:.0f} s")
print(f"{'':18s}{'straightness':>13s}"
      + "".join(f"{f'SW, {n} step' + ('s' if n > 1 else ''):>13s}"
                for n in (1, 2, 4)))
swiss = {}
for name, m in flows.items():
    swiss[name] = {n: sw(flow_euler_sample(m, noise,
                                           torch.linspace(1, 0, n + 1)))
                   for n in (1, 2, 4)}
    print(f"{name:18s}{curves[name]['straightness']:>13.4f}"
          + "".join(f"{swiss[name][n]:>13.3f}" for n in (1, 2, 4)))
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
for ax, (name, m) in zip(axes, flows.items()):
    scatter2d(ax, flow_euler_sample(m, noise, torch.linspace(1, 0, 2)),
              title=f"{name}\none Euler step")
show_jpeg(fig)

# %% [markdown]
# ## The link to diffusion
#
# The linear path is a diffusion in disguise. Since $\epsilon - x_0 = u_s$ and
# $x_s = (1 - s) x_0 + s \epsilon$, a velocity predictor gives a data and a noise predictor,
# $\hat x_0 = x_s - s\, v$ and $\hat \epsilon = x_s + (1 - s)\, v$ (`velocity_to_x0`,
# `velocity_to_eps`). And DDPM's $x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon$,
# divided by $\sqrt{\bar\alpha_t} + \sqrt{1 - \bar\alpha_t}$, *is* a point of the linear path, at
# $s = \sqrt{1 - \bar\alpha_t} / (\sqrt{\bar\alpha_t} + \sqrt{1 - \bar\alpha_t})$. So a flow model can
# be run by chapter 4's DDIM sampler, read as $\epsilon_\theta(x_t, t)$ (`flow_model_as_eps`).
# Going the other way, the variance-preserving path $x_s = \cos(\tfrac{\pi s}{2}) x_0 + \sin(\tfrac{\pi s}{2}) \epsilon$
# has $\bar\alpha = \cos^2(\tfrac{\pi s}{2})$: chapter 3's cosine schedule, give or take its offset.

# %% tags=["nbval-check-output"]
schedule = make_schedule("linear", 1000)
x0, eps = (torch.randn(4, 2, dtype=torch.float64),
           torch.randn(4, 2, dtype=torch.float64))
t = torch.tensor([0, 250, 500, 999])
ab = schedule.alpha_bar[t].unsqueeze(1)
x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps  # DDPM Eq. 4
s_of_t = flow_time_of_alpha_bar(schedule.alpha_bar[t])
_, x_s, u_s = ConditionalFlowMatcher().sample_location_and_conditional_flow(
    x0, eps, s_of_t)
torch.testing.assert_close(x_t / (ab.sqrt() + (1 - ab).sqrt()), x_s)
# the exact velocity gives x0 back
torch.testing.assert_close(velocity_to_x0(u_s, x_s, s_of_t.unsqueeze(1)), x0)
vp = VariancePreservingConditionalFlowMatcher()
s_vp = torch.tensor([0.0, 0.3, 0.7, 1.0], dtype=torch.float64)
_, x_vp, _ = vp.sample_location_and_conditional_flow(x0, eps, s_vp)
alpha_bar_vp = torch.cos(torch.pi * s_vp / 2) ** 2
torch.testing.assert_close(
    x_vp, alpha_bar_vp.sqrt().unsqueeze(1) * x0
    + (1 - alpha_bar_vp).sqrt().unsqueeze(1) * eps)
print("DDPM's x_t, rescaled, is the linear path at s(t); the VP path is a "
      "diffusion with alpha_bar = cos^2(pi s / 2)")

# %%
with torch.no_grad():
    x_ddim = ddim_sample(flow_model_as_eps(flows["rectified flow"], schedule),
                         schedule, noise, timesteps(1000, 20, "trailing"))
euler_20 = [r[3] for r in rows if r[:3] == ("rectified flow", "Euler", 20)][0]
print(f"the swiss-roll flow sampled by chapter 4's DDIM (20 steps), "
      f"read as an eps model: SW {sw(x_ddim):.3f} "
      f"(Euler, 20 steps: {euler_20:.3f})")

# %% [markdown]
# ## Rectified flow on CIFAR-10
#
# The same loss with chapter 3's U-Net on CIFAR-10 pixels: `chapter8_fm` loads the trained model
# (an artifact; it trains it if missing, with chapter 3's recipe and the flow matching loss), and
# `chapter8_reflow` the 2-rectified flow made from it. On a CPU (`smoke` and `laptop`) the flow does
# not start from scratch: it fine-tunes chapter 3's trained U-Net, whose features serve a velocity
# as well as a noise prediction (the same network, time running the same way: $1000\,s$ against
# chapter 3's $t$), in hours instead of chapter 3's 12.6 CPU-hours. FID of Euler samples at a few
# step counts, with bootstrap standard deviations, and each flow's straightness on 50-step paths:

# %%
fm_model, fm_meta = chapter8_fm(profile, device)
rf_model, rf_meta = chapter8_reflow(profile, device)
test_data = load_cifar10("test", subset=P["fid_reference"]
                         if P["fid_reference"] < 10_000 else None)
ref = reference_stats(test_data.images[: P["fid_reference"]].to(device),
                      f"{test_data.source_id}-test-{P['fid_reference']}",
                      cache_dir() / "fid")
z = torch.randn(P["fid_samples"], 3, 32, 32,
                generator=torch.Generator().manual_seed(7)).to(device)
cifar_fid, cifar_straight, shown = {}, {}, []
for name, m in (("1-rectified", fm_model), ("2-rectified", rf_model)):
    for n in P["cifar_steps"]:
        # fp16/bf16 on a GPU (autocast), float32 on a CPU
        with course_lib.sampling_autocast(device):
            x = flow_euler_sample(m, z, torch.linspace(1, 0, n + 1))
        cifar_fid[(name, n)] = fid(to_uint8(x), ref.mu, ref.sigma,
                                   f"{test_data.source_id} test",
                                   ref_count=ref.num_images,
                                   bootstrap=P["bootstrap"])
        shown.append(x[:8])
    grid50 = torch.linspace(1, 0, 51)
    with course_lib.sampling_autocast(device):
        _, traj = flow_euler_sample(m, z[: P["straight_samples"]], grid50,
                                    keep_trajectory=True)
    cifar_straight[name] = straightness(traj.float(), grid50)
    print(f"{name}: S = {cifar_straight[name]:.2f}; "
          + "; ".join(f"{n} steps FID {cifar_fid[(name, n)].value:.1f}"
                      f" ± {cifar_fid[(name, n)].std:.1f}"
                      for n in P["cifar_steps"]))
print(f"({P['fid_samples']} samples against {P['fid_reference']} test "
      f"images; trained {fm_meta['config']['recipe']['steps']:,} "
      f"steps in {fm_meta['train_seconds']:.0f} s, reflowed "
      f"{rf_meta['config']['recipe']['steps']:,} steps on "
      f"{rf_meta['config']['recipe']['pairs']:,} couplings in "
      f"{rf_meta['train_seconds']:.0f} s)")
image_grid(torch.cat(shown).cpu(), nrow=8, figsize=(8, 0.9 * len(shown)),
           title="rows: 1-rectified, then 2-rectified, at "
                 + ", ".join(map(str, P["cifar_steps"])) + " Euler steps")
show_jpeg()

# %% [markdown]
# Against diffusion on the same network: chapter 3's U-Net sampled with chapter 4's DPM-Solver++(2M)
# at the same number of steps, from the same noise, scored the same way.

# %%
unet3, meta3 = chapter3_unet(profile, device)
unet3.eval()
run3, k = meta3["config"]["recipe"], P["compare_steps"]
with course_lib.sampling_autocast(device):
    x = dpmpp_2m_sample(unet3, make_schedule(run3["schedule"],
                                             run3["num_steps"]),
                        z, dpm_solver_timesteps(run3["num_steps"], k))
fid_ddpm = fid(to_uint8(x), ref.mu, ref.sigma, f"{test_data.source_id} test",
               ref_count=ref.num_images, bootstrap=P["bootstrap"])
ratio = cifar_fid[("1-rectified", k)].value / fid_ddpm.value
print(f"chapter 3's U-Net, DPM-Solver++(2M), {k} steps: "
      f"FID {fid_ddpm.value:.1f} ± {fid_ddpm.std:.1f}")
print(f"the 1-rectified flow, {k} Euler steps: "
      f"{cifar_fid[('1-rectified', k)].value:.1f}, {ratio:.2f} times that")

# %% [markdown]
# The papers' CIFAR-10 numbers (Flow Matching's OT path with an adaptive solver) are on the Results
# page next to ours. Our `smoke` numbers, from a tiny U-Net trained for seconds, only show that the
# code path runs; the swiss roll above, trained for real even in `smoke`, is where reflow's effect
# is measured at this profile.

# %%
report({
    **{f"swiss_sw_{name.split()[0].replace('-', '')}_{n}step": {
        "value": swiss[name][n], "samples": P["eval_points"],
        "sampling_steps": n,
        "description": f"{name}, Euler (floor {floor:.3f})"}
       for name in flows for n in (1, 2, 4)},
    **{f"swiss_straightness_{name.split()[0].replace('-', '')}": {
        "value": curves[name]["straightness"],
        "description": f"{name}, 100 Euler steps"} for name in flows},
    **{f"cifar_fid_{name.split('-')[0]}rf_{n}step": {
        "value": cifar_fid[(name, n)], "sampling_steps": n,
        "description": f"{name} flow, Euler"}
       for name in ("1-rectified", "2-rectified")
       for n in P["cifar_steps"] if n <= 20},
    "cifar_fid_ddpm_dpmpp": {
        "value": fid_ddpm, "sampling_steps": P["compare_steps"],
        "description": "chapter 3's U-Net, DPM-Solver++(2M), same noise"},
    **{f"cifar_straightness_{name.split('-')[0]}rf": {
        "value": cifar_straight[name], "samples": P["straight_samples"],
        "description": f"{name} CIFAR-10 flow, 50 Euler steps"}
       for name in ("1-rectified", "2-rectified")},
}, notes={"training": f"swiss roll {toy['steps']:,} steps per model; "
                      "CIFAR-10 "
                      f"{fm_meta['config']['recipe']['steps']:,} "
                      "steps + reflow "
                      f"{rf_meta['config']['recipe']['steps']:,} "
                      f"on {device}"})

# %% [markdown]
# ## Summary
#
# - Flow matching regresses a network on the velocity of a chosen path between data and noise; the
#   conditional (per-pair) target trains the marginal field. The linear path gives rectified flow.
# - Sampling integrates an ODE: Euler, midpoint, Heun or an adaptive solver. Straighter paths
#   (minibatch OT pairing, or reflow on the model's own couplings) need fewer steps.
# - The linear path is a rescaled diffusion: a flow model is also a noise predictor, and chapter 4's
#   samplers run it.
#
# Next: chapter 9 distils chapter 6's text-to-image model into a few-step latent consistency model.
