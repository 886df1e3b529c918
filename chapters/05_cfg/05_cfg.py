# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
# ---

# %% [markdown]
# # 5. Classifier-free guidance
#
# Chapters 3 and 4 generate *some* CIFAR-10 image. This chapter asks for a *given* class, and
# then for more of it than the data would give: guidance trades diversity for fidelity to the
# condition. Classifier guidance {cite:p}`dhariwal2021beat` does it with the gradient of a
# separate, noise-aware classifier; classifier-free guidance (CFG, {cite:t}`ho2021cfg`) does it
# with one network trained both with and without the label, and is what every modern text-to-image
# model uses.
#
# **What you will build:** class conditioning with label dropout (exercise), classifier guidance
# with a noise-aware classifier, the guided prediction and its batched form (exercise), a sweep of
# the guidance weight measured by FID and by the accuracy of an independent classifier on the
# samples, negative guidance, and the guidance interval and rescale.
#
# **Time:** in the `laptop` profile (a 2-core CPU) an estimated 23 minutes: the page fine-tunes the
# class-conditional U-Net live for a few steps and loads the full run, published with the course
# (chapter 3's U-Net fine-tuned with labels for hours on a 2-core CPU), and the classifiers.
# Without the published files it trains them first and says how long that takes. In `smoke`
# (what CI runs, a few minutes) tiny networks train for a few hundred steps on a CIFAR-10
# subset: the samples are coloured blobs and the accuracies near chance; the code path is the
# real one. **Outputs on this page** were produced by executing it in the profile and on the
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
import time

import matplotlib.pyplot as plt
import torch

import course_lib
from course_lib.data import CIFAR10_CLASSES, load_cifar10, to_uint8
from course_lib.course.paths import cache_dir
from course_lib.samplers.ddim import ddim_sample, timesteps
from course_lib.evaluation.fid import fid, reference_stats
from course_lib.process.guidance import cfg_model, drop_labels, guided_eps
from course_lib.process.classifier_guidance import classifier_guided_model
from course_lib.book.plotting import (figure_jpeg, frame_slider, image_grid,
                                      show_jpeg)
from course_lib.recipes.ch05_cfg import (cfg_recipe, chapter5_classifier,
                                         chapter5_noisy_classifier,
                                         chapter5_unet, evaluate_classifier,
                                         train_cfg)
from course_lib.recipes.ch03_ddpm import chapter3_unet
from course_lib.book.results import report
from course_lib.book.runs import show_run
from course_lib.process.schedules import make_schedule

profile = course_lib.get_profile()
device = course_lib.default_device()
# chapter 3's U-Net recipe with 10 classes and label dropout
# (course_lib.recipes.ch05_cfg)
recipe = cfg_recipe(profile)
# this chapter's sampling and evaluation sizes, per profile
P = profile.choose(
    smoke=dict(live_steps=20, weights=(0.0, 1.0, 2.0, 4.0, 7.5),
               samples_per_class=2, sampling_steps=50, fid_reference=100,
               sample_batch=100, guidance_scales=(0.0, 10.0),
               cg_samples_per_class=1, negative_samples=8, bootstrap=4),
    # laptop: about 23 minutes on 2 cores, estimated from the measured
    # CPU rates (scripts/estimate_laptop.py 5)
    laptop=dict(live_steps=50, weights=(0.0, 1.0, 2.0, 4.0),
                samples_per_class=50, sampling_steps=25,
                fid_reference=10_000, sample_batch=250,
                guidance_scales=(0.0, 3.0, 10.0), cg_samples_per_class=10,
                negative_samples=200, bootstrap=50),
    colab=dict(live_steps=200, weights=(0.0, 1.0, 2.0, 4.0, 7.5),
               samples_per_class=100, sampling_steps=50,
               fid_reference=10_000, sample_batch=500,
               guidance_scales=(0.0, 3.0, 10.0), cg_samples_per_class=50,
               negative_samples=500, bootstrap=50),
    full=dict(live_steps=500, weights=(0.0, 1.0, 2.0, 4.0, 7.5),
              samples_per_class=500, sampling_steps=50,
              fid_reference=10_000, sample_batch=1_000,
              guidance_scales=(0.0, 3.0, 10.0), cg_samples_per_class=100,
              negative_samples=1_000, bootstrap=200),
)
n_per_w = 10 * P["samples_per_class"]
course_lib.show_setup("5 · Classifier-free guidance", {
    "data": "CIFAR-10 train with labels "
            f"({recipe['train_images'] or 'all 50,000'} images)",
    "U-Net": f"'{recipe['unet']}' with a label embedding "
             f"(10 classes + null), {recipe['steps']:,} steps"
             + (f" from {recipe['init']}" if recipe["init"] else "")
             + f", labels dropped with p = {recipe['p_uncond']}; "
             f"{P['live_steps']:,} live, the full run trained or loaded",
    "classifiers": "an evaluation ResNet (clean images) and a noise-aware "
                   "one (classifier guidance), "
                   "loaded as artifacts or trained",
    "sweep": f"w in {P['weights']}: {n_per_w:,} samples each, "
             f"DDIM {P['sampling_steps']} steps, "
             f"FID against {P['fid_reference']:,} test images",
}, profile, device)

