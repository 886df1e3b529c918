# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
# ---

# %% [markdown]
# # 9. Consistency models and latent consistency models
#
# A diffusion or flow model samples by integrating an ODE in tens of steps. A **consistency
# model** {cite:p}`song2023consistency` learns the ODE's solution map instead: from *any* point
# $x_t$ of a trajectory, jump straight to the trajectory's origin $x_0$. One network evaluation
# then gives a sample, and a few more refine it. **Latent consistency models** (LCM,
# {cite:t}`luo2023lcm`) distil a text-to-image latent diffusion model this way, with its
# classifier-free guidance folded in; LCM-LoRA {cite:p}`luo2023lcmlora` does it with a few
# adapter parameters. This chapter distils chapter 6's text-to-image model.
#
# **What you will build:** the consistency function and its boundary condition (exercise); the
# skipping-step DDIM solver on the teacher's guided ODE; latent consistency distillation with the
# guidance weight as an input and an EMA target network; multi-step LCM sampling (exercise) at 1,
# 2, 4 and 8 steps against the teacher at 50, with FID and wall time; LCM-LoRA.
#
# **Time:** about two to three minutes on a 2-core CPU in the `smoke` profile (the teacher is chapter 6's
# tiny model, loaded; the student is distilled for a few hundred steps: the samples are blobs, the
# code path is the real one). In the `laptop` profile the page distils live for its first steps
# and loads the full distillation, published with the course. **Outputs on this page** were
# produced by executing it in the profile and on the hardware that the set-up cell prints.

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
from course_lib.data.captions import caption_images, tokenize
from course_lib.process.consistency import (c_out, c_skip, consistency_output,
                                            lcm_grid)
from course_lib.samplers.consistency import lcm_sample, lcm_timesteps
from course_lib.course.paths import cache_dir
from course_lib.data import load_cifar10, to_uint8
from course_lib.process.diffusion import eps_to_x0
from course_lib.samplers.ddim import ddim_sample, timesteps
from course_lib.evaluation.fid import fid, reference_stats
from course_lib.data.latents import decode_latents, encode_images
from course_lib.recipes.ch06_ldm import chapter6_ldm, check_autoencoder
from course_lib.process.lcm_distillation import guided_ddim_step
from course_lib.recipes.ch09_lcm import (chapter9_lcm, distill_lcm,
                                         lcm_lora_student, lcm_recipe,
                                         one_step_error)
from course_lib.models.lora import trainable_parameters
from course_lib.book.plotting import image_grid, show_jpeg
from course_lib.recipes.ch02_vae import chapter2_vae
from course_lib.book.results import report
from course_lib.book.runs import show_run
from course_lib.process.schedules import make_schedule
from course_lib.process.text_guidance import text_cfg_model

profile = course_lib.get_profile()
device = course_lib.default_device()
# distillation settings (course_lib.recipes.ch09_lcm)
recipe = lcm_recipe(profile)
P = profile.choose(  # this chapter's evaluation sizes, per profile
    smoke=dict(live_steps=40, w=3.0, steps=(1, 2, 4, 8), teacher_steps=50,
               fid_samples=64, fid_reference=200, bootstrap=4,
               lora_steps=150),
    laptop=dict(live_steps=100, w=3.0, steps=(1, 2, 4, 8), teacher_steps=50,
                fid_samples=500, fid_reference=10_000, bootstrap=20,
                lora_steps=1_000),
    colab=dict(live_steps=200, w=3.0, steps=(1, 2, 4, 8), teacher_steps=50,
               fid_samples=2_000, fid_reference=10_000, bootstrap=50,
               lora_steps=2_000),
    full=dict(live_steps=500, w=3.0, steps=(1, 2, 4, 8), teacher_steps=50,
              fid_samples=10_000, fid_reference=10_000, bootstrap=200,
              lora_steps=10_000),
)
course_lib.show_setup(
    "9 · Consistency models and latent consistency models", {
    "teacher": "chapter 6's text-to-image latent model "
               "(loaded as an artifact, trained again if missing)",
    "distillation": f"{recipe['steps']:,} steps of batch {recipe['batch']} "
                    f"({P['live_steps']:,} live, the full run trained "
                    "or loaded), "
                    f"w drawn in [{recipe['w_min']}, {recipe['w_max']}], "
                    "skipping-step DDIM solver on "
                    f"{recipe['original_inference_steps']} steps",
    "evaluation": f"LCM at {P['steps']} steps against the teacher's DDIM at "
                  f"{P['teacher_steps']} (w = {P['w']}): FID of "
                  f"{P['fid_samples']:,} samples against "
                  f"{P['fid_reference']:,} test images, and wall time",
    "LCM-LoRA": "rank-4 adapters on the teacher's attention, "
                f"{P['lora_steps']:,} steps",
}, profile, device)

