# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
# ---

# %% [markdown]
# # 3. DDPM on CIFAR-10
#
# Chapter 1 built a denoising diffusion model {cite:p}`ho2020ddpm` for points in the plane. This
# chapter scales the same three pieces (a forward process that adds noise, a network trained to
# predict that noise, a sampler that removes it step by step) to 32x32 colour images. Only the
# network changes: a U-Net replaces the small MLP.
#
# **What you will build:** the forward process on images and its closed form, the derivation
# from the ELBO to DDPM's simple loss (two exercises: the reverse-step mean and the
# $v$-parameterization), a U-Net trained on CIFAR-10 with the shared training loop (EMA, mixed
# precision) and its samples and FID over training, the sampler of DDPM's Algorithm 2 written
# inline, FID of the EMA model, a measured comparison of the linear and cosine schedules and of
# $\epsilon$ against $v$ prediction, and Improved DDPM's ideas {cite:p}`nichol2021improved` in a
# short section. The trained model is saved for chapter 4.
#
# **Time:** about four minutes on a 2-core CPU in the `smoke` profile (a 2,000-image subset and
# a 280k-parameter U-Net trained for 150 steps: its samples are coloured blobs, and
# its FIDs are far above the paper's; the code path is the real one). In the `laptop` profile
# the page trains the first steps live and loads the full run, published with the course
# (hours of training on a 2-core CPU), and its comparison models: about half an hour on 2 cores. **Outputs on this page** were
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
from course_lib.data import load_cifar10, to_float, to_uint8
from course_lib.course.paths import cache_dir
from course_lib.process.diffusion import (EpsilonLoss, add_noise, eps_to_x0,
                                          gather, pred_to_x0, q_posterior,
                                          signal_to_noise)
from course_lib.evaluation.fid import fid, reference_stats
from course_lib.models import UNet
from course_lib.book.plotting import (animate, figure_jpeg, frame_slider,
                                      image_grid, show_jpeg)
from course_lib.recipes.ch03_ddpm import (chapter3_unet, compare_recipe,
                                         comparison_unet, ddpm_recipe,
                                         sample_snapshots, train_ddpm,
                                         unet_config)
from course_lib.book.results import report
from course_lib.book.runs import show_run
from course_lib.samplers.ddim import ddim_sample, timesteps
from course_lib.samplers.ddpm import ddpm_sample
from course_lib.process.schedules import make_schedule

profile = course_lib.get_profile()
device = course_lib.default_device()
# the U-Net's sizes and training per profile, shared with chapter 4
# (course_lib.recipes.ch03_ddpm)
recipe = ddpm_recipe(profile)
# this chapter's own evaluation and comparison sizes, per profile
P = profile.choose(
    smoke=dict(live_steps=30, snapshot_images=8, fid_samples=16,
               fid_steps=50, fid_reference=100, sample_batch=16,
               compare_fid_samples=8, eval_images=128),
    # laptop, estimated at the measured rates (1.3 s a training step, 108-126
    # forward images/s, 0.13 s per image for Inception): about 27 minutes
    laptop=dict(live_steps=100, snapshot_images=8, fid_samples=2_000,
                fid_steps=25, fid_reference=10_000, sample_batch=250,
                compare_fid_samples=500, eval_images=250),
    colab=dict(live_steps=200, snapshot_images=16, fid_samples=1_000,
               fid_steps=100, fid_reference=10_000, sample_batch=500,
               compare_fid_samples=250, eval_images=1_000),
    full=dict(live_steps=500, snapshot_images=16, fid_samples=10_000,
              fid_steps=100, fid_reference=10_000, sample_batch=1_000,
              compare_fid_samples=5_000, eval_images=2_000),
)
compare_steps = compare_recipe(profile, "cosine", "v")["steps"]
config = unet_config(recipe)
course_lib.show_setup("3 · DDPM on CIFAR-10", {
    "data": f"CIFAR-10 train ({recipe['train_images'] or 'all 50,000'} "
            "images), test for evaluation",
    "U-Net": f"'{recipe['unet']}': width {config.base_channels}, "
             f"levels {config.channel_mult}, "
             f"{sum(p.numel() for p in UNet(config).parameters()):,} "
             "parameters",
    "training": f"{recipe['steps']:,} steps of batch {recipe['batch']}, "
                f"lr {recipe['lr']}, EMA {recipe['ema_decay']}, "
                f"{recipe['schedule']} schedule over "
                f"T = {recipe['num_steps']}; the first "
                f"{P['live_steps']:,} live, the full run trained or loaded",
    "sampling": f"DDPM ancestral, {recipe['num_steps']} steps per sample",
    "FID": f"{P['fid_samples']:,} samples (DDIM, {P['fid_steps']} steps) "
           f"against {P['fid_reference']:,} test images",
    "comparison": f"3 more U-Nets of {compare_steps:,} steps "
                  "(linear/cosine, eps/v), "
                  f"FID of {P['compare_fid_samples']:,} samples each",
}, profile, device)

