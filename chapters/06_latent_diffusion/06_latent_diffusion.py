# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
# ---

# %% [markdown]
# # 6. Latent diffusion and text-to-image
#
# Chapters 3 to 5 diffuse pixels: every step of training and sampling runs the U-Net on all
# $32 \times 32 \times 3$ values, most of which encode detail the eye barely sees. Latent diffusion
# {cite:p}`rombach2022ldm` splits the work in two: an autoencoder compresses the image once
# (chapter 2's autoencoder: $32 \times 32 \times 3 \to 8 \times 8 \times 4$, 12 times fewer numbers), and
# the diffusion model learns the distribution of the *latents*. Stable Diffusion is this recipe,
# with a text encoder whose token features the U-Net reads by **cross-attention**.
#
# **What you will build:** the latents of chapter 2's autoencoder and their scaling factor; captions for
# CIFAR-10 made from the pixels ("a dark photo of a red truck"); cross-attention (exercise); a
# text-to-image model trained with its text encoder from scratch, sampled with classifier-free
# guidance; image-to-image (SDEdit, exercise) and inpainting; and the cost of latent against pixel
# diffusion, measured.
#
# **Time:** about two minutes on a 2-core CPU in the `smoke` profile (a tiny U-Net and
# text encoder trained for a few hundred steps on a CIFAR-10 subset: the samples are coloured blobs,
# the code path is the real one). In the `laptop` profile the page trains the text-to-image model
# live for its first steps and loads the full run, published with the course with chapters 2's
# and 3's models. **Outputs on this page** were produced by executing it in the profile and on the
# hardware that the set-up cell prints.

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
import textwrap
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import course_lib
from course_lib.data.captions import (COLOURS, caption_images, detokenize,
                                      image_attributes, tokenize)
from course_lib.data import (CIFAR10_CLASSES, image_batches, load_cifar10,
                             to_float, to_uint8)
from course_lib.course.paths import cache_dir
from course_lib.process.diffusion import EpsilonLoss
from course_lib.samplers.editing import inpaint, sdedit
from course_lib.samplers.ddim import ddim_sample, timesteps
from course_lib.evaluation.fid import fid, reference_stats
from course_lib.evaluation.flops import gflops, model_gflops
from course_lib.data.latents import (decode_latents, encode_images,
                                     latent_batches, latent_scale,
                                     sample_latents)
from course_lib.recipes.ch06_ldm import (chapter6_ldm, check_autoencoder,
                                         ldm_recipe,
                                         sampling_seconds_per_image,
                                         train_ldm, training_cost)
from course_lib.evaluation.metrics import psnr
from course_lib.book.plotting import (figure_jpeg, frame_slider, image_grid,
                                      show_jpeg)
from course_lib.recipes.ch02_vae import chapter2_vae
from course_lib.recipes.ch03_ddpm import chapter3_unet
from course_lib.book.results import report
from course_lib.book.runs import show_run
from course_lib.process.schedules import make_schedule
from course_lib.process.text_guidance import CaptionDropoutLoss, text_cfg_model