# %% [markdown]
# ## Conditioning the U-Net on a class
#
# A class-conditional model $\epsilon_\theta(x_t, t, y)$ needs the label somewhere in the network.
# `course_lib.models.UNet` with `num_classes` set embeds $y$ with a learned table and adds it to
# the time embedding, which every residual block already receives; the table has one extra row,
# the **null class** $\varnothing$ (index 10), that stands for "no label". Training is chapter 3's
# loss with one change (CFG Algorithm 1): each label is replaced by $\varnothing$ with probability
# $p_{\text{uncond}}$, so one network learns both the conditional model
# $\epsilon_\theta(x_t, t, y)$ and the unconditional one $\epsilon_\theta(x_t, t, \varnothing)$.
# CFG found $p_{\text{uncond}} = 0.1$ or $0.2$ to work best; we use 0.1.

# %% [markdown]
# ```{exercise} Label dropout
# :label: ex-drop-labels
#
# Write `drop_labels(y, p_uncond, null_class, u)` that returns a copy of the labels `y` (shape
# `(B,)`, integers) in which label $i$ is replaced by `null_class` exactly when the uniform draw
# `u[i]` is below `p_uncond` (`u` is given, so the result is deterministic).
# ```
#
# ```{solution-start} ex-drop-labels
# :class: dropdown
# ```

# %% tags=["solution"]
def my_drop_labels(y, p_uncond, null_class, u):
    # CFG Algorithm 1
    return torch.where(u < p_uncond, torch.full_like(y, null_class), y)


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch05 import check_label_dropout

check_label_dropout(my_drop_labels)

# %%
train_data = load_cifar10("train", subset=recipe["train_images"])
test_data = load_cifar10("test", subset=P["fid_reference"]
                         if P["fid_reference"] < 10_000 else None)
print(train_data)  # the source by name, never a folder of the machine
y_demo = torch.randint(0, 10, (10_000,),
                       generator=torch.Generator().manual_seed(0))
dropped = drop_labels(y_demo, recipe["p_uncond"], 10,
                      generator=torch.Generator().manual_seed(1))
print(f"with p_uncond = {recipe['p_uncond']}, "
      f"{(dropped == 10).float().mean():.3f} of 10,000 labels become "
      "the null class")

# %% [markdown]
# ### Training: a few steps live, the full run loaded
#
# A class-conditional model need not start from scratch. In the `laptop` profile the recipe
# starts from chapter 3's published U-Net (`recipe["init"]`) with the label embedding at zero: at
# step 0 the model is chapter 3's unconditional one for every label, and training only has to
# teach it what the labels mean, a fraction of the CPU-hours of training from scratch (`smoke`
# fine-tunes chapter 3's smoke model the same way; `colab` and `full` train from scratch, as the
# CFG paper does). The page runs the recipe live for its first steps, the
# same seed, data order and warm-up as the full run; `chapter5_unet` loads the full run when it is
# in the course cache or published with the course, and trains it now otherwise, with a
# checkpoint so that an interrupted run resumes
# (`scripts/train.py ch05_unet --profile laptop` trained the published one, in chunks).

# %%
t0 = time.perf_counter()
live = train_cfg(recipe, train_data.images.to(device),
                 train_data.labels.to(device), steps=P["live_steps"])
print(f"{P['live_steps']:,} steps of batch {recipe['batch']} in "
      f"{time.perf_counter() - t0:.0f} s on {device}")
model, meta = chapter5_unet(
    profile, device, stand_in=False,
    checkpoint_path=cache_dir() / "checkpoints"
    / f"ch05_unet-{profile.name}.pt")
model.eval()
run = meta["config"]["recipe"]
show_run(meta, live, ylabel="noise-prediction loss (window mean)")
plt.show()

