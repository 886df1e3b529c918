# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
# ---

# %% [markdown]
# # 7. The Diffusion Transformer (DiT)
#
# The U-Net of chapters 3 to 6 was designed for images: convolutions, a pyramid of resolutions,
# attention only where the feature map is small. The Diffusion Transformer {cite:p}`peebles2023dit`
# drops all of it: cut the input into patches, treat them as tokens, and run a plain transformer,
# conditioned on the time step and the class through the normalization layers ("adaLN-Zero"). Its
# quality follows its compute, the Gflops of one forward pass, more than its parameter count; it is
# the backbone of Stable Diffusion 3, FLUX and Sora-like video models.
#
# **What you will build:** patchify (exercise) and unpatchify; the adaLN-Zero block (exercise) and
# why it starts as the identity; DiT's configurations with their Gflops, checked against the
# paper's table; class-conditional DiTs trained on CIFAR-10 with classifier-free guidance, and FID
# against Gflops; DiT against a U-Net trained with the same compute; the MMDiT block of SD3 (joint
# attention over image and text tokens); and LoRA fine-tuning on one class.
#
# **Where DiT runs here:** as in the paper, in an autoencoder's latent space: the
# $4 \times 8 \times 8$ latents of chapter 2's autoencoder, which chapter 6's model diffuses in
# too (DiT used Stable Diffusion's $32 \times 32 \times 4$ ones). Patches of 2 and 1 give grids of
# 16 and 64 tokens. That is what makes three DiTs affordable on a CPU: a few hours in all, where
# DiT-S/4 on $32 \times 32$ pixels alone would take about five. The course adds two sizes below
# the paper's smallest, XXS (4 blocks, width 128) and XS (6 blocks, width 192); the table of
# configurations below still checks our Gflops against the paper's at its own input size.
#
# **Time:** about two minutes on a 2-core CPU in the `smoke` profile (DiT-tiny, a few
# hundred steps: the samples are blobs, the code path is the real one). **Outputs on this page**
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
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import course_lib
from course_lib.data.captions import VOCAB, tokenize
from course_lib.data import CIFAR10_CLASSES, load_cifar10, to_uint8
from course_lib.data.latents import decode_latents
from course_lib.course.paths import cache_dir
from course_lib.recipes.ch07_dit import (chapter7_dit, chapter7_unet,
                                         dit_config, dit_recipe, dit_sizes,
                                         finetune_lora, lora_recipe,
                                         train_latent, unet_recipe)
from course_lib.recipes.ch06_ldm import (check_autoencoder,
                                         latent_training_set)
from course_lib.samplers.ddim import ddim_sample, timesteps
from course_lib.evaluation.fid import fid, reference_stats
from course_lib.evaluation.flops import gflops, model_gflops
from course_lib.process.guidance import cfg_model
from course_lib.models.lora import trainable_parameters
from course_lib.models import UNet
from course_lib.models.dit import (DiT, DiTBlock, DiTConfig, patchify,
                                   unpatchify)
from course_lib.models.mmdit import MMDiT, MMDiTConfig, joint_attention
from course_lib.models.text import TextEncoder, TextEncoderConfig
from course_lib.book.plotting import image_grid, show_jpeg
from course_lib.book.runs import show_run
from course_lib.recipes.ch05_cfg import (chapter5_classifier,
                                         evaluate_classifier)
from course_lib.recipes.ch03_ddpm import unet_config
from course_lib.book.results import report
from course_lib.process.schedules import make_schedule