profile = course_lib.get_profile()
device = course_lib.default_device()
# the text-to-image model's sizes and training (course_lib.recipes.ch06_ldm)
recipe = ldm_recipe(profile)
# this chapter's sampling and evaluation sizes, per profile
# (laptop: the comparison's FIDs match chapter 3's FID-over-training
# points, 500 samples of 25 DDIM steps)
P = profile.choose(
    smoke=dict(live_steps=30, w=3.0, sampling_steps=25,
               samples_per_colour=8, fid_samples=64, fid_reference=200,
               bootstrap=4),
    laptop=dict(live_steps=100, w=3.0, sampling_steps=25,
                samples_per_colour=64, fid_samples=500,
                fid_reference=10_000, bootstrap=20),
    colab=dict(live_steps=300, w=3.0, sampling_steps=50,
               samples_per_colour=64, fid_samples=2_000,
               fid_reference=10_000, bootstrap=20),
    full=dict(live_steps=500, w=3.0, sampling_steps=50,
              samples_per_colour=256, fid_samples=10_000,
              fid_reference=10_000, bootstrap=20),
)
course_lib.show_setup("6 · Latent diffusion and text-to-image", {
    "autoencoder": "chapter 2's VAE (loaded as an artifact, trained "
                   "again if missing)",
    "data": f"CIFAR-10 train ({recipe['train_images'] or 'all 50,000'} "
            "images) with synthetic captions",
    "model": f"'{recipe['unet']}' U-Net with cross-attention + "
             f"'{recipe['text']}' text encoder, "
             f"{recipe['steps']:,} steps, "
             f"captions dropped with p = {recipe['p_uncond']}; "
             f"{P['live_steps']:,} live, the full run trained or loaded",
    "sampling": f"DDIM {P['sampling_steps']} steps, guidance w = {P['w']}",
    "cost": "latent vs chapter 3's pixel diffusion at equal training "
            f"compute; FID of {P['fid_samples']:,} samples against "
            f"{P['fid_reference']:,} test images",
}, profile, device)

# %% [markdown]
# ## Latents and their scale
#
# The autoencoder is chapter 2's VAE itself. LDM trains its autoencoder with a tiny KL weight, for
# sharp reconstructions and a latent that need not match the prior (the diffusion model learns its
# own); chapter 2's rate-distortion sweep measured that at our size a small KL weight buys almost
# no sharpness, so the ELBO VAE serves. Its encoder gives a Gaussian $q(z \mid x) = \mathcal N(\mu(x), \operatorname{diag}\sigma^2(x))$
# per image. Latent diffusion trains on samples $z \sim q(z \mid x)$, computed once for the whole
# training set (the encoder never runs in the diffusion training loop), and decodes the diffusion
# model's output with the VAE's decoder. One detail matters: the forward process of chapter 3
# assumes data of about unit variance (pixels in $[-1, 1]$), but nothing makes a VAE's latents so.
# LDM rescales them by $\kappa = 1 / \operatorname{std}(z)$, measured on the data (LDM App. G; Stable
# Diffusion's $\kappa = 0.18215$ is this number for its autoencoder).

# %%
vae, vae_meta = chapter2_vae(profile, device)
vae.eval()
train_data = load_cifar10("train", subset=recipe["train_images"])
test_data = load_cifar10("test", subset=P["fid_reference"]
                         if P["fid_reference"] < 10_000 else None)
# each (N, 4, 8, 8): q(z | x) per image
mu, logvar = encode_images(vae, train_data.images.to(device))
# one z ~ q(z | x) per image
z = sample_latents(mu, logvar, torch.Generator(device).manual_seed(0))
# LDM App. G: the scale that gives the latents unit variance
kappa = 1.0 / z.double().std()
scale = latent_scale(mu, logvar, torch.Generator(device).manual_seed(0))
torch.testing.assert_close(float(kappa), scale)
print(f"{train_data}\n"  # the source by name
      f"latents {tuple(mu.shape[1:])} ({mu[0].numel()} numbers per image, "
      f"{train_data.images[0].numel() / mu[0].numel():.0f}x fewer than "
      f"pixels); std(z) = {float(z.std()):.3f}, "
      f"so kappa = {scale:.4f}")

# %%
# eight test images, across the classes
spread = torch.linspace(0, len(test_data.images) - 1, 8).long()
x_test = to_float(test_data.images[spread]).to(device)
with torch.no_grad():
    recon = vae(x_test)  # decode(mu(x)): what the VAE keeps of each image
recon_psnr = float(psnr(recon.clamp(-1, 1), x_test).mean())
image_grid(torch.cat([x_test, recon]).cpu(), nrow=8, figsize=(8, 2.2),
           title="test images (top) and the VAE's reconstructions (bottom): "
                 f"PSNR {recon_psnr:.1f} dB")
show_jpeg()