# %% [markdown]
# ## Measuring fidelity: an independent classifier
#
# Does a sample show the class it was asked for? We ask a classifier that takes no part in
# sampling: a ResNet trained on clean CIFAR-10 (`chapter5_classifier`, loaded as an artifact or
# trained now), applied to the samples with the labels they were generated for. Its accuracy on
# real test images is the ceiling to compare with; on samples that ignore the label it is
# chance, 0.1.

# %%
classifier, clf_meta = chapter5_classifier(profile, device)
print(f"evaluation classifier {clf_meta['name']}: test accuracy "
      f"{clf_meta['metrics']['test_accuracy']:.3f} "
      f"on {clf_meta['metrics']['test_images']:,} CIFAR-10 test images")

# %% [markdown]
# ## What guidance replaces: classifier guidance
#
# Bayes' rule splits the conditional score into the unconditional one and a classifier's:
# $\nabla_x \log p(x_t \mid y) = \nabla_x \log p(x_t) + \nabla_x \log p(y \mid x_t)$. With the
# score written as $-\epsilon / \sqrt{1 - \bar\alpha_t}$ (chapter 1), and a scale $s$ on the
# classifier term, the guided noise prediction is
#
# $$ \hat\epsilon(x_t, t) = \epsilon_\theta(x_t, t) - s\,\sqrt{1 - \bar\alpha_t}\;\nabla_{x_t} \log p_\phi(y \mid x_t, t) .
#    \qquad \text{(D\&N Eq. 14, with the scale of their Algorithm 2)} $$
#
# The classifier must read *noisy* images, so it is trained on $x_t$ at random $t$ (a
# "noise-aware" classifier), and $s > 1$ sharpens $p(y \mid x_t)^s$ towards the class:
# {cite:t}`dhariwal2021beat` used it to beat GANs on ImageNet. Below, chapter 3's unconditional
# U-Net is guided this way towards two classes with DDIM.

# %%
unet3, _ = chapter3_unet(profile, device)
noisy_clf, noisy_meta = chapter5_noisy_classifier(profile, device)
schedule = make_schedule(recipe["schedule"], recipe["num_steps"])
T, steps = (schedule.num_steps,
            timesteps(schedule.num_steps, P["sampling_steps"]))
x_T = torch.randn(8, 3, 32, 32,
                  generator=torch.Generator().manual_seed(3)).to(device)
rows, labels = [], []
for cls in (1, 7):  # automobile, horse
    for s in P["guidance_scales"]:
        guided = classifier_guided_model(unet3.eval(), noisy_clf.eval(), cls,
                                         s, schedule.alpha_bar)
        # fp16/bf16 on a GPU (autocast), float32 on a CPU
        with course_lib.sampling_autocast(device):
            rows.append(ddim_sample(guided, schedule, x_T,
                                    steps).clamp(-1, 1).cpu())
        labels.append(f"{CIFAR10_CLASSES[cls]}, s = {s:g}")
image_grid(torch.cat(rows), nrow=8, figsize=(8, 1.1 * len(rows)),
           title="classifier guidance, rows: " + "; ".join(labels))
show_jpeg()
print(f"noise-aware classifier {noisy_meta['name']}: trained in "
      f"{noisy_meta['train_seconds'] or 0:.0f} s on "
      f"{noisy_meta['hardware']}")

# %% [markdown]
# Measured: `cg_samples_per_class` samples of every class at each scale $s$, from the same
# noise, and the evaluation classifier's accuracy on them ($s = 0$ is the unguided model, whose
# samples ignore the label).

# %%
n_cg = 10 * P["cg_samples_per_class"]
y_cg = torch.arange(10).repeat_interleave(
    P["cg_samples_per_class"]).to(device)
noise_cg = torch.randn(n_cg, 3, 32, 32,
                       generator=torch.Generator().manual_seed(7)).to(device)
cg_accuracy = {}
for s in P["guidance_scales"]:
    t0 = time.perf_counter()
    with course_lib.sampling_autocast(device):
        x = torch.cat([
            ddim_sample(classifier_guided_model(unet3, noisy_clf, y_b, s,
                                                schedule.alpha_bar),
                        schedule, n_b, steps).clamp(-1, 1)
            for n_b, y_b in zip(noise_cg.split(P["sample_batch"]),
                                y_cg.split(P["sample_batch"]))])
    cg_accuracy[s] = evaluate_classifier(classifier, x, y_cg)
    print(f"s = {s:>4g}: classifier accuracy {cg_accuracy[s]:.3f} on "
          f"{n_cg:,} samples ({time.perf_counter() - t0:.0f} s)")