profile = course_lib.get_profile()
device = course_lib.default_device()
# the main DiT and the sizes of the FID-against-Gflops plot, per profile
# (their training recipes: course_lib.recipes.ch07_dit)
MAIN, SIZES = dit_sizes(profile)
# this chapter's sizes, per profile
P = profile.choose(
    smoke=dict(live_steps=20, w=3.0, sampling_steps=25, fid_samples=64,
               fid_reference=200, bootstrap=4, lora_class=1,
               lora_samples=32),
    laptop=dict(live_steps=50, w=3.0, sampling_steps=25, fid_samples=500,
                fid_reference=10_000, bootstrap=50, lora_class=1,
                lora_samples=500),
    colab=dict(live_steps=200, w=3.0, sampling_steps=50, fid_samples=2_000,
               fid_reference=10_000, bootstrap=50, lora_class=1,
               lora_samples=500),
    full=dict(live_steps=500, w=3.0, sampling_steps=50, fid_samples=10_000,
              fid_reference=10_000, bootstrap=200, lora_class=1,
              lora_samples=2_000),
)
recipe = dit_recipe(profile, MAIN)
course_lib.show_setup("7 · The Diffusion Transformer", {
    "main model": f"DiT-{MAIN} ('{recipe['model']}' at this profile) on "
                  "chapter 2's latents, class-conditional, "
                  f"{recipe['steps']:,} steps (loaded, or trained)",
    "scaling": f"DiT {', '.join(SIZES)}: FID of {P['fid_samples']:,} CFG "
               f"samples (w = {P['w']}, DDIM {P['sampling_steps']} steps) "
               f"against {P['fid_reference']:,} test images",
    "U-Net": f"class-conditional, same latents, "
             f"{unet_recipe(profile)['steps']:,} steps: the main DiT's "
             "training compute",
    "LoRA": f"fine-tune on class '{CIFAR10_CLASSES[P['lora_class']]}', "
            f"{lora_recipe(profile)['steps']:,} steps",
}, profile, device)

# %% [markdown]
# ## Images as tokens
#
# DiT's first layer cuts $x_t$ ($C \times S \times S$) into non-overlapping $p \times p$ patches and
# maps each, flattened, to a $D$-dimensional token by one linear layer (a convolution with kernel
# and stride $p$), then adds fixed 2D sine-cosine position embeddings (DiT Sec. 3.2). That gives
# $N = (S/p)^2$ tokens: halving $p$ quadruples $N$ and, at a fixed width, roughly quadruples the
# compute. The last layer maps each token back to a $p \times p \times C$ patch ("unpatchify").

# %% [markdown]
# ```{exercise} Patchify
# :label: ex-patchify
#
# Write `patchify(x, p)` that turns images `x` of shape `(B, C, S, S)` into tokens of shape
# `(B, (S/p)^2, p*p*C)`: the patches in row-major order (left to right, then top to bottom), each
# flattened as (row in the patch, column in the patch, channel).
# ```
#
# ```{solution-start} ex-patchify
# :class: dropdown
# ```