# %% [markdown]
# The reconstructions bound what latent diffusion can produce: a perfect latent model still
# draws its images through this decoder (LDM Table 8 reports the same trade-off for its
# autoencoders: more compression, lower reconstruction quality).

# %% [markdown]
# ## Captions from pixels
#
# A text-to-image model needs captions, and CIFAR-10 has only labels. We make captions from the
# label and two attributes measured from the pixels: the **dominant colour** (the hue of most
# saturated pixels; gray, white or black when few pixels are saturated) and the **brightness**
# (the mean value, "dark" or "bright" at the extremes). `course_lib.data.captions` does this for all
# images at once and maps words to token ids from a fixed vocabulary, with a start token (BOS)
# first; the **empty caption** (only BOS) is the null condition of classifier-free guidance, as the
# null class was in chapter 5.

# %%
captions = caption_images(train_data.images, train_data.labels)
# (N, L) long: BOS, words, padding
tokens = tokenize(captions, recipe["max_tokens"])
assert detokenize(tokens[:100]) == captions[:100]
colour, _ = image_attributes(train_data.images)
share = torch.bincount(colour, minlength=len(COLOURS)).float() / len(colour)
print(f"{len(set(captions))} distinct captions; dominant colours: "
      + ", ".join(f"{c} {p:.0%}"
                  for c, p in zip(COLOURS, share.tolist()) if p > 0))
print("tokens of the first caption:", tokens[0].tolist(), "=",
      repr(captions[0]))
fig, axes = plt.subplots(2, 4, figsize=(9, 5))
# across the classes
for ax, i in zip(axes.flat,
                 torch.linspace(0, len(captions) - 1, 8).long().tolist()):
    ax.imshow(train_data.images[i].permute(1, 2, 0).numpy())
    ax.set_title(textwrap.fill(captions[i], 22), fontsize=8)
    ax.axis("off")
fig.suptitle("training images and their synthetic captions")
show_jpeg(fig)

# %% [markdown]
# ## Cross-attention
#
# The U-Net reads the caption through **cross-attention** layers placed after its self-attention
# layers: the queries come from the feature map's $HW$ positions, the keys and values from the
# text encoder's $L$ token features $\tau_\theta(y)$ (LDM Eq. 3),
#
# $$ \operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\Big(\frac{Q K^\top}{\sqrt d}\Big) V,
#    \quad Q = W_Q\, \varphi(z_t), \; K = W_K\, \tau_\theta(y), \; V = W_V\, \tau_\theta(y), $$
#
# so every position of the image takes a weighted average of the words. Captions have different
# lengths and are padded to $L$ tokens; the padding must get no weight, so its scores are set to
# $-\infty$ before the softmax. The text encoder (a small transformer) is trained together with the
# U-Net, from scratch: nothing is downloaded.

# %% [markdown]
# ```{exercise} Cross-attention with a padding mask
# :label: ex-cross-attention
#
# Write `cross_attention(q, k, v, mask)` for queries `q` of shape `(B, heads, N, d)`, keys and
# values `k`, `v` of shape `(B, heads, L, d)` and a boolean `mask` `(B, L)`, True for the tokens to
# attend to: $\operatorname{softmax}(q k^\top / \sqrt d)\, v$ with the padded tokens' scores at
# $-\infty$. Do not call `scaled_dot_product_attention`; the check compares with it.
# ```
#
# ```{solution-start} ex-cross-attention
# :class: dropdown
# ```

# %% tags=["solution"]
def my_cross_attention(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5  # (B, heads, N, L)
    # padding gets no weight
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    return scores.softmax(dim=-1) @ v  # LDM Eq. 3


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch06 import check_cross_attention

check_cross_attention(my_cross_attention)

# %% [markdown]
# The library's layer, `course_lib.models.unet_blocks.CrossAttention`, is this computation with the
# projections, a group norm before the queries and a residual connection; with the same weights
# it gives what your function gives:

# %% tags=["nbval-check-output"]
layer = course_lib.models.unet_blocks.CrossAttention(
    channels=16, context_dim=12, num_heads=2, groups=4).double()
# the output projection starts at zero; make it visible
torch.nn.init.normal_(layer.proj.weight)
# (B, C, H, W) feature map
feat = torch.randn(3, 16, 4, 4, dtype=torch.float64)
ctx = torch.randn(3, 5, 12, dtype=torch.float64)  # (B, L, D) token features
ctx_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]],
                        dtype=torch.bool)