# %% [markdown]
# ## The data
#
# The same CIFAR-10 as chapter 2, as one `uint8` tensor scaled to $[-1, 1]$ for the model
# (`to_float`). On a GPU the whole training set lives on the device and batches, with random
# horizontal flips, are drawn there.

# %%
train_data = load_cifar10("train", subset=recipe["train_images"])
test_data = load_cifar10("test", subset=P["fid_reference"]
                         if P["fid_reference"] < 10_000 else None)
print(train_data)  # the source by name, never a folder of the machine
print(test_data)
train_images = train_data.images.to(device)
# 4 images
x0_show = to_float(train_data.images[
    [int((train_data.labels == k).nonzero()[0]) for k in range(4)]])

# %% [markdown]
# ## The forward process on images
#
# Exactly as in chapter 1, the forward process is a fixed Markov chain that adds Gaussian noise
# with variances $\beta_1, \dots, \beta_T$ (the course's integer steps $t = 0, \dots, T-1$ are
# the paper's $1, \dots, T$; see the notation page):
#
# $$ q(x_t \mid x_{t-1}) = \mathcal{N}\big(\sqrt{1 - \beta_t}\, x_{t-1},\ \beta_t I\big) \qquad \text{(DDPM Eq. 2)} $$
#
# and, because a sum of Gaussians is Gaussian, any step is one draw away from the data:
#
# $$ q(x_t \mid x_0) = \mathcal{N}\big(\sqrt{\bar\alpha_t}\, x_0,\ (1 - \bar\alpha_t) I\big),
#    \qquad \alpha_t = 1 - \beta_t,\ \ \bar\alpha_t = \textstyle\prod_{s \le t} \alpha_s .
#    \qquad \text{(DDPM Eq. 4)} $$
#
# An image is just a vector of $3 \times 32 \times 32 = 3072$ numbers, so nothing changes but
# the shape. Here is the closed form written inline, checked against `course_lib`'s
# `add_noise`, on four training images:

# %%
schedules = {name: make_schedule(name, recipe["num_steps"])
             for name in ("linear", "cosine")}
schedule = schedules[recipe["schedule"]]
alpha_bar = schedule.alpha_bar  # (T,) float64
g = torch.Generator().manual_seed(0)
noise = torch.randn(x0_show.shape, generator=g)
t = torch.tensor([0, 250, 500, 999])
# one step per image, broadcast over (3, 32, 32)
a = alpha_bar[t].float().view(-1, 1, 1, 1)
x_t = a.sqrt() * x0_show + (1 - a).sqrt() * noise  # DDPM Eq. 4
torch.testing.assert_close(x_t, add_noise(schedule, x0_show, t, noise))
print("inline closed form == course_lib.process.diffusion.add_noise")

# %% [markdown]
# The two schedules of this chapter on the same images and the same noise. The linear schedule
# of DDPM ($\beta$ from $10^{-4}$ to $0.02$) has destroyed almost everything by the middle of
# the chain; the cosine schedule of Improved DDPM keeps the picture recognisable for longer.
# Drag the slider (or press play): live in Jupyter and Colab, from stored frames in the book.

# %%
slider_steps = [0, 50, 100, 200, 300, 400, 500, 600, 700, 800, 900, 999]
frames = []
for step in slider_steps:
    rows = torch.cat([add_noise(s, x0_show, step, noise)
                      for s in schedules.values()])
    fig = image_grid(rows, nrow=4,
                     title=f"t = {step}: linear (top), cosine (bottom)",
                     figsize=(5.2, 2.9)).figure
    # JPEG: noise does not compress as PNG
    frames.append(figure_jpeg(fig, dpi=70))
frame_slider(frames,
             [f"t = {s}: alpha_bar linear "
              f"{schedules['linear'].alpha_bar[s]:.3f}, "
              f"cosine {schedules['cosine'].alpha_bar[s]:.3f}"
              for s in slider_steps],
             description="step t")

# %% [markdown]
# The signal-to-noise ratio $\mathrm{SNR}_t = \bar\alpha_t / (1 - \bar\alpha_t)$ says the same in
# one number per step. On a log scale the cosine schedule's SNR falls almost linearly in $t$;
# the linear schedule's plunges early and then spends the last few hundred steps at an SNR so low
# that $x_t$ is practically pure noise, steps the model is trained on but that teach it little
# ({cite:t}`nichol2021improved`, Sec. 3.2).

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for name, s in schedules.items():
    axes[0].plot(s.alpha_bar, label=name)
    axes[1].plot(signal_to_noise(s.alpha_bar).log10(), label=name)
axes[0].set(xlabel="step t", ylabel=r"$\bar\alpha_t$", title="signal fraction")
axes[1].set(xlabel="step t", ylabel=r"$\log_{10} \mathrm{SNR}_t$",
            title="signal-to-noise ratio")