# %% [markdown]
# ## The consistency function
#
# The teacher's probability-flow ODE (chapter 4) carries every noisy latent $z_t$ to one clean
# latent. The **consistency function** $f(z_t, t)$ returns that end point, so it is the same for all
# points of a trajectory (**self-consistency**), and at the data end it is the identity,
# $f(z, 0) = z$ (the **boundary condition**). The boundary condition is built into the
# parameterization (CM Eq. 7; LCM Eq. 9):
#
# $$ f_\theta(z_t, t) = c_{\text{skip}}(t)\, z_t + c_{\text{out}}(t)\, \hat z_0(z_t, t), \qquad
#    c_{\text{skip}}(t) = \frac{\sigma_d^2}{(10 t)^2 + \sigma_d^2}, \quad
#    c_{\text{out}}(t) = \frac{10 t}{\sqrt{(10 t)^2 + \sigma_d^2}}, $$
#
# with $\sigma_d = 0.5$ and $\hat z_0$ the network's clean estimate from its noise prediction
# (chapter 3). At $t = 0$, $c_{\text{skip}} = 1$ and $c_{\text{out}} = 0$; LCM's factor 10 on the step
# makes the switch abrupt, so from $t = 1$ on $f$ is essentially $\hat z_0$.

# %% [markdown]
# ```{exercise} The consistency function
# :label: ex-consistency
#
# Write `consistency(x_t, x0_hat, t)` returning $c_{\text{skip}}(t)\, x_t + c_{\text{out}}(t)\, \hat x_0$ for
# `x_t` and `x0_hat` of shape `(B, ...)` and integer steps `t` of shape `(B,)`, with the scalings
# above ($\sigma_d = 0.5$, the step multiplied by 10).
# ```
#
# ```{solution-start} ex-consistency
# :class: dropdown
# ```

# %% tags=["solution"]
def my_consistency(x_t, x0_hat, t):
    # (B, 1, ..., 1)
    st = 10.0 * t.double().reshape(-1, *([1] * (x_t.ndim - 1)))
    c_skip_t = 0.25 / (st ** 2 + 0.25)  # sigma_d^2 / ((10 t)^2 + sigma_d^2)
    c_out_t = st / (st ** 2 + 0.25).sqrt()
    return (c_skip_t * x_t + c_out_t * x0_hat).to(x_t.dtype)  # LCM Eq. 9


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch09 import check_consistency_function

check_consistency_function(my_consistency)

# %%
# chapter 6's schedule (the teacher's)
schedule = make_schedule("linear", 1000)
t = torch.tensor([0, 1, 19, 500, 999])
z_t, eps = (torch.randn(5, 4, 8, 8, dtype=torch.float64),
            torch.randn(5, 4, 8, 8, dtype=torch.float64))
mine = my_consistency(
    z_t, eps_to_x0(eps, z_t, schedule.alpha_bar[t].reshape(-1, 1, 1, 1)), t)
torch.testing.assert_close(mine, consistency_output(schedule, eps, z_t, t))
steps_all = torch.arange(0, 30)
fig, ax = plt.subplots(figsize=(5.5, 2.8))
ax.plot(steps_all, c_skip(steps_all), "o-", label="$c_{skip}(t)$")
ax.plot(steps_all, c_out(steps_all), "s-", label="$c_{out}(t)$")
ax.set(xlabel="step t", title="the boundary scalings switch within one step",
       xlim=(-0.5, 10))