# %% tags=["solution"]
def my_patchify(x, p):
    B, C, S, _ = x.shape
    # (B, C, patch row, row in patch, patch column, column in patch)
    x = x.reshape(B, C, S // p, p, S // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(B, (S // p) ** 2, p * p * C)


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch07 import check_patchify

check_patchify(my_patchify)

# %% tags=["nbval-check-output"]
x = torch.randn(2, 3, 32, 32)
tokens = my_patchify(x, 4)  # (2, 64, 48)
# the library's inverse gives the images back
torch.testing.assert_close(unpatchify(tokens, 4, 3), x)
dit = DiT(DiTConfig.tiny(4, input_size=32, in_channels=3, num_classes=10))
torch.testing.assert_close(
    # the patch embedding is a linear map
    dit.x_embedder(x).flatten(2).transpose(1, 2),
    tokens @ dit.x_embedder.weight.permute(0, 2, 3, 1).reshape(
        dit.config.hidden_size, -1).T
    + dit.x_embedder.bias)
print(f"32x32x3 images -> {tokens.shape[1]} tokens of {tokens.shape[2]} "
      "numbers (patch 4); "
      f"{my_patchify(x, 2).shape[1]} tokens with patch 2; "
      "the embedding is one linear layer on each patch")

# %% [markdown]
# ## Conditioning through the normalization: adaLN-Zero
#
# DiT compares ways of feeding $t$ and the class $y$ to the transformer (in-context tokens,
# cross-attention, adaptive layer norm) and keeps the cheapest that worked best: an MLP maps
# $c = \text{emb}(t) + \text{emb}(y)$ to six vectors per block, a shift and scale after each layer
# norm and a **gate** on each residual branch,
#
# $$ x \leftarrow x + \alpha_1(c) \odot \operatorname{Attn}\big(\operatorname{LN}(x)\,(1 + \gamma_1(c)) + \beta_1(c)\big),
#    \qquad \text{then the same with the MLP and } (\beta_2, \gamma_2, \alpha_2). $$
#
# "Zero": the MLP that makes the six vectors starts at zero, so every gate is 0 and every block
# starts as the identity (DiT Sec. 3.2; the U-Net of chapter 3 does the same with its zero-initialized
# last convolutions). DiT found this initialization clearly better than the alternatives.

# %% [markdown]
# ```{exercise} The adaLN-Zero residual branch
# :label: ex-ada-ln-zero
#
# Write `ada_ln_zero(x, f, shift, scale, gate)` for tokens `x` `(B, N, D)`, a branch `f` (a
# function of `(B, N, D)` tensors) and per-sample vectors `shift`, `scale`, `gate` `(B, D)`:
# $x + \text{gate} \odot f(\operatorname{LN}(x)(1 + \text{scale}) + \text{shift})$, with a layer norm
# over the $D$ features that has no learned parameters (`eps=1e-6`).
# ```
#
# ```{solution-start} ex-ada-ln-zero
# :class: dropdown
# ```

# %% tags=["solution"]
def my_ada_ln_zero(x, f, shift, scale, gate):
    # no affine parameters: adaLN supplies them
    h = F.layer_norm(x, x.shape[-1:], eps=1e-6)
    # DiT Sec. 3.2
    return x + gate[:, None] * f(h * (1 + scale[:, None]) + shift[:, None])


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch07 import check_ada_ln_zero

check_ada_ln_zero(my_ada_ln_zero)

# %% tags=["nbval-check-output"]
block = DiTBlock(dim=64, num_heads=2).double()
h, c = (torch.randn(3, 16, 64, dtype=torch.float64),
        torch.randn(3, 64, dtype=torch.float64))
# a trained block's modulation, say
torch.nn.init.normal_(block.adaLN_modulation[-1].weight, std=0.1)
# (beta_1, gamma_1, alpha_1, beta_2, ...)
s1, g1, a1, s2, g2, a2 = block.adaLN_modulation(c).chunk(6, dim=1)
mine = my_ada_ln_zero(my_ada_ln_zero(h, block.attn, s1, g1, a1), block.mlp,
                      s2, g2, a2)
torch.testing.assert_close(mine, block(h, c))
fresh = DiT(DiTConfig.tiny(4, input_size=32, in_channels=3, num_classes=10))
print("two of my branches equal course_lib's DiTBlock; "
      "at initialization every block is the identity:",
      all(torch.equal(b(h.float(), c.float()), h.float())
          for b in fresh.blocks),
      "and the model outputs",
      float(fresh(torch.randn(2, 3, 32, 32), torch.zeros(2, dtype=torch.long))
            .detach().abs().max()))

# %% [markdown]
# ## Configurations and their compute
#
# DiT names its models by width and depth (S, B, L, XL) and patch size: DiT-S/2 is the small model
# with $2 \times 2$ patches. Counting the multiply-adds of one forward pass with PyTorch's
# `FlopCounterMode` (`course_lib.evaluation.flops`, in the paper's convention of one multiply-add = one flop)
# reproduces the paper's Table 4 at its $32 \times 32 \times 4$ latent input. On chapter 2's
# $4 \times 8 \times 8$ latents the same models see 16 times fewer tokens; the sizes this
# chapter trains are below, with the chapter 3 U-Net on pixels for scale.

# %% tags=["nbval-check-output"]
# DiT Table 4, ImageNet 256 (reference)
paper_gflops = {"S/4": 1.41, "S/2": 6.06, "B/4": 5.56, "B/2": 23.01}
rows = []
with torch.device("meta"):  # count without allocating the weights
    for name, paper in paper_gflops.items():
        # the paper's input: 32x32x4 latents, 1000 classes
        m = DiT(DiTConfig.named(name))
        rows.append((f"DiT-{name} (paper's input)", m.config.num_tokens,
                     sum(p.numel() for p in m.parameters()),
                     model_gflops(m), paper))
    for name in ("XXS/2", "XS/2", "XS/1", "S/2", "S/1"):
        # chapter 2's 4x8x8 latents, CIFAR-10's 10 classes
        m = DiT(DiTConfig.named(name, input_size=8, in_channels=4,
                                num_classes=10))
        rows.append((f"DiT-{name} (4x8x8)", m.config.num_tokens,
                     sum(p.numel() for p in m.parameters()),
                     model_gflops(m), None))
    ddpm_unet = UNet(unet_config({"unet": "ddpm_cifar10"}))
    rows.append(("U-Net (DDPM's, pixels)", None,
                 sum(p.numel() for p in ddpm_unet.parameters()),
                 model_gflops(ddpm_unet), None))
print(f"{'model':26s}{'tokens':>7s}{'parameters':>13s}{'Gflops':>9s}"
      f"{'paper':>8s}")
for name, n_tok, n_par, g, paper in rows:
    fmt = lambda v, f: f"{v:{f}}" if v is not None else "-"  # noqa: E731
    print(f"{name:26s}{fmt(n_tok, '>7d'):>7s}{n_par:>13,}{g:>9.3f}"
          f"{fmt(paper, '>8.2f'):>8s}")
for name, _, _, g, paper in rows[:4]:
    # within 1% of the paper's Table 4
    assert abs(g - paper) / paper < 0.01, (name, g, paper)

# %% [markdown]
# ## Training DiTs on latents
#
# Chapter 2's autoencoder encodes CIFAR-10's training set once; as in chapter 6, each training batch
# draws a fresh latent $z \sim q(z \mid x)$ and scales it by $\kappa$ to unit variance. Each
# configuration is trained class-conditionally with label dropout (chapter 5) by
# `course_lib.recipes.ch07_dit.train_latent`, with DiT's recipe in the `full` profile (AdamW at a
# constant $10^{-4}$, no weight decay, batch 256, EMA 0.9999; the paper trains 400k steps, we train
# fewer) and a shorter run at a higher rate after a warm-up in `laptop`. The first steps of the main
# DiT train live below; the full runs are artifacts, loaded from the cache or the registry and
# trained here only if missing (hours on a CPU: the cell says how long first). In `smoke`, every
# size means DiT-tiny (2 blocks, width 64) at its patch size.

# %%
d = latent_training_set(profile, recipe["train_images"], device)
vae, vae_meta, scale = d["vae_model"], d["vae_meta"], d["scale"]
print(f"{len(d['mu']):,} training images of {d['data']} encoded by "
      f"{d['vae']}:\nlatents {tuple(d['mu'].shape[1:])}, kappa = {scale:.4f}")
t0 = time.perf_counter()
live = train_latent(recipe, DiT(dit_config(recipe)).to(device), d["mu"],
                    d["logvar"], d["labels"], scale, steps=P["live_steps"])
print(f"{P['live_steps']:,} steps of batch {recipe['batch']} in "
      f"{time.perf_counter() - t0:.0f} s on {device}")
models, metas = {}, {}
for size in SIZES:
    name = f"ch07_dit_{size.replace('/', '')}-{profile.name}"
    models[size], metas[size] = chapter7_dit(
        profile, device, size=size, stand_in=False,
        checkpoint_path=cache_dir() / "checkpoints" / f"{name}.pt")
    models[size].eval()
    check_autoencoder(metas[size], vae_meta)  # trained on these latents
model, meta = models[MAIN], metas[MAIN]
show_run(meta, live, what=f"DiT-{MAIN}",
         ylabel="noise-prediction loss (window mean)")
plt.show()

# %% [markdown]
# ## FID against Gflops
#
# Samples use classifier-free guidance from chapter 5 unchanged (`cfg_model`): DiT has the U-Net's
# interface, `model(x_t, t, y)`. DDIM runs in latent space; the autoencoder's decoder turns the
# latents $z_0 / \kappa$ into images, which FID scores against CIFAR-10's test set, with the
# bootstrap standard deviation of each point (chapter 5).

# %%
test_data = load_cifar10("test", subset=P["fid_reference"]
                         if P["fid_reference"] < 10_000 else None)
ref = reference_stats(test_data.images[: P["fid_reference"]].to(device),
                      f"{test_data.source_id}-test-{P['fid_reference']}",
                      cache_dir() / "fid")
schedule = make_schedule(recipe["schedule"], recipe["num_steps"])
steps = timesteps(recipe["num_steps"], P["sampling_steps"], "trailing")
n = P["fid_samples"]
y_eval = (torch.arange(n) % 10).to(device)  # every class equally often
noise = torch.randn(n, *recipe["latent_shape"],
                    generator=torch.Generator().manual_seed(0)).to(device)


def sample_images(m, y, w, z_T):
    """Guided DDIM in latent space, then the decoder: images in [-1, 1]."""
    # fp16/bf16 on a GPU (autocast), float32 on a CPU
    with course_lib.sampling_autocast(device):
        z0 = ddim_sample(cfg_model(m, y, w), schedule, z_T, steps)
    return decode_latents(vae, z0.float(), scale)


def score(images):
    return fid(to_uint8(images), ref.mu, ref.sigma,
               f"{test_data.source_id} test", ref_count=ref.num_images,
               bootstrap=P["bootstrap"])


scaling = {}
for size in SIZES:
    x = sample_images(models[size], y_eval, P["w"], noise)
    scaling[size] = dict(gflops=model_gflops(models[size]), fid=score(x),
                         steps=metas[size]["config"]["recipe"]["steps"],
                         seconds=metas[size]["train_seconds"])
    f = scaling[size]["fid"]
    print(f"DiT-{size} ({metas[size]['config']['recipe']['model']}): "
          f"{scaling[size]['gflops']:.3f} Gflops, "
          f"{scaling[size]['steps']:,} steps in "
          f"{scaling[size]['seconds'] / 3600:.2f} h; "
          f"FID {f.value:.1f} ± {f.std:.1f}")
print(f"FID of {n:,} samples against {f.reference_count:,} test images "
      f"({f.protocol}), ± its bootstrap standard deviation")
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.2),
                               gridspec_kw={"width_ratios": [1, 1.6]})