axes[0].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## From the ELBO to the simple loss
#
# The generative model runs the chain backwards with learned Gaussian steps
# $p_\theta(x_{t-1} \mid x_t) = \mathcal{N}(\mu_\theta(x_t, t), \sigma_t^2 I)$ from
# $p(x_T) = \mathcal{N}(0, I)$ (DDPM Eq. 1). As for the VAE of chapter 2, the forward chain plays
# the encoder, and the negative ELBO bounds the negative log-likelihood. Written with the
# forward *posteriors*, it splits into one term per step (DDPM Eq. 5):
#
# $$ \mathbb{E}_q\Big[\underbrace{\mathrm{KL}(q(x_T\mid x_0)\,\|\,p(x_T))}_{L_T}
#    + \sum_{t > 1} \underbrace{\mathrm{KL}(q(x_{t-1}\mid x_t, x_0)\,\|\,p_\theta(x_{t-1}\mid x_t))}_{L_{t-1}}
#    \underbrace{- \log p_\theta(x_0 \mid x_1)}_{L_0}\Big] . $$
#
# $L_T$ has no parameters. Each $L_{t-1}$ compares two Gaussians, because the posterior is
# Gaussian with a closed form (DDPM Eqs. 6-7):
#
# $$ q(x_{t-1} \mid x_t, x_0) = \mathcal{N}\big(\tilde\mu_t(x_t, x_0), \tilde\beta_t I\big), \quad
#    \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1 - \bar\alpha_t}\, x_0
#    + \frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}\, x_t, \quad
#    \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\, \beta_t . $$
#
# With fixed variances, the KL between two Gaussians is a squared distance of means:
# $L_{t-1} = \frac{1}{2\sigma_t^2} \lVert \tilde\mu_t(x_t, x_0) - \mu_\theta(x_t, t) \rVert^2 + C$
# (DDPM Eq. 8). Substitute $x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon) / \sqrt{\bar\alpha_t}$
# from Eq. 4 and the target mean becomes
# $\tilde\mu_t = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\epsilon\big)$:
# everything in it is known at sampling time except the noise $\epsilon$. So let the network
# predict the noise and use the same form (DDPM Eq. 11):
#
# $$ \mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\,\epsilon_\theta(x_t, t)\Big) . $$
#
# `course_lib.process.diffusion.q_posterior` computes Eq. 7; the cell below checks that it is Bayes'
# rule for the two forward factors (the posterior precision is the sum of the precisions).

# %%
t_check = torch.tensor([1, 10, 100, 500, 999])
x0_rand, xt_rand = (torch.randn(5, 3, 32, 32, dtype=torch.float64),
                    torch.randn(5, 3, 32, 32, dtype=torch.float64))
mean, var = q_posterior(schedule, x0_rand, xt_rand, t_check)
ab_prev = alpha_bar[t_check - 1].view(-1, 1, 1, 1)
al, be = (schedule.alphas[t_check].view(-1, 1, 1, 1),
          schedule.betas[t_check].view(-1, 1, 1, 1))
# q(x_{t-1} | x0) times q(x_t | x_{t-1}), as a Gaussian in x_{t-1}
precision = 1 / (1 - ab_prev) + al / be
torch.testing.assert_close(var.expand_as(mean),
                           (1 / precision).expand_as(mean))
torch.testing.assert_close(mean, (ab_prev.sqrt() * x0_rand / (1 - ab_prev)
                                  + al.sqrt() * xt_rand / be) / precision)
print("q_posterior == Bayes' rule for the two forward Gaussians")

# %% [markdown]
# ```{exercise} The reverse-step mean from a noise prediction
# :label: ex-mean-from-eps
#
# Write `mean_from_eps(x_t, eps, t, alpha_bar)` returning $\mu_\theta$ of DDPM Eq. 11 for a batch
# of images `x_t` and noise predictions `eps` of shape `(B, 3, H, W)`, steps `t` of shape `(B,)`
# (a different step per image) and the schedule's `alpha_bar` of shape `(T,)`. Recover
# $\alpha_t = \bar\alpha_t / \bar\alpha_{t-1}$ from `alpha_bar`, with $\bar\alpha_{-1} = 1$ at the
# first step `t = 0`. The checker compares it with the posterior mean of `course_lib` at the
# predicted $\hat x_0$ (they agree, since Eq. 11 *is* Eq. 7 at $\hat x_0$).
# ```
#
# ```{solution-start} ex-mean-from-eps
# :class: dropdown
# ```

# %% tags=["solution"]
def mean_from_eps(x_t, eps, t, alpha_bar):
    a = alpha_bar[t].view(-1, 1, 1, 1)
    a_prev = torch.where(t > 0, alpha_bar[(t - 1).clamp(min=0)],
                         torch.ones_like(alpha_bar[t])).view(-1, 1, 1, 1)
    alpha_t = a / a_prev
    # DDPM Eq. 11 (beta_t = 1 - alpha_t)
    return (x_t - (1 - alpha_t) / (1 - a).sqrt() * eps) / alpha_t.sqrt()


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch03 import check_mean_from_eps

check_mean_from_eps(mean_from_eps)