# (B, n, C) -> (B, heads, n, d)
heads = lambda a, n: a.reshape(3, n, 2, 8).transpose(1, 2)
q = heads(layer.q(layer.norm(feat).flatten(2).transpose(1, 2)), 16)
attn = my_cross_attention(q, heads(layer.k(ctx), 5), heads(layer.v(ctx), 5),
                          ctx_mask)  # (B, heads, HW, d)
mine = feat + (layer.proj(attn.transpose(1, 2).reshape(3, 16, 16))
               .transpose(1, 2).reshape(3, 16, 4, 4))
torch.testing.assert_close(mine, layer(feat, ctx, ctx_mask))
print("my cross-attention equals course_lib's CrossAttention layer")

# %% [markdown]
# ## Training the text-to-image model
#
# `course_lib.models.LatentDenoiser` is the text encoder and a chapter 3 U-Net with cross-attention
# (`UNetConfig.context_dim`), at the latents' size, as one module. Training is chapter 5's, with
# captions for labels: the scaled latent $\kappa z$ is noised, the model predicts the noise from $z_t$,
# $t$ and the caption, and each caption is replaced by the empty one with probability
# $p_{\text{uncond}} = 0.1$, so that the same network also learns the unconditional model that
# classifier-free guidance needs.

# %% [markdown]
# The page trains the recipe live for its first steps (the same seed, data order and warm-up as
# the full run); `chapter6_ldm` loads the full run when it is in the course cache or published
# with the course, and trains it now otherwise, with a checkpoint so that an interrupted run
# resumes (`scripts/train.py ch06_ldm --profile laptop` trained the published one, in chunks).

# %%
t0 = time.perf_counter()
live = train_ldm(recipe, mu, logvar, tokens.to(device), scale,
                 steps=P["live_steps"])
print(f"{P['live_steps']:,} steps of batch {recipe['batch']} in "
      f"{time.perf_counter() - t0:.0f} s on {device}")
model, meta = chapter6_ldm(
    profile, device, stand_in=False,
    checkpoint_path=cache_dir() / "checkpoints"
    / f"ch06_ldm-{profile.name}.pt")
model.eval()
run = meta["config"]["recipe"]
check_autoencoder(meta, vae_meta)  # trained on these latents
assert abs(meta["config"]["latent_scale"] - scale) < 1e-6 * scale
n_params = sum(p.numel() for p in model.parameters())
print(f"{n_params / 1e6:.2f}M parameters "
      f"({sum(p.numel() for p in model.text.parameters()) / 1e6:.2f}M "
      "in the text encoder)")
show_run(meta, live, what="text-to-image model",
         ylabel="noise-prediction loss (window mean)")
plt.show()

# %% [markdown]
# ## Text to image, with guidance
#
# Sampling is chapter 4's DDIM in latent space, on `text_cfg_model`: the conditional and the
# unconditional (empty-caption) predictions in one forward pass of the doubled batch, combined as
# $\hat\epsilon = \epsilon_\varnothing + w(\epsilon_c - \epsilon_\varnothing)$ (chapter 5), then
# one decoder pass at the end. The figure holds the noise fixed down each column and changes only
# the colour word in the prompt.

# %%
schedule = make_schedule(recipe["schedule"], recipe["num_steps"])
steps = timesteps(recipe["num_steps"], P["sampling_steps"], "trailing")
latent_shape = tuple(mu.shape[1:])