g_list = [scaling[s]["gflops"] for s in SIZES]
ax0.errorbar(g_list, [scaling[s]["fid"].value for s in SIZES],
             yerr=[scaling[s]["fid"].std for s in SIZES], marker="o",
             capsize=3)
for s in SIZES:
    ax0.annotate(f"DiT-{s}", (scaling[s]["gflops"], scaling[s]["fid"].value))
ax0.set(xscale="log", xlabel="Gflops per forward pass",
        ylabel=f"FID ({n:,} samples)", title="FID against compute")
image_grid(x[:20].cpu(), nrow=10, ax=ax1,
           title=f"DiT-{SIZES[-1]}, w = {P['w']}: "
                 + " ".join(CIFAR10_CLASSES))
show_jpeg(fig)

# %% [markdown]
# DiT's finding (its Fig. 2 and 6): at a fixed number of training steps, FID falls steadily as the
# Gflops rise, whether the compute comes from a wider and deeper model or from smaller patches.
# Here every size trained the same number of steps; the error bars are the bootstrap standard
# deviations, the spread two points must exceed to differ. `smoke`'s tiny models, trained for
# seconds, only show that the code path runs.

# %% [markdown]
# ## DiT against the U-Net, at equal training compute
#
# Is the transformer a better denoiser than the U-Net? Chapter 6's latent U-Net, made
# class-conditional (a label embedding instead of the text), is trained on the same latents for as
# many steps as cost the main DiT's training flops ($3 \times$ forward flops $\times$ batch
# $\times$ steps: the backward pass costs about twice the forward), then sampled and scored the
# same way.