ax.legend()
show_jpeg(fig)
print("my consistency function equals course_lib's consistency_output")

# %% [markdown]
# ## Distilling a guided teacher
#
# **Consistency distillation** (CM Alg. 2) trains $f_\theta$ to be self-consistent along the
# teacher's trajectories: take a latent $z_{t_{n+k}}$ (a training latent noised to step
# $t_{n+k}$), move it one solver step along the teacher's ODE to $z_{t_n}$, and ask
# $f_\theta(z_{t_{n+k}}) = f_{\theta^-}(z_{t_n})$, where $\theta^-$ is an exponential moving average of
# $\theta$ (the **target network**, which keeps the regression target slowly moving). Chained from
# the boundary up, that makes $f$ the solution map. LCM's additions (Sec. 4):
#
# - **Skipping steps:** the solver step spans $k = 20$ steps (50 steps over $T = 1000$), one DDIM
#   step, so the teacher is called once per training example, not twenty times.
# - **Guidance folded in:** the teacher's step follows the classifier-free *guided* ODE,
#   $\hat\epsilon = \epsilon_\varnothing + w(\epsilon_c - \epsilon_\varnothing)$ (chapter 5), with $w$
#   drawn per example, and the student takes $w$ as an extra input (an embedding of $w$ added to its
#   time embedding, zero at the start, so the student starts as the teacher's conditional model).
# - **Latents:** all of it happens in the latent space of chapter 6's autoencoder (chapter 2's VAE).

# %%
teacher, teacher_meta = chapter6_ldm(profile, device)
vae, vae_meta = chapter2_vae(profile, device)
check_autoencoder(teacher_meta, vae_meta)  # trained on these latents
scale = teacher_meta["config"]["latent_scale"]  # the teacher's kappa
train_data = load_cifar10("train", subset=recipe["train_images"])
mu, logvar = encode_images(vae, train_data.images.to(device))
tokens = tokenize(caption_images(train_data.images, train_data.labels),
                  teacher_meta["config"]["recipe"]["max_tokens"])
grid = lcm_grid(1000, recipe["original_inference_steps"])
print(f"teacher {teacher_meta['name']} "
      f"({sum(p.numel() for p in teacher.parameters()) / 1e6:.2f}M "
      "parameters), "
      f"latent scale {scale:.4f}; LCM's skipping grid: "
      f"{grid[:3].tolist()} ... {grid[-2:].tolist()} "
      f"(k = {int(grid[1] - grid[0])})")

# %% [markdown]
# One step of the skipping-step solver, by hand: the teacher's guided noise prediction in one
# batched pass (chapter 6's `text_cfg_model`), then a DDIM step (chapter 4) from $t_{n+k}$ to $t_n$.

# %%
z = scale * mu[:4].to(device)
t_from, t_to = (torch.full((4,), 519, device=device),
                torch.full((4,), 499, device=device))
w = torch.tensor([1.0, 2.0, 3.0, 5.0], device=device)
z_noisy = (schedule.alpha_bar[519].sqrt().float() * z
           + (1 - schedule.alpha_bar[519]).sqrt().float()
           * torch.randn_like(z))
with torch.no_grad():
    eps_hat = text_cfg_model(teacher, tokens[:4].to(device), w)(
        z_noisy, t_from)  # eps_u + w (eps_c - eps_u)
a_from, a_to = float(schedule.alpha_bar[519]), float(schedule.alpha_bar[499])
z0_hat = (z_noisy - (1 - a_from) ** 0.5 * eps_hat) / a_from ** 0.5
# DDIM Eq. 12, eta = 0
mine = a_to ** 0.5 * z0_hat + (1 - a_to) ** 0.5 * eps_hat
torch.testing.assert_close(mine, guided_ddim_step(teacher, schedule, z_noisy,
                                                  t_from, t_to,
                                                  tokens[:4].to(device), w))