# %% [markdown]
# Classifier guidance needs a second network trained on noisy images, a backward pass through it
# at every step, and it can raise the classifier's confidence with adversarial, imperceptible
# changes rather than by making the class more visible. CFG removes the classifier.

# %% [markdown]
# ## Classifier-free guidance
#
# Apply Bayes' rule to the generative model itself: the implicit classifier
# $p(y \mid x_t) \propto p(x_t \mid y) / p(x_t)$ has the gradient
# $\nabla \log p(x_t \mid y) - \nabla \log p(x_t)$, and both scores come from the one network,
# with and without the label. Guiding with the implicit classifier at strength $w - 1$ gives, in
# noise-prediction form, the course's convention for the guidance weight:
#
# $$ \hat\epsilon = \epsilon_\theta(x_t, t, \varnothing) + w\,\big(\epsilon_\theta(x_t, t, y) - \epsilon_\theta(x_t, t, \varnothing)\big). $$
#
# $w = 0$ is the unconditional model, $w = 1$ the conditional one, and $w > 1$ extrapolates
# beyond it. This is diffusers' `guidance_scale`. The CFG paper writes
# $(1 + w')\,\epsilon_\theta(x_t, y) - w'\,\epsilon_\theta(x_t, \varnothing)$ (its Eq. 6), the same
# thing with $w = 1 + w'$; the {doc}`notation page </book/notation>` records both.

# %% [markdown]
# ```{exercise} The guided prediction
# :label: ex-guided-eps
#
# Write `guided(eps_cond, eps_uncond, w)` returning the guided prediction above for predictions
# of shape `(B, 3, H, W)` and a weight `w` that is either a float or a tensor of shape `(B,)`
# (one weight per sample).
# ```
#
# ```{solution-start} ex-guided-eps
# :class: dropdown
# ```

# %% tags=["solution"]
def my_guided(eps_cond, eps_uncond, w):
    w = torch.as_tensor(w, dtype=eps_cond.dtype,
                        device=eps_cond.device).reshape(-1, 1, 1, 1)
    return eps_uncond + w * (eps_cond - eps_uncond)


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["nbval-check-output"]
from course_lib.exercises.ch05 import check_guided_eps

check_guided_eps(my_guided)

# %% [markdown]
# Each guided step needs both predictions at the same $(x_t, t)$. Rather than two forward passes,
# `course_lib.process.guidance.cfg_model` runs one pass over the doubled batch $(x_t, x_t)$ with labels
# $(y, \varnothing)$ and splits the output: the same numbers, and on a GPU close to half the
# time for small batches. Checked here on the trained model:

# %%
x_t = torch.randn(6, 3, 32, 32,
                  generator=torch.Generator().manual_seed(4)).to(device)
t = torch.full((6,), 500, device=device, dtype=torch.long)
y = torch.arange(6, device=device)
with torch.no_grad():
    two_passes = guided_eps(model(x_t, t, y),
                            model(x_t, t, torch.full_like(y, 10)), 3.0)
    one_pass = cfg_model(model, y, 3.0)(x_t, t)
    conditional, unconditional = (model(x_t, t, y),
                                  model(x_t, t, torch.full_like(y, 10)))
torch.testing.assert_close(one_pass, two_passes, rtol=1e-4, atol=1e-5)
torch.testing.assert_close(cfg_model(model, y, 1.0)(x_t, t), conditional)
torch.testing.assert_close(cfg_model(model, y, 0.0)(x_t, t), unconditional)
print("batched CFG == two passes; w = 1 is the conditional and w = 0 "
      "the unconditional prediction")

# %% [markdown]
# ## The guidance sweep: quality, diversity and fidelity
#
# Now the trade-off, measured. For each $w$, the same starting noise and the same labels
# (`samples_per_class` of each class), sampled with DDIM (`sampling_steps` steps). Two
# measurements: **FID** against test images (quality *and* diversity: it rises when samples lose
# variety), with its bootstrap standard deviation, and the evaluation classifier's **accuracy**
# on the samples with the labels they were generated for (fidelity to the class).

# %%
ref = reference_stats(test_data.images[: P["fid_reference"]].to(device),
                      f"{test_data.source_id}-test-{P['fid_reference']}",
                      cache_dir() / "fid")
# (10 * n,)
y_sweep = torch.arange(10).repeat_interleave(
    P["samples_per_class"]).to(device)