# %%
name = f"ch07_unet-{profile.name}"
unet, unet_meta = chapter7_unet(
    profile, device, stand_in=False,
    checkpoint_path=cache_dir() / "checkpoints" / f"{name}.pt")
unet.eval()
check_autoencoder(unet_meta, vae_meta)
x_unet = sample_images(unet, y_eval, P["w"], noise)
compare = {f"DiT-{MAIN}": (model, meta, scaling[MAIN]["fid"]),
           "U-Net": (unet, unet_meta, score(x_unet))}
print(f"{'':10s}{'parameters':>12s}{'Gflops':>8s}{'steps':>8s}"
      f"{'PFLOP':>7s}{'hours':>7s}{'FID':>16s}")
for k, (m, mt, f) in compare.items():
    run, g = mt["config"]["recipe"], model_gflops(m)
    pflop = 3 * g * run["batch"] * run["steps"] / 1e6
    print(f"{k:10s}{sum(p.numel() for p in m.parameters()):>12,}{g:>8.3f}"
          f"{run['steps']:>8,}{pflop:>7.2f}"
          f"{mt['train_seconds'] / 3600:>7.2f}"
          f"{f'{f.value:.1f} ± {f.std:.1f}':>16s}")
print(f"FID of {n:,} samples against {f.reference_count:,} test images; "
      "hours: training time on the hardware each record names")