print("my guided skipping step equals course_lib's guided_ddim_step")

# %% [markdown]
# The page distils live for the recipe's first steps (the same seed, data order and warm-up as
# the full run); `chapter9_lcm` loads the full distillation when it is in the course cache or
# published with the course, and runs it now otherwise, with a checkpoint so that an interrupted
# run resumes (`scripts/train.py ch09_lcm --profile laptop` made the published one).

# %%
t0 = time.perf_counter()
live = distill_lcm(recipe, teacher, mu, logvar, tokens.to(device), scale,
                   schedule=schedule, steps=P["live_steps"])
print(f"{P['live_steps']:,} steps of batch {recipe['batch']} in "
      f"{time.perf_counter() - t0:.0f} s on {device}")
student, meta = chapter9_lcm(
    profile, device, stand_in=False,
    checkpoint_path=cache_dir() / "checkpoints"
    / f"ch09_lcm-{profile.name}.pt")
student.eval()
if meta["config"]["teacher_sha256"] != teacher_meta["sha256"]:
    raise ValueError(f"{meta['name']} was distilled from another teacher "
                     f"than {teacher_meta['name']}: run chapter 6 and this "
                     "chapter again")
extra = (sum(p.numel() for p in student.parameters())
         - sum(p.numel() for p in teacher.parameters()))
print(f"the student adds {extra:,} parameters (the w embedding's "
      "projection) to the teacher's")
show_run(meta, live, what="latent consistency model",
         ylabel="distillation loss (window mean)")
plt.show()

# %% [markdown]
# ## Sampling in a few steps
#
# One step is $f_\theta(z_T, T)$. More steps alternate a jump to the origin with a re-noising to a
# lower step (LCM Alg. 3; CM Alg. 1): from the estimate $\hat z_0$, draw
# $z_{t'} = \sqrt{\bar\alpha_{t'}}\, \hat z_0 + \sqrt{1 - \bar\alpha_{t'}}\, \epsilon$ with fresh noise,
# and jump again. The steps are diffusers' `LCMScheduler`'s, whose sampler ours matches step for
# step in the tests.

# %% [markdown]
# ```{exercise} Re-noising between jumps
# :label: ex-renoise
#
# Write `renoise(denoised, alpha_bar_next, noise)` returning the latent at the next step from the
# current estimate of the clean latent, its $\bar\alpha$ (a float) and fresh standard Gaussian noise.
# ```
#
# ```{solution-start} ex-renoise
# :class: dropdown
# ```

# %% tags=["solution"]
def my_renoise(denoised, alpha_bar_next, noise):
    return (alpha_bar_next ** 0.5 * denoised
            + (1 - alpha_bar_next) ** 0.5 * noise)  # DDPM Eq. 4


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch09 import check_renoise

check_renoise(my_renoise)

# %%
test_data = load_cifar10("test", subset=P["fid_reference"]
                         if P["fid_reference"] < 10_000 else None)
n = P["fid_samples"]
pick = torch.randint(0, len(test_data.images), (n,),
                     generator=torch.Generator().manual_seed(1))
prompts = tokenize(caption_images(test_data.images[pick],
                                  test_data.labels[pick]),
                   tokens.shape[1]).to(device)
z_T = torch.randn(n, *mu.shape[1:],
                  generator=torch.Generator().manual_seed(2)).to(device)
w_batch = torch.full((n,), P["w"], device=device)


def my_lcm_sample(model, z, num_steps, generator):
    """LCM Alg. 3 with the pieces above."""
    ts = lcm_timesteps(1000, num_steps).tolist()
    for i, t in enumerate(ts):
        t_batch = torch.full((len(z),), t, dtype=torch.long, device=z.device)
        eps = model(z, t_batch, prompts, w_batch)
        denoised = my_consistency(
            z, eps_to_x0(eps, z, float(schedule.alpha_bar[t])), t_batch)
        if i + 1 == len(ts):
            return denoised
        noise = torch.randn(z.shape, generator=generator, device=z.device,
                            dtype=z.dtype)
        z = my_renoise(denoised, float(schedule.alpha_bar[ts[i + 1]]), noise)