# %% [markdown]
# With Eq. 11 the KL term becomes a noise-prediction error with a weight per step,
# $L_{t-1} = \lambda_t\, \mathbb{E}\lVert \epsilon - \epsilon_\theta(x_t, t) \rVert^2$ with
# $\lambda_t = \frac{\beta_t^2}{2\sigma_t^2 \alpha_t (1 - \bar\alpha_t)}$ (DDPM Eq. 12). DDPM's
# finding is that dropping the weights trains better samples:
#
# $$ L_{\text{simple}} = \mathbb{E}_{t, x_0, \epsilon}\big\lVert \epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0
#    + \sqrt{1 - \bar\alpha_t}\,\epsilon,\ t\big)\big\rVert^2 , \qquad t \sim \mathcal{U}\{0, \dots, T-1\} .
#    \qquad \text{(DDPM Eq. 14)} $$
#
# The plot shows what "dropping the weights" means, with $\sigma_t^2 = \tilde\beta_t$: the ELBO
# puts hundreds of times more weight on the first, almost noise-free steps, where denoising is
# easy and invisible; $L_{\text{simple}}$ spends the network's capacity on the noisier steps that
# decide what the image shows.

# %%
steps = torch.arange(1, schedule.num_steps)
lam = schedule.betas[steps] ** 2 / (
    2 * q_posterior(schedule, torch.zeros(len(steps), 1),
                    torch.zeros(len(steps), 1), steps)[1].squeeze(1)
    * schedule.alphas[steps] * (1 - alpha_bar[steps]))  # DDPM Eq. 12
fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogy(steps, lam / lam.mean(),
            label=r"ELBO weight $\lambda_t$ (normalised)")
ax.axhline(1.0, color="k", lw=1, label=r"$L_{\mathrm{simple}}$: 1")
ax.set(xlabel="step t", title="weight of each step's noise-prediction error")
ax.legend()
plt.show()

# %% [markdown]
# The loss, inline, next to `course_lib.process.diffusion.EpsilonLoss` under the same random draws:

# %%
def simple_loss(model, x0, generator=None):
    t = torch.randint(0, schedule.num_steps, (x0.shape[0],), device=x0.device,
                      generator=generator)
    eps = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype,
                      generator=generator)
    # alpha_bar[t] as (B, 1, 1, 1) on x0's device and dtype
    a = gather(alpha_bar, t, x0)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps  # DDPM Eq. 4
    return (eps - model(x_t, t)).pow(2).mean()  # DDPM Eq. 14


torch.manual_seed(0)
probe = UNet(config).to(device)
x0_batch = to_float(train_images[:8])
with torch.no_grad():
    mine = simple_loss(probe, x0_batch, torch.Generator(device).manual_seed(1))
    library = EpsilonLoss(schedule)(
        probe, x0_batch, generator=torch.Generator(device).manual_seed(1))
torch.testing.assert_close(mine, library)
print(f"inline L_simple == EpsilonLoss: {mine.item():.4f} "
      "(an untrained network predicts noise of variance ~1)")

# %% [markdown]
# ## The U-Net
#
# The network $\epsilon_\theta(x_t, t)$ maps an image to an image of the same shape.
# `course_lib.models.UNet` follows DDPM's architecture: residual blocks with group normalization
# at three or four resolutions, a sinusoidal embedding of $t$ added inside every block, and
# self-attention (through `torch.nn.functional.scaled_dot_product_attention`) at 16x16. Its named
# sizes go from `tiny` (for CPU) to `ddpm_cifar10`, the 35.7M-parameter model of the paper.

# %%
for name in ("tiny", "small", "ddpm_cifar10"):
    with torch.device("meta"):  # count parameters without allocating them
        n = sum(p.numel()
                for p in UNet(unet_config({"unet": name})).parameters())
    print(f"{name:>13}: {n:>11,} parameters"
          + ("   <- this profile" if name == recipe["unet"] else ""))
print(probe(x0_batch, torch.zeros(8, dtype=torch.long, device=device)).shape,
      "= the input's shape")

# %% [markdown]
# ## Training, with samples along the way
#
# The shared training loop (`course_lib.training.loop.train`) runs AdamW with a linear warm-up,
# clips the gradient norm at 1, keeps an exponential moving average (EMA) of the weights,
# and uses bf16 autocast on GPUs that support it (fp16 with loss scaling on older ones, float32
# on the CPU). `course_lib.recipes.ch03_ddpm.train_ddpm` is the same loop with the recipe's
# settings. On a GPU the samplers run the network under the same autocast
# (`course_lib.sampling_autocast`; their own arithmetic stays float32); on a CPU nothing changes.
#
# The sampler is DDPM's Algorithm 2: start from $x_T \sim \mathcal{N}(0, I)$ and apply the learned
# reverse step $T$ times, $x_{t-1} = \mu_\theta(x_t, t) + \sigma_t z$ with $z \sim \mathcal{N}(0, I)$
# (no noise at the last step). DDPM found $\sigma_t^2 = \beta_t$ and $\sigma_t^2 = \tilde\beta_t$ to
# give similar samples (Sec. 3.2) and used $\beta_t$ for CIFAR-10 ("fixedlarge" in its code); so do
# we. Inline, with the posterior mean at
# the predicted $\hat x_0$ (the same as Eq. 11). Like DDPM's own code (and diffusers' default),
# the predicted $\hat x_0$ is clipped to the data range $[-1, 1]$ first: a small safeguard that
# keeps an imperfect network's errors from compounding over a thousand steps.