image_grid(x_unet[:20].cpu(), nrow=10, figsize=(10, 2.2),
           title=f"the U-Net, w = {P['w']}")
show_jpeg()

# %% [markdown]
# The paper's case for DiT is how it scales: quality keeps improving with compute, and transformers
# are what the field knows how to scale. At a few million parameters and a few hours the U-Net's
# convolutions are a strong prior for images; the table above, from this profile's runs, says which
# wins at this size.

# %% [markdown]
# ## MMDiT: joint attention over image and text
#
# Stable Diffusion 3 {cite:p}`esser2024sd3` conditions on text without cross-attention. Its MMDiT
# block keeps two streams of tokens, the image's and the caption's, each with its *own* weights
# (adaLN modulation, qkv and output projections, MLP), and runs **one attention over both
# sequences concatenated**: image tokens attend to text tokens and text tokens to image tokens.
# `course_lib.models.mmdit` builds it as a small variant of the DiT block: each stream is a DiT
# block cut around its attention. The check below computes the joint attention by hand from the
# two streams' queries, keys and values, with chapter 6's captions as the text.

# %%
text_encoder = TextEncoder(TextEncoderConfig.tiny(len(VOCAB)))
mmdit = MMDiT(MMDiTConfig.tiny(context_dim=text_encoder.config.width))
tok = tokenize(["a photo of a red truck", "a dark photo of a blue ship"])
ctx, ctx_mask = text_encoder(tok)  # (2, L, 32), (2, L)
block = mmdit.blocks[0]
for m in (block.x_stream.adaLN_modulation[-1],
          block.ctx_stream.adaLN_modulation[-1]):
    # as if trained: the identity at init would hide the attention
    torch.nn.init.normal_(m.weight, std=0.1)
xs = torch.randn(2, mmdit.config.grid_size ** 2,
                 mmdit.config.hidden_size)  # image tokens
cs = mmdit.context_embedder(ctx)
cond = torch.randn(2, mmdit.config.hidden_size)
qkv_x, _ = block.x_stream.pre_attention(xs, cond)
qkv_c, _ = block.ctx_stream.pre_attention(cs, cond)
heads = block.num_heads
# (3, B, heads, n, d)
split = lambda a: (  # noqa: E731
    a.reshape(2, a.shape[1], 3, heads, -1).permute(2, 0, 3, 1, 4))
(qx, kx, vx), (qc, kc, vc) = split(qkv_x), split(qkv_c)
# the joint sequence: image tokens, then text
keys, values = torch.cat([kx, kc], 2), torch.cat([vx, vc], 2)
key_mask = torch.cat([torch.ones(2, xs.shape[1], dtype=torch.bool),
                      ctx_mask], 1)
scores = (torch.cat([qx, qc], 2) @ keys.transpose(-2, -1)
          / math.sqrt(qx.shape[-1]))
mine = scores.masked_fill(~key_mask[:, None, None],
                          float("-inf")).softmax(-1) @ values
torch.testing.assert_close(mine, joint_attention(torch.cat([qx, qc], 2),
                                                 keys, values, key_mask))
n_mm = sum(p.numel() for p in mmdit.parameters())
mm_gflops = gflops(mmdit, torch.zeros(1, 3, 32, 32),
                   torch.zeros(1, dtype=torch.long), ctx[:1], ctx_mask[:1])
print(f"joint attention by hand equals course_lib's; an MMDiT-tiny has "
      f"{n_mm:,} parameters, {mm_gflops:.3f} Gflops "
      f"with a {tok.shape[1]}-token caption")

# %% [markdown]
# ## LoRA: fine-tuning a few parameters
#
# To adapt a trained model to new data cheaply, LoRA {cite:p}`hu2022lora` freezes every weight
# and learns a low-rank update of some of them: a linear layer $W$ becomes
# $W + \frac{\alpha}{r} B A$ with $A \in \mathbb R^{r \times d_\text{in}}$,
# $B \in \mathbb R^{d_\text{out} \times r}$, $B = 0$ at the start (LoRA Sec. 4.1), so fine-tuning
# starts from the trained model exactly. Here the adapters go on the attention projections (qkv and
# output) of the main DiT, which is fine-tuned on the latents of one class's images with every
# label dropped (the null class): the adapters teach the *unconditional* model ($w = 0$) the new
# data, so it should draw that class more often; the chapter 5 evaluation classifier counts how
# often.