noise = torch.randn(n_per_w, 3, 32, 32,
                    generator=torch.Generator().manual_seed(5)).to(device)
sweep, frames = {}, []
for w in P["weights"]:
    t0 = time.perf_counter()
    with course_lib.sampling_autocast(device):
        x = torch.cat([ddim_sample(cfg_model(model, y_b, w), schedule, n_b,
                                   steps).clamp(-1, 1)
                       for n_b, y_b in zip(noise.split(P["sample_batch"]),
                                           y_sweep.split(P["sample_batch"]))])
    seconds = time.perf_counter() - t0
    sweep[w] = dict(fid=fid(to_uint8(x), ref.mu, ref.sigma,
                            f"{test_data.source_id} test",
                            ref_count=ref.num_images,
                            bootstrap=P["bootstrap"]),
                    accuracy=evaluate_classifier(classifier, x, y_sweep),
                    seconds=seconds)
    # the first sample of each class
    per_class = x.reshape(10, P["samples_per_class"], 3, 32, 32)[:, 0]
    fig = image_grid(per_class.cpu(), nrow=10,
                     title=f"w = {w:g}: " + " ".join(CIFAR10_CLASSES),
                     figsize=(9, 1.4)).figure
    frames.append(figure_jpeg(fig, dpi=70))
    print(f"w = {w:>4}: {sweep[w]['fid']}, classifier accuracy "
          f"{sweep[w]['accuracy']:.3f} ({seconds:.0f} s)")

# %% [markdown]
# One sample per class (columns) from the same noise at each weight: move the slider.

# %%
frame_slider(frames, [f"w = {w:g}: FID {sweep[w]['fid'].value:.1f}, "
                      f"accuracy {sweep[w]['accuracy']:.2f}"
                      for w in P["weights"]], description="w")

# %%
fig, ax1 = plt.subplots(figsize=(6, 3.5))
ws = list(P["weights"])
ax1.errorbar(ws, [sweep[w]["fid"].value for w in ws],
             yerr=[sweep[w]["fid"].std for w in ws], fmt="o-", color="C0")
ax1.set(xlabel="guidance weight w", ylabel="FID (lower is better)",
        title=f"{n_per_w:,} samples per point, {profile.name}")
ax2 = ax1.twinx()
ax2.plot(ws, [sweep[w]["accuracy"] for w in ws], "s--", color="C1")
ax2.set_ylabel("classifier accuracy on samples", color="C1")
ax2.axhline(clf_meta["metrics"]["test_accuracy"], color="C1", lw=0.8, ls=":")
plt.tight_layout()
plt.show()

# %% [markdown]
# What to expect (and what the CFG paper reports on ImageNet): accuracy rises with $w$, since
# the samples become unmistakably their class, while FID first falls (a little guidance
# improves quality) and then rises again as the samples lose diversity and saturate. The
# numbers printed above are this page's measurement; in `smoke` the models are too weak to show
# the effect. The dotted line is the classifier's accuracy on real test images.

# %% [markdown]
# ## Negative guidance, interval and rescale
#
# Three small variations of the guided prediction, each a few lines in `cfg_model`:
#
# - **Negative guidance** puts another class $y^-$ in place of $\varnothing$:
#   $\epsilon(y^-) + w(\epsilon(y) - \epsilon(y^-))$ moves towards $y$ *and away from* $y^-$ (the
#   "negative prompt" of text-to-image models).
# - **Guidance interval** {cite:p}`kynkaanniemi2024interval`: guidance at high noise mostly
#   reduces diversity, at low noise it does little; applying it only in a middle range of steps
#   keeps most of the fidelity gain at a smaller diversity cost. Outside the interval the model
#   runs conditionally ($w = 1$).
# - **Rescale** {cite:p}`lin2024flawed`: large $w$ inflates the prediction's standard deviation
#   (over-saturated images); rescaling it back to the conditional prediction's, mixed with factor
#   $\phi$, tempers that.

# %%
variants = {"w = 4": dict(), "w = 4, away from truck": dict(y_neg=9),
            "w = 4, interval t in [200, 800]": dict(interval=(200, 800)),
            "w = 4, rescale phi = 0.7": dict(phi=0.7)}
x_T = torch.randn(8, 3, 32, 32,
                  generator=torch.Generator().manual_seed(6)).to(device)