def text_to_image(prompt, z_T, w=P["w"], negative=None):
    """Images (B, 3, 32, 32) in [-1, 1] for one prompt, from latent noise
    z_T (B, 4, 8, 8)."""
    neg = (None if negative is None
           else tokenize(negative, recipe["max_tokens"])[0])
    guided = text_cfg_model(model, tokenize(prompt, recipe["max_tokens"])[0],
                            w, negative=neg)
    return decode_latents(vae, ddim_sample(guided, schedule, z_T, steps),
                          scale)


colour_words = ["red", "yellow", "green", "blue", "white"]
z_T = torch.randn(P["samples_per_colour"], *latent_shape,
                  generator=torch.Generator().manual_seed(1)).to(device)
by_colour = {c: text_to_image(f"a photo of a {c} automobile", z_T)
             for c in colour_words}
n_show = min(6, P["samples_per_colour"])
grid = torch.stack([by_colour[c][:n_show] for c in colour_words],
                   dim=1).flatten(0, 1)  # rows: seeds
image_grid(grid.cpu(), nrow=len(colour_words), figsize=(5, 1.05 * n_show),
           title="a photo of a {" + ", ".join(colour_words)
                 + "} automobile\n(columns; same noise along each row)")
show_jpeg()

# %% [markdown]
# Does the colour word steer the colour? The same attribute measurement that wrote the captions
# reads the samples back; the baseline is the empty caption on the same noise.

# %%
empty = text_to_image("", z_T, w=1.0)
measured_empty, _ = image_attributes(to_uint8(empty).cpu())
match = {}
for c in colour_words:
    measured, _ = image_attributes(to_uint8(by_colour[c]).cpu())
    match[c] = ((measured == COLOURS.index(c)).float().mean().item(),
                (measured_empty == COLOURS.index(c)).float().mean().item())
print(f"share of samples whose measured dominant colour is the prompt's "
      f"({P['samples_per_colour']} per colour, w = {P['w']}):")
for c, (m, base) in match.items():
    print(f"  {c:7s} {m:6.1%}   "
          f"(empty caption on the same noise: {base:6.1%})")
colour_match = sum(m for m, _ in match.values()) / len(match)
colour_base = sum(b for _, b in match.values()) / len(match)

# %% [markdown]
# ## Image to image: SDEdit
#
# SDEdit {cite:p}`meng2022sdedit` edits a real image with a model that was never trained to edit:
# noise the image's latent to an intermediate step (chosen by a **strength** in $[0, 1]$), then
# denoise it with a new prompt. Low strength keeps the layout and colours; high strength keeps
# little but the prompt. Which steps run is diffusers' rule, the last $\lfloor N s \rfloor$ of the
# sampler's $N$ steps:

# %% [markdown]
# ```{exercise} Which steps SDEdit runs
# :label: ex-img2img-steps
#
# Write `img2img_steps(steps, strength)`: given the `N` steps of a full sampling run (a long tensor,
# noisiest first) and a strength in $[0, 1]$, return the last $\min(\lfloor N \cdot
# \text{strength}\rfloor, N)$ of them.
# ```
#
# ```{solution-start} ex-img2img-steps
# :class: dropdown
# ```

# %% tags=["solution"]
def my_img2img_steps(steps, strength):
    keep = min(int(len(steps) * strength), len(steps))
    return steps[len(steps) - keep:]


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch06 import check_img2img_steps

check_img2img_steps(my_img2img_steps)

# %% [markdown]
# The slider moves the strength; the prompt asks for a blue version of each test image.

# %%
# four test images
x_edit, y_edit = test_data.images[spread[::2]], test_data.labels[spread[::2]]
# the scaled posterior means (4, 4, 8, 8)
z0 = scale * encode_images(vae, x_edit.to(device))[0]
prompts = [f"a photo of a blue {CIFAR10_CLASSES[y]}" for y in y_edit.tolist()]
guided = text_cfg_model(model,
                        tokenize(prompts, recipe["max_tokens"]).to(device),
                        P["w"])
noise = torch.randn(z0.shape,
                    generator=torch.Generator().manual_seed(2)).to(device)