with torch.no_grad():
    torch.testing.assert_close(
        my_lcm_sample(student, z_T, 4, torch.Generator(device).manual_seed(3)),
        lcm_sample(student, schedule, z_T, 4, P["w"], prompts,
                   torch.Generator(device).manual_seed(3)),
        # float32: the library computes the scalings in float64
        rtol=1e-4, atol=1e-4)
print("my 4-step sampler equals course_lib's lcm_sample")

# %% [markdown]
# The comparison: the student at 1, 2, 4 and 8 steps against the teacher's guided DDIM at 50
# steps, and at 1 step (what the teacher alone makes of a one-step budget), on the same prompts
# (captions of test images) and noise; FID of the decoded images against the test set, with its
# bootstrap standard deviation, and wall time (network evaluations plus one decoder pass).

# %%
ref = reference_stats(test_data.images[: P["fid_reference"]].to(device),
                      f"{test_data.source_id}-test-{P['fid_reference']}",
                      cache_dir() / "fid")
results, grids = {}, []


def evaluate(name, sample):
    t_start = time.perf_counter()
    with torch.no_grad():
        x = decode_latents(vae, sample(), scale)
    seconds = time.perf_counter() - t_start
    results[name] = dict(fid=fid(to_uint8(x), ref.mu, ref.sigma,
                                 f"{test_data.source_id} test",
                                 ref_count=ref.num_images,
                                 bootstrap=P["bootstrap"]),
                         seconds=seconds)
    grids.append(x[:10])


for k in (P["teacher_steps"], 1):
    evaluate(f"teacher, DDIM {k} step{'s' if k > 1 else ''}",
             lambda k=k: ddim_sample(text_cfg_model(teacher, prompts, P["w"]),
                                     schedule, z_T,
                                     timesteps(1000, k, "trailing")))
for k in P["steps"]:
    evaluate(f"LCM, {k} step{'s' if k > 1 else ''}",
             lambda k=k: lcm_sample(student, schedule, z_T, k, P["w"], prompts,
                                    torch.Generator(device).manual_seed(4)))
print(f"{'':24s}{'FID':>15s}{'seconds':>10s}   "
      f"({n} samples, w = {P['w']}, {device})")
for name, r in results.items():
    f = r["fid"]
    print(f"{name:24s}{f'{f.value:.1f} ± {f.std:.1f}':>15s}"
          f"{r['seconds']:>10.2f}")
image_grid(torch.cat(grids).cpu(), nrow=10, figsize=(9, 0.95 * len(grids)),
           title="rows: " + "; ".join(results) + " (same prompts and noise)")
show_jpeg()

# %% [markdown]
# ## LCM-LoRA
#
# Distilling all of the teacher's weights produces a second full model. LCM-LoRA trains only LoRA
# adapters (chapter 7) on the teacher's attention projections, with no $w$ input (it learns the
# guided trajectories averaged over the range of $w$) and with the online network itself as the
# target ($\mu = 0$). The adapters are small, and can be added to other fine-tunes of the same
# teacher. `one_step_error` measures what distillation drives down: the distance from the
# one-step estimate $f(z_T)$ to the end of the teacher's guided 50-step trajectory from the same noise.
# Its 4-step samples are then scored as the full LCM's were.

# %%
lora = lcm_lora_student(teacher, rank=4)
n_lora = trainable_parameters(lora)
lora_run = distill_lcm(recipe, teacher, mu, logvar, tokens.to(device), scale,
                       schedule=schedule, student=lora,
                       target_mu=0.0, steps=P["lora_steps"])
z_check, tok_check = z_T[:16], prompts[:16]
gaps = {"before distillation (the teacher's x0 estimate)": one_step_error(
            lcm_lora_student(teacher), teacher, schedule, z_check, tok_check,
            P["w"]),
        "LCM (full)": one_step_error(student, teacher, schedule, z_check,
                                     tok_check, P["w"]),
        "LCM-LoRA": one_step_error(lora_run.ema.eval(), teacher, schedule,
                                   z_check, tok_check, P["w"])}