with course_lib.sampling_autocast(device):
    rows = [ddim_sample(cfg_model(model, 1, 4.0, **kw), schedule, x_T,
                        steps).clamp(-1, 1).cpu()
            for kw in variants.values()]
image_grid(torch.cat(rows), nrow=8, figsize=(8, 4.4),
           title="class automobile; rows: " + "; ".join(variants))
show_jpeg()
for name, x in zip(variants, rows):
    print(f"{name:<34} pixel std {x.std():.3f}")

# %% [markdown]
# Does negative guidance really steer away? Automobile and truck are the two classes that
# CIFAR-10 classifiers confuse most, so sample `negative_samples` automobiles at $w = 4$ from the
# same noise, with $\varnothing$ and with truck as the negative, and count how many the
# evaluation classifier calls a truck:

# %%
noise_neg = torch.randn(P["negative_samples"], 3, 32, 32,
                        generator=torch.Generator().manual_seed(8)).to(device)
truck_share = {}
for name, kw in {"w = 4": {}, "w = 4, away from truck": dict(y_neg=9)}.items():
    with course_lib.sampling_autocast(device):
        x = torch.cat([ddim_sample(cfg_model(model, 1, 4.0, **kw), schedule,
                                   n_b, steps).clamp(-1, 1)
                       for n_b in noise_neg.split(P["sample_batch"])])
    as_class = {c: evaluate_classifier(classifier, x,
                                       torch.full((len(x),), c))
                for c in (1, 9)}
    truck_share[name] = as_class[9]
    print(f"{name:<24} classified automobile {as_class[1]:.3f}, "
          f"truck {as_class[9]:.3f} ({len(x):,} samples)")

# %% [markdown]
# ## The model for later chapters
#
# `chapter5_unet` saved the class-conditional U-Net as an artifact (or found it saved), with its
# recipe and the record of what produced it; `course_lib.recipes.ch05_cfg.chapter5_unet` loads it
# anywhere with the same call. Chapter 6 guides a latent model the same way, and chapter 7
# measures its DiT with this chapter's evaluation classifier.

# %% [markdown]
# The chapter's headline numbers, recorded for the course's {doc}`Results page </book/results>`:

# %%
report({
    **{f"fid_w{w:g}": {"value": sweep[w]["fid"],
                       "sampling_steps": P["sampling_steps"],
                       "description": f"CFG w = {w:g}, DDIM, "
                                      f"{P['samples_per_class']} samples "
                                      "per class"} for w in ws},
    **{f"accuracy_w{w:g}": {"value": sweep[w]["accuracy"], "samples": n_per_w,
                            "sampling_steps": P["sampling_steps"],
                            "description": "evaluation classifier's "
                                           "accuracy on CFG samples, "
                                           f"w = {w:g}"} for w in ws},
    **{f"cg_accuracy_s{s:g}": {"value": cg_accuracy[s], "samples": n_cg,
                               "sampling_steps": P["sampling_steps"],
                               "description": "evaluation classifier's "
                                              "accuracy on classifier-"
                                              f"guided samples, s = {s:g}"}
       for s in P["guidance_scales"]},
    **{f"truck_share_{'negative' if 'away' in k else 'plain'}": {
           "value": v, "samples": P["negative_samples"],
           "description": f"share of automobiles ({k}) classified truck"}
       for k, v in truck_share.items()},
    "classifier_test_accuracy": {
        "value": clf_meta["metrics"]["test_accuracy"],
        "samples": clf_meta["metrics"]["test_images"],
        "description": "evaluation classifier on real CIFAR-10 test images"},
}, notes={"training": f"{run['steps']:,} steps of batch {run['batch']} in "
                      f"{(meta['train_seconds'] or 0) / 3600:.2f} h on "
                      f"{meta['hardware']}"})

# %% [markdown]
# ## Summary
#
# - A class-conditional U-Net adds a label embedding to the time embedding; dropping labels to a
#   learned null class trains the conditional and the unconditional model in one network.
# - Classifier guidance adds a noise-aware classifier's gradient to the score; CFG gets the same
#   effect from the difference of the network's own conditional and unconditional predictions,
#   $\hat\epsilon = \epsilon_\varnothing + w(\epsilon_y - \epsilon_\varnothing)$, in one batched pass.
# - The weight $w$ trades diversity for fidelity: measure both (FID and a classifier's accuracy).
# - A class-conditional model can start from an unconditional one (label embedding at zero) and
#   learn the labels in a fraction of the training.
#
# Next: chapter 6 moves diffusion into the latent space of chapter 2's VAE and conditions it on text.