strengths = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
frames = []
for strength in strengths:
    edited = decode_latents(
        vae, sdedit(guided, schedule, z0, steps, strength, noise), scale)
    ax = image_grid(torch.cat([to_float(x_edit).to(device), edited]).cpu(),
                    nrow=4, figsize=(4.5, 2.6),
                    title=f"strength {strength:g}: originals (top), "
                          "edited (bottom)")
    frames.append(figure_jpeg(ax.figure, dpi=70))
    plt.close(ax.figure)
print("prompts:", prompts)
frame_slider(frames, [f"strength {s:g}" for s in strengths],
             description="strength")

# %% [markdown]
# ## Inpainting
#
# To fill a masked region, sample as usual but, after every step, overwrite the *known* region
# with the real latent noised to the step just reached (RePaint {cite:p}`lugmayr2022repaint`
# without its resampling): the model only ever invents the unknown part, and sees a known part that
# is consistent with the current noise level. Here the right half of each latent (the right half
# of the image) is regenerated.

# %%
known = torch.ones(1, 1, *latent_shape[1:], device=device)
known[..., latent_shape[2] // 2:] = 0  # 0: the model fills in the right half
z_fill = torch.randn(z0.shape,
                     generator=torch.Generator().manual_seed(3)).to(device)
filled = decode_latents(
    vae, inpaint(guided, schedule, z0, known, z_fill, steps), scale)
shown = to_float(x_edit).to(device).clone()
shown[..., 16:] = 0.0  # the masked input, for the figure
image_grid(torch.cat([to_float(x_edit).to(device), shown, filled]).cpu(),
           nrow=4, figsize=(4.5, 3.6),
           title="original, masked, inpainted (prompt: a blue ...)")
show_jpeg()

# %% [markdown]
# ## What latent diffusion saves
#
# The point of the latent space is cost. We measure, on this machine and at this profile's sizes,
# chapter 3's pixel-space U-Net against this chapter's latent model: optimizer steps per second (the
# latent model includes its text encoder; the VAE costs nothing during training, as its latents
# are computed once), peak GPU memory, and sampling time per image (the latent model's includes the
# decoder).

# %%
unet3, meta3 = chapter3_unet(profile, device)  # the pixel model
unet3.eval()
pixel_recipe = meta3["config"]["recipe"]
pixel_schedule = make_schedule(pixel_recipe["schedule"],
                               pixel_recipe["num_steps"])
pixel_steps = timesteps(pixel_recipe["num_steps"], P["sampling_steps"],
                        "trailing")
pixel_loss = EpsilonLoss(pixel_schedule)
pixel_batches = image_batches(train_data.images.to(device), recipe["batch"],
                              generator=torch.Generator(device).manual_seed(0))
latent_loss = CaptionDropoutLoss(schedule, p_uncond=recipe["p_uncond"])
latent_data = latent_batches(mu, logvar, tokens.to(device), recipe["batch"],
                             scale, torch.Generator(device).manual_seed(0))
cost = {"pixel": training_cost(unet3, pixel_loss, pixel_batches),
        "latent": training_cost(model, latent_loss, latent_data)}
x_pix = torch.randn(16, 3, 32, 32, device=device)
empty_caption = tokenize("")[0]
sample_s = {
    "pixel": sampling_seconds_per_image(
        lambda: ddim_sample(unet3, pixel_schedule, x_pix, pixel_steps), 16),
    "latent": sampling_seconds_per_image(
        lambda: decode_latents(
            vae, ddim_sample(text_cfg_model(model, empty_caption, 1.0),
                             schedule, z_T[:16], steps), scale),
        min(16, len(z_T)))}
params = {"pixel": sum(p.numel() for p in unet3.parameters()),
          "latent": n_params}
print(f"batch {recipe['batch']}, {device}:")
print(f"{'':8s}{'parameters':>12s}{'train steps/s':>15s}{'peak memory':>14s}"
      f"{'sampling s/image':>18s}")
for k in ("pixel", "latent"):
    mem = ("n/a (CPU)" if cost[k].peak_memory_mib is None
           else f"{cost[k].peak_memory_mib:,.0f} MiB")
    print(f"{k:8s}{params[k]:>12,}{cost[k].steps_per_second:>15.1f}"
          f"{mem:>14s}{sample_s[k]:>18.4f}")

# %% [markdown]
# Which gives better images for the same training budget? Both models' full runs are here, so
# we compare them at equal **training compute**: a training step costs about three forward passes
# (forward and backward), so a run costs $3 \times \text{steps} \times \text{batch} \times$ the
# forward flops of one sample, on any hardware. Both are scored by FID of unconditional samples
# (the latent model with the empty caption) with the same sampler and sample count. Where chapter 3's
# model was published with its FID-over-training curve (the `laptop` profile: its snapshots were
# scored with 500 samples of 25 DDIM steps, this page's setting), the curve gives the pixel model's
# FID at the latent model's budget.

# %%
z_probe = torch.zeros(1, *latent_shape, device=device)
flops = {  # forward flops of one sample (2 per multiply-add)
    "pixel": 2e9 * model_gflops(unet3),
    "latent": 2e9 * gflops(model, z_probe,
                           torch.zeros(1, dtype=torch.long, device=device),
                           empty_caption[None].to(device))}
runs = {"pixel": pixel_recipe, "latent": run}
pflop = {k: 3 * runs[k]["steps"] * runs[k]["batch"] * flops[k] / 1e15
         for k in runs}
ref = reference_stats(test_data.images[: P["fid_reference"]].to(device),
                      f"{test_data.source_id}-test-{P['fid_reference']}",
                      cache_dir() / "fid")
n = P["fid_samples"]
gen = torch.Generator().manual_seed(4)
noise_pix = torch.randn(n, 3, 32, 32, generator=gen).to(device)
noise_lat = torch.randn(n, *latent_shape, generator=gen).to(device)
x_pixel = torch.cat([ddim_sample(unet3, pixel_schedule, b, pixel_steps)
                     for b in noise_pix.split(250)])
x_latent = torch.cat([
    decode_latents(vae, ddim_sample(text_cfg_model(model, empty_caption, 1.0),
                                    schedule, b, steps), scale)
    for b in noise_lat.split(250)])
fids = {k: fid(to_uint8(x), ref.mu, ref.sigma, f"{test_data.source_id} test",
               ref_count=ref.num_images, bootstrap=P["bootstrap"])
        for k, x in (("pixel", x_pixel), ("latent", x_latent))}
for k in ("pixel", "latent"):
    hours = (meta3 if k == "pixel" else meta)["train_seconds"] or 0
    print(f"{k:6s}: {runs[k]['steps']:,} steps of {runs[k]['batch']}, "
          f"{pflop[k]:.3g} PFLOP ({hours / 3600:.2f} h on "
          f"{(meta3 if k == 'pixel' else meta)['hardware']}): {fids[k]}")
fig, axes = plt.subplots(1, 2, figsize=(8, 2.4))
for ax, k, x in zip(axes, ("pixel", "latent"), (x_pixel, x_latent)):
    image_grid(x[:16].cpu(), nrow=8, ax=ax,
               title=f"{k}: FID {fids[k].value:.0f}")
fig.suptitle("unconditional samples of the two full runs")
show_jpeg(fig)

# %%
curve = meta3["metrics"].get("fid_over_training") or {}
comparable = (curve.get("samples") == n
              and f"{P['sampling_steps']} steps" in curve.get("sampler", ""))
fig, ax = plt.subplots(figsize=(6, 3.2))
if comparable:  # the pixel model's FID over training, in PFLOP
    per_step = pflop["pixel"] / pixel_recipe["steps"]
    ax.errorbar([s * per_step for s in curve["steps"]], curve["fid"],
                yerr=curve["std"], marker=".", color="C0",
                label="pixel (chapter 3), over training")
for k, colour in (("pixel", "C0"), ("latent", "C1")):
    ax.errorbar([pflop[k]], [fids[k].value], yerr=[fids[k].std or 0],
                marker="o", color=colour, ls="none", label=f"{k}, full run")
ax.set(xlabel="training compute (PFLOP)", ylabel="FID", xscale="log",
       title=f"FID of {n:,} unconditional samples, DDIM "
             f"{P['sampling_steps']} steps")
ax.legend()
plt.show()
pixel_at_budget = None
if comparable:  # the pixel curve at the latent model's compute
    log_c = np.log([s * per_step for s in curve["steps"]])
    if log_c[0] <= np.log(pflop["latent"]) <= log_c[-1]:
        pixel_at_budget = float(np.interp(np.log(pflop["latent"]), log_c,
                                          curve["fid"]))
        print(f"at the latent model's {pflop['latent']:.3g} PFLOP the pixel "
              f"model's FID was {pixel_at_budget:.1f} (its curve, "
              "interpolated in log compute); the latent model's is "
              f"{fids['latent'].value:.1f}")
    else:
        print("the latent model's compute lies outside the pixel model's "
              "curve: compare the full-run points")

# %% [markdown]
# Read the plot as a race: for the same compute, which point lies lower? In `smoke`, the FIDs of
# a few dozen samples from models trained for seconds only say that the code runs. What holds at
# every size: the latent model sees 12 times fewer numbers per image, so at equal width it takes
# more steps per second, and its samples cost one decoder pass more.

# %%
report({
    "latent_scale": {"value": scale,
                     "description": "1 / std of the autoencoder's latents "
                                    "(LDM App. G)"},
    "vae_psnr_db": {"value": recon_psnr, "samples": len(x_test),
                    "description": "the autoencoder's reconstructions of "
                                   "test images"},
    "colour_match": {"value": colour_match,
                     "samples": P["samples_per_colour"] * len(colour_words),
                     "sampling_steps": P["sampling_steps"],
                     "description": "samples whose measured colour is the "
                                    f"prompt's, w = {P['w']}"},
    "colour_match_empty_caption": {
        "value": colour_base,
        "samples": P["samples_per_colour"] * len(colour_words),
        "sampling_steps": P["sampling_steps"],
        "description": "the same share with the empty caption on the same "
                       "noise"},
    "fid_latent": {
        "value": fids["latent"], "samples": n,
        "sampling_steps": P["sampling_steps"],
        "description": f"latent model (empty caption), {pflop['latent']:.3g} "
                       "PFLOP of training"},
    "fid_pixel": {
        "value": fids["pixel"], "samples": n,
        "sampling_steps": P["sampling_steps"],
        "description": f"chapter 3's pixel U-Net, {pflop['pixel']:.3g} "
                       "PFLOP of training"},
    **({"fid_pixel_at_latent_budget": {
        "value": pixel_at_budget, "samples": n,
        "sampling_steps": P["sampling_steps"],
        "description": "chapter 3's FID-over-training curve at the latent "
                       "model's training compute"}}
       if pixel_at_budget is not None else {}),
    "train_speedup_latent": {
        "value": (cost["latent"].steps_per_second
                  / cost["pixel"].steps_per_second),
        "description": "latent / pixel training steps per second, "
                       "same batch"},
}, notes={"training": f"{run['steps']:,} steps of batch {run['batch']} in "
                      f"{(meta['train_seconds'] or 0) / 3600:.2f} h on "
                      f"{meta['hardware']}"})

# %% [markdown]
# ## Summary
#
# - Latent diffusion trains chapter 3's model on an autoencoder's latents, rescaled to unit
#   variance by a measured factor; the decoder turns samples into images.
# - Text enters by cross-attention from the image's positions to a text encoder's token features;
#   padding is masked, and the empty caption is the null condition for classifier-free guidance.
# - The same trained model edits images: SDEdit noises a real latent part way and denoises it
#   with a new prompt; inpainting re-imposes the known region at every step.
#
# Next: chapter 7 replaces the U-Net by a transformer, the Diffusion Transformer.