# %%
@torch.no_grad()
def sample(model, x_T, generator=None):
    x = x_T
    for t in reversed(range(schedule.num_steps)):
        t_batch = torch.full((x.shape[0],), t, device=x.device,
                             dtype=torch.long)
        eps = model(x, t_batch)
        # DDPM Eq. 15, clipped to the data range
        x0_hat = eps_to_x0(eps, x, gather(alpha_bar, t, x)).clamp(-1, 1)
        # DDPM Eq. 7 at x0_hat = Eq. 11
        mean, _ = q_posterior(schedule, x0_hat, x, t)
        z = (torch.randn(x.shape, generator=generator, device=x.device,
                         dtype=x.dtype) if t > 0 else torch.zeros_like(x))
        # DDPM Algorithm 2, line 4, with sigma_t^2 = beta_t
        x = mean + float(schedule.betas[t]) ** 0.5 * z
    return x


# The loop equals course_lib.samplers.ddpm.ddpm_sample step for step, in
# float64 (a cheap stand-in network suffices):
stand_in = lambda x, t: 0.3 * x + 0.01 * t.view(-1, 1, 1, 1)
x_T = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0),
                  dtype=torch.float64)
torch.testing.assert_close(
    sample(stand_in, x_T, torch.Generator().manual_seed(1)),
    ddpm_sample(stand_in, schedule, x_T,
                generator=torch.Generator().manual_seed(1),
                variance="large", clip_x0=1.0))
print("inline Algorithm 2 == course_lib.samplers.ddpm.ddpm_sample")

# %% [markdown]
# ### A few steps, live
#
# Training this U-Net to the quality of the samples further down takes hours on a CPU (the full
# run's record is printed below), so the page trains the recipe live for its first few hundred
# steps only: the same model, loss, data order, seed and learning-rate warm-up as the full run,
# so the two loss curves can be compared.

# %%
t0 = time.perf_counter()
live = train_ddpm(recipe, train_images, steps=P["live_steps"], seed=0)
print(f"{P['live_steps']:,} steps of batch {recipe['batch']} in "
      f"{time.perf_counter() - t0:.0f} s on {device}")

# %% [markdown]
# ### The full run
#
# The model that the rest of the chapter (and chapter 4) uses is the recipe's full run.
# `chapter3_unet` loads it when it is in the course cache or published with the course (the
# `laptop` model was trained once, for hours, on a 2-core CPU with
# `scripts/train.py ch03_unet --profile laptop`, in resumable chunks); otherwise it trains it
# now, checkpointing as it goes, so an interrupted run resumes where it stopped. Either way its
# record says what produced it. While training, the loop kept the EMA weights at 14 points
# (snapshots); the record keeps their samples, all from the same noise: samples over training
# without the snapshots' weights.

# %%
ema, meta = chapter3_unet(
    profile, device, stand_in=False,
    checkpoint_path=cache_dir() / "checkpoints"
    / f"ch03_unet-{profile.name}.pt")
run = meta["config"]["recipe"]
show_run(meta, live, ylabel=r"$L_{\mathrm{simple}}$ (window mean)")
plt.show()

# %% [markdown]
# The rows below are the EMA model at a few of those snapshots, each sampled from the same
# starting noises with chapter 4's deterministic DDIM sampler (50 steps; cheaper than 1,000 and
# enough to see what the model has learnt); the first row is the live model above, sampled the
# same way.

# %%
kept = meta["extras"]
live_row = sample_snapshots(
    {P["live_steps"]: live.model.state_dict()}, config, recipe,
    device=device)
# (step, samples, label) per row, in step order
shown = [(P["live_steps"], live_row[P["live_steps"]],
          f"{P['live_steps']:,} (live)")]
if "snapshot_samples" in kept:
    for i in [0, 1, 3, 6, len(kept["snapshot_steps"]) - 1]:
        step = int(kept["snapshot_steps"][i])
        shown.append((step, kept["snapshot_samples"][i], f"{step:,}"))
else:
    print("This model's record keeps no snapshots (it was trained "
          "without a checkpoint): only the live row is shown.")
shown.sort(key=lambda row: row[0])
steps_shown, rows, labels = zip(*shown)
n_show = P["snapshot_images"]
image_grid(torch.cat([to_float(r[:n_show].cpu()) for r in rows]),
           nrow=n_show, figsize=(1.1 * n_show, 1.2 * len(rows)),
           title="samples after " + ", ".join(labels) + " steps (rows)")
show_jpeg()

# %% [markdown]
# Early EMA rows can be worse than the live row: the EMA starts from the random initial weights
# and forgets them only at the rate $1 - \text{decay}$ per step, so after $n$ steps a share
# $\text{decay}^n$ of the initial weights is still in it. That share, per row:

# %%
for n, label in zip(steps_shown, labels):
    if "live" not in label:
        print(f"after {n:>7,} steps: {recipe['ema_decay'] ** n:7.2%} "
              "of the EMA is still the random initialisation")

# %% [markdown]
# How good are those samples, in numbers? FID (chapter 2) compares Inception features of
# samples with CIFAR-10 test images. When the model was published, each snapshot was scored
# with 500 samples (`scripts/publish_model.py --fid-over-training 500`, about 3 minutes per
# snapshot on a 2-core CPU); the record keeps the curve, with each point's bootstrap standard
# deviation.

# %%
curve = meta["metrics"].get("fid_over_training")
if curve:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.errorbar(curve["steps"], curve["fid"], yerr=curve["std"], marker="o")
    ax.set(xlabel="optimizer step", ylabel="FID",
           title=f"FID over training ({curve['samples']:,} samples each, "
                 f"{curve['sampler']})")
    plt.show()
    for step, value, sd in zip(curve["steps"], curve["fid"], curve["std"]):
        print(f"step {step:>7,}: FID {value:6.1f} ± {sd:.1f}")
else:
    print(f"No FID-over-training curve is recorded for the "
          f"{meta['profile']} model (scripts/publish_model.py measures it "
          f"when a model is published).")

# %% [markdown]
# ## Samples and FID of the EMA model
#
# Now the full run's EMA model with DDPM's own sampler, Algorithm 2 with all 1,000 steps, from
# the same starting noise as the rows above (the library's `ddpm_sample`, which equals the
# inline loop; it also keeps every 50th state for an animation).

# %%
x_T_show = torch.randn(P["snapshot_images"], 3, 32, 32,
                       generator=torch.Generator().manual_seed(0)).to(device)
t0 = time.perf_counter()
with course_lib.sampling_autocast(device):  # a no-op on a CPU
    x_show, trajectory = ddpm_sample(
        ema, schedule, x_T_show,
        generator=torch.Generator(device).manual_seed(0),
        variance="large", clip_x0=1.0, keep_every=50)
trajectory = trajectory[:, :4].cpu()
print(f"{len(x_T_show)} samples x {schedule.num_steps} steps in "
      f"{time.perf_counter() - t0:.0f} s")