print(f"LCM-LoRA: {n_lora:,} trainable parameters "
      f"({n_lora / sum(p.numel() for p in teacher.parameters()):.1%} of "
      f"the teacher's), {P['lora_steps']:,} steps in {lora_run.seconds:.0f} s")
for name, gap in gaps.items():
    print(f"  one-step RMS gap to the teacher's 50-step sample, {name}: "
          f"{gap:.3f}")
# measured as the full LCM was: 4 steps, the same prompts and noise
evaluate("LCM-LoRA, 4 steps",
         lambda: lcm_sample(lora_run.ema.eval(), schedule, z_T, 4, P["w"],
                            prompts, torch.Generator(device).manual_seed(4)))
f = results["LCM-LoRA, 4 steps"]["fid"]
print(f"LCM-LoRA, 4 steps: FID {f.value:.1f} ± {f.std:.1f} in "
      f"{results['LCM-LoRA, 4 steps']['seconds']:.1f} s; the full LCM: "
      f"{results['LCM, 4 steps']['fid'].value:.1f}")

# %%
report({
    **{f"fid_lcm_{k}step": {
           "value": results[f"LCM, {k} step{'s' if k > 1 else ''}"]["fid"],
           "sampling_steps": k,
           "description": f"LCM distilled from chapter 6's model, "
                          f"w = {P['w']}"} for k in P["steps"]},
    f"fid_teacher_{P['teacher_steps']}step": {
        "value": results[f"teacher, DDIM {P['teacher_steps']} steps"]["fid"],
        "sampling_steps": P["teacher_steps"],
        "description": f"the teacher, guided DDIM, w = {P['w']}"},
    "fid_teacher_1step": {
        "value": results["teacher, DDIM 1 step"]["fid"], "sampling_steps": 1,
        "description": f"the teacher, guided DDIM in one step, w = {P['w']}"},
    "fid_lcm_lora_4step": {
        "value": results["LCM-LoRA, 4 steps"]["fid"], "sampling_steps": 4,
        "description": f"LCM-LoRA ({P['lora_steps']:,} steps), w = {P['w']}"},
    **{f"seconds_lcm_{k}step": {
           "value": results[f"LCM, {k} step{'s' if k > 1 else ''}"]["seconds"],
           "unit": "s", "samples": n,
           "description": "wall time, with decoding"} for k in P["steps"]},
    "seconds_teacher": {
        "value":
            results[f"teacher, DDIM {P['teacher_steps']} steps"]["seconds"],
        "unit": "s", "samples": n, "description": "wall time, with decoding"},
    "one_step_gap_lcm": {
        "value": gaps["LCM (full)"],
        "description": "RMS gap of f(z_T) to the teacher's 50-step sample"},
    "one_step_gap_lcm_lora": {"value": gaps["LCM-LoRA"],
                              "description": "the same for LCM-LoRA"},
    "one_step_gap_before": {
        "value": gaps["before distillation (the teacher's x0 estimate)"],
        "description": "the same before distillation"},
}, notes={"distillation": f"{meta['config']['recipe']['steps']:,} steps in "
                          f"{(meta['train_seconds'] or 0) / 3600:.2f} h on "
                          f"{meta['hardware']}"})

# %% [markdown]
# ## Summary
#
# - A consistency model maps any point of an ODE trajectory to its origin; the parameterization
#   $c_{\text{skip}} z_t + c_{\text{out}} \hat z_0$ builds in the boundary condition.
# - Latent consistency distillation teaches it with one guided teacher step per example (the
#   skipping-step DDIM solver) and an EMA target; the student takes the guidance weight as input,
#   so guidance costs nothing at sampling time.
# - One to eight steps replace fifty; LCM-LoRA gets there by training a small fraction of the weights.
#
# This is the last chapter. The Results page collects every chapter's numbers next to the papers'.