# %%
lora_class = P["lora_class"]
lr_cfg = lora_recipe(profile)
is_class = d["labels"] == lora_class
tuned_run = finetune_lora(model, d["mu"][is_class], d["logvar"][is_class],
                          d["labels"][is_class], scale,
                          schedule=recipe["schedule"],
                          num_steps=recipe["num_steps"], **lr_cfg)
tuned = tuned_run.ema.eval()
n_train, n_total = (trainable_parameters(tuned_run.model),
                    sum(p.numel() for p in tuned_run.model.parameters()))
classifier, clf_meta = chapter5_classifier(profile, device)
z_T = torch.randn(P["lora_samples"], *recipe["latent_shape"],
                  generator=torch.Generator().manual_seed(1)).to(device)
share = {}
for name, m in (("before", model), ("after LoRA", tuned)):
    # w = 0: the null class only, unconditional
    x0 = sample_images(m, 0, 0.0, z_T)
    share[name] = evaluate_classifier(
        classifier, x0, torch.full((len(x0),), lora_class, device=device))
    image_grid(x0[:16].cpu(), nrow=16, figsize=(10, 0.9),
               title=f"unconditional samples, {name}")
    show_jpeg()
print(f"LoRA rank {lr_cfg['rank']}: {n_train:,} trainable parameters of "
      f"{n_total:,} ({n_train / n_total:.1%}); "
      f"{lr_cfg['steps']} steps on {int(is_class.sum()):,} "
      f"'{CIFAR10_CLASSES[lora_class]}' images in "
      f"{tuned_run.seconds:.0f} s")
print(f"unconditional samples classified "
      f"'{CIFAR10_CLASSES[lora_class]}': {share['before']:.1%} before, "
      f"{share['after LoRA']:.1%} after (evaluation classifier: "
      f"{clf_meta['metrics']['test_accuracy']:.1%} on real test images)")

# %%
report({
    **{f"fid_dit_{s.replace('/', '')}": {
           "value": scaling[s]["fid"], "sampling_steps": P["sampling_steps"],
           "description": f"DiT-{s} ({scaling[s]['gflops']:.3g} Gflops, "
                          f"{scaling[s]['steps']:,} training steps) on "
                          f"chapter 2's latents, CFG w = {P['w']}"}
       for s in SIZES},
    "fid_unet_latent": {
        "value": compare["U-Net"][2], "sampling_steps": P["sampling_steps"],
        "description": f"class-conditional latent U-Net at DiT-{MAIN}'s "
                       f"training flops, CFG w = {P['w']}"},
    "gflops_dit_S2": {"value": rows[1][3], "paper": "dit_s2_gflops",
                      "description": "DiT-S/2 at the paper's 32x32x4 input"},
    "lora_trainable_fraction": {
        "value": n_train / n_total,
        "description": f"rank {lr_cfg['rank']} on qkv and proj"},
    "lora_class_share_before": {
        "value": share["before"], "samples": P["lora_samples"],
        "description": "unconditional samples classified "
                       f"'{CIFAR10_CLASSES[lora_class]}', before LoRA"},
    "lora_class_share_after": {
        "value": share["after LoRA"], "samples": P["lora_samples"],
        "description": "the same after LoRA fine-tuning on that class"},
}, notes={"training": ", ".join(
    f"{k} {mt['config']['recipe']['steps']:,} steps in "
    f"{mt['train_seconds'] / 3600:.2f} h on {mt['hardware']}"
    for k, (_, mt, _) in compare.items())})

# %% [markdown]
# ## Summary
#
# - DiT is a plain transformer on patches: patchify, $N$ blocks, unpatchify; $t$ and $y$ enter
#   through adaptive layer norms whose gates start at zero, so every block starts as the identity.
# - Its compute is set by width, depth and the number of tokens ($(S/p)^2$); FID follows the
#   Gflops. Counting them reproduces the paper's table. Like the paper's, our DiTs work on an
#   autoencoder's latents, which is what makes them affordable.
# - MMDiT keeps separate weights for image and text tokens and lets them meet in one joint
#   attention; LoRA adapts a trained model through low-rank updates of a few of its matrices.
#
# Next: chapter 8 trains the same networks with a different objective, flow matching.