image_grid(x_show.clamp(-1, 1).cpu(), nrow=8,
           figsize=(8, 1.2 * -(-len(x_show) // 8)),
           title=f"EMA samples, DDPM Algorithm 2, {schedule.num_steps} steps")
show_jpeg()

# %% [markdown]
# The reverse process as an animation: $x_t$ every 50 steps for four of the samples above, from
# noise to image. The coarse layout is decided early (at large $t$); the last hundred steps only
# sharpen it.

# %%
# trajectory[i] is x after step kept_after[i - 1]
kept_after = [t for t in reversed(range(schedule.num_steps)) if t % 50 == 0]
animate(lambda ax, i: (
            ax.imshow(((torch.cat(list(trajectory[i].clamp(-1, 1)), dim=2)
                        .permute(1, 2, 0) + 1) / 2).numpy()),
            ax.set_axis_off(),
            ax.set_title(f"after step t = {kept_after[i - 1]}"
                         if i else "x_T: pure noise")),
        num_frames=len(trajectory), figsize=(6, 1.9), interval=150,
        frame_format="jpeg", dpi=60)

# %% [markdown]
# The headline FID needs thousands of samples, and a thousand network evaluations each is more
# than a CPU page can afford. So it samples the same network with the deterministic DDIM sampler
# on `fid_steps` steps, the sampler of the rows above, which chapter 4 derives and compares
# with Algorithm 2. DDPM reports 3.17 on CIFAR-10 with 50,000 samples of a 35.7M-parameter
# model {cite:p}`ho2020ddpm` (reference, not ours). Small sample counts bias FID upwards, so
# compare only numbers with the same counts.

# %%
n_fid, batch = P["fid_samples"], P["sample_batch"]
fid_steps = timesteps(schedule.num_steps, P["fid_steps"], "trailing")
t0 = time.perf_counter()
fid_samples = []
for i in range(0, n_fid, batch):
    noise_i = torch.randn(
        min(batch, n_fid - i), 3, 32, 32,
        generator=torch.Generator().manual_seed(1000 + i)).to(device)
    with course_lib.sampling_autocast(device):
        fid_samples.append(
            ddim_sample(ema, schedule, noise_i, fid_steps).clamp(-1, 1))
fid_samples = torch.cat(fid_samples)
sample_seconds = time.perf_counter() - t0
print(f"{n_fid:,} samples x {len(fid_steps)} steps in {sample_seconds:.0f} s "
      f"({n_fid / sample_seconds:.2f} images/s on {device})")
image_grid(fid_samples[:32].cpu(), nrow=8, figsize=(6, 3.3),
           title=f"EMA samples, DDIM {len(fid_steps)} steps")
show_jpeg()

# %%
ref = reference_stats(test_data.images[: P["fid_reference"]].to(device),
                      f"{test_data.source_id}-test-{P['fid_reference']}",
                      cache_dir() / "fid")
main_fid = fid(to_uint8(fid_samples), ref.mu, ref.sigma,
               f"{test_data.source_id} test", ref_count=ref.num_images,
               bootstrap=20)
print(f"EMA model, DDIM {len(fid_steps)} steps: {main_fid}")

# %% [markdown]
# ## Linear or cosine, $\epsilon$ or $v$: a measured comparison
#
# Two choices of this chapter are worth measuring rather than asserting. The **schedule**: linear
# (DDPM) or cosine (Improved DDPM). The **prediction target**: the noise $\epsilon$, or the
# "velocity" $v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1 - \bar\alpha_t}\, x_0$ of
# {cite:t}`salimans2022progressive`. $x_t$ and $v$ are a rotation of $(x_0, \epsilon)$ by the angle
# $\phi_t$ with $\cos\phi_t = \sqrt{\bar\alpha_t}$, so each of the three targets ($\epsilon$,
# $x_0$, $v$) determines the others given $x_t$. They differ in how an error in the prediction
# becomes an error in $\hat x_0$: an $\epsilon$ error is divided by $\sqrt{\mathrm{SNR}_t}$,
# which blows up at the noisy end, while a $v$ error is scaled by $\sqrt{1 - \bar\alpha_t} \le 1$.

# %% [markdown]
# ```{exercise} From a v prediction back to the image
# :label: ex-v-to-x0
#
# Write `v_to_x0(x_t, v, t, alpha_bar)` returning $x_0$ from $x_t$ and $v$ (shapes as in the
# first exercise). Hint: write $x_t$ and $v$ as the rotation of $(x_0, \epsilon)$ above and invert it.
# ```
#
# ```{solution-start} ex-v-to-x0
# :class: dropdown
# ```

# %% tags=["solution"]
def v_to_x0(x_t, v, t, alpha_bar):
    a = alpha_bar[t].view(-1, 1, 1, 1)
    # the inverse rotation: cos(phi) x_t - sin(phi) v
    return a.sqrt() * x_t - (1 - a).sqrt() * v


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch03 import check_v_to_x0

check_v_to_x0(v_to_x0)

# %% [markdown]
# Three U-Nets of the same size, trained for the same number of steps on the same batches:
# linear with $\epsilon$, cosine with $\epsilon$, cosine with $v$ (`PredictionLoss` takes the
# target). Like the main model, each is loaded when it is published or cached
# (`comparison_unet`) and trained otherwise. Each is measured twice: the mean squared error of
# its implied $\hat x_0$ on test images at several noise levels (cheap, and comparable across
# targets), and FID of its samples, drawn with the same DDIM sampler as the headline FID.

# %%
variants = {"linear, eps": ("linear", "eps"), "cosine, eps": ("cosine", "eps"),
            "cosine, v": ("cosine", "v")}
x_eval = to_float(test_data.images[: P["eval_images"]]).to(device)
eval_steps = [50, 200, 400, 600, 800, 950]
comparison = {}
for label, (sched_name, target) in variants.items():
    s = schedules[sched_name]
    t0 = time.perf_counter()
    model, _ = comparison_unet(profile, sched_name, target, device)
    g_eval = torch.Generator(device).manual_seed(5)
    errors = []
    with torch.no_grad():
        for step in eval_steps:
            eps_eval = torch.randn(x_eval.shape, generator=g_eval,
                                   device=device)
            xt_eval = add_noise(s, x_eval, step, eps_eval)
            t_eval = torch.full((len(x_eval),), step, device=device,
                                dtype=torch.long)
            x0_hat = pred_to_x0(model(xt_eval, t_eval), xt_eval,
                                gather(s.alpha_bar, step, xt_eval), target)
            errors.append((x0_hat - x_eval).pow(2).mean().item())
    noise_c = torch.randn(
        P["compare_fid_samples"], 3, 32, 32,
        generator=torch.Generator().manual_seed(11)).to(device)
    with course_lib.sampling_autocast(device):
        samples = torch.cat([
            ddim_sample(model, s, chunk, fid_steps, prediction_type=target)
            .clamp(-1, 1) for chunk in noise_c.split(batch)])
    result_fid = fid(to_uint8(samples), ref.mu, ref.sigma,
                     f"{test_data.source_id} test", ref_count=ref.num_images,
                     bootstrap=20)
    comparison[label] = dict(errors=errors, fid=result_fid,
                             samples=samples[:8].cpu(),
                             seconds=time.perf_counter() - t0)
    print(f"{label:<12} {result_fid}  ({comparison[label]['seconds']:.0f} s)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.3),
                         gridspec_kw={"width_ratios": [1.2, 1]})
for label, c in comparison.items():
    axes[0].plot(eval_steps, c["errors"], marker="o", label=label)
axes[0].set(xlabel="step t", ylabel=r"MSE of $\hat x_0$", yscale="log",
            title="implied-image error on test images")
axes[0].legend()
labels = list(comparison)
axes[1].bar(labels, [comparison[k]["fid"].value for k in labels],
            yerr=[comparison[k]["fid"].std for k in labels],
            color=["C0", "C1", "C2"])
axes[1].set(ylabel="FID",
            title=f"FID, {P['compare_fid_samples']:,} samples each "
                  "(lower is better)")
plt.tight_layout()
plt.show()
image_grid(torch.cat([c["samples"] for c in comparison.values()]), nrow=8,
           figsize=(8, 3.3),
           title="samples: " + " / ".join(labels) + " (rows)")
show_jpeg()

# %% [markdown]
# How to read this on your profile. In `smoke` the models have seen a few thousand images for a
# few minutes and the FIDs of a handful of samples are dominated by noise: only the left panel's
# error curves carry signal (the $v$ model's implied image is at least as good as the $\epsilon$
# models' at the noisy end, where an $\epsilon$ error is amplified most). In `laptop` each model
# has seen 2,000 batches of the full training set and each FID has 500 samples with its
# bootstrap standard deviation (the error bars): a difference smaller than about twice that is
# noise. On a GPU profile, the FIDs use more samples and longer trainings, and the differences
# are the ones Improved DDPM reports: the
# cosine schedule helps most at low resolution such as 32x32, and $v$ prediction matters most
# where the terminal SNR is low (and is required for SNR zero, {cite:t}`lin2024flawed`).

# %% [markdown]
# ## Improved DDPM, briefly
#
# {cite:t}`nichol2021improved` kept DDPM's framework and changed four things:
#
# - **The cosine schedule** above: $\bar\alpha_t = \cos^2\!\big(\tfrac{t/T + s}{1 + s}\cdot\tfrac{\pi}{2}\big)$
#   with a small offset $s = 0.008$, so that fewer steps are wasted on near-pure noise.
# - **Learned variances.** DDPM fixes $\sigma_t^2$ to $\beta_t$ or $\tilde\beta_t$; the two are
#   almost equal except for the first few steps (plot below), which is why samples hardly care,
#   but the ELBO's first terms do. Improved DDPM predicts an interpolation
#   $\sigma_t^2 = \exp(v \log\beta_t + (1 - v)\log\tilde\beta_t)$ and trains it with
#   $L_{\text{hybrid}} = L_{\text{simple}} + 0.001\, L_{\text{vlb}}$, gaining log-likelihood.
# - **Importance sampling of $t$** for the pure $L_{\text{vlb}}$ objective, whose per-step terms
#   differ by orders of magnitude (the plot of $\lambda_t$ above).
# - **Fewer sampling steps**: with learned variances, sampling on a strided subset of steps
#   loses little. Chapter 4 does this properly, with DDIM.

# %%
fig, ax = plt.subplots(figsize=(5, 3))
ratio = q_posterior(schedule, torch.zeros(len(steps), 1),
                    torch.zeros(len(steps), 1),
                    steps)[1].squeeze(1) / schedule.betas[steps]
ax.plot(steps, ratio)
ax.set(xlabel="step t", ylabel=r"$\tilde\beta_t / \beta_t$", xscale="log",
       title=f"{recipe['schedule']} schedule")
plt.show()

# %% [markdown]
# ## The model for chapter 4
#
# `chapter3_unet` saved the full run's EMA U-Net as an artifact (or found it saved): its weights
# with a SHA-256 checksum, its configuration and recipe, and a record of what produced it, the
# loss history and the snapshots' samples. Chapter 4 loads the same artifact with the same call.
#
# The chapter's headline numbers, recorded for the course's {doc}`Results page </book/results>`:

# %%
report({
    "fid": {"value": main_fid,
            "description": "EMA model, DDIM (eta 0, trailing steps)",
            "sampling_steps": len(fid_steps), "paper": "ddpm_cifar10_fid"},
    **{f"fid_{label.replace(', ', '_')}": {
           "value": c["fid"], "sampling_steps": len(fid_steps),
           "description": f"comparison model ({label}), "
                          f"{compare_steps:,} training steps"}
       for label, c in comparison.items()},
}, notes={"training": f"{run['steps']:,} steps of batch {run['batch']} in "
                      f"{(meta['train_seconds'] or 0) / 3600:.2f} h on "
                      f"{meta['hardware']}",
          "sampling": f"{n_fid:,} samples x {len(fid_steps)} steps in "
                      f"{sample_seconds:.0f} s"})

# %% [markdown]
# ## Summary
#
# - The forward process has a closed form, $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon$,
#   so training draws any step in one go.
# - The ELBO is a sum of Gaussian KLs against the forward posterior; predicting the noise turns
#   each into a weighted noise-prediction error, and DDPM drops the weights ($L_{\text{simple}}$).
# - Sampling runs the learned reverse step $T$ times (Algorithm 2): a thousand network
#   evaluations per image, the cost chapter 4 attacks.
# - The schedule and the prediction target are design choices that change how the network's
#   capacity and errors are spread over noise levels; measure them.
#
# Next: {doc}`chapter 4 </chapters/04_ddim/04_ddim>` samples this same model with 10 to 100
# steps.
