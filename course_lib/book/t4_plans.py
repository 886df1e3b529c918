"""Each chapter's ``colab`` workload as a plan for ``t4_cost``: the models it runs and what it does with them.

Sizes come from the recipes (called at the colab profile) and from each chapter's own ``P`` colab values,
copied here with the chapter's file (a notebook cannot be imported): keep them in step when a chapter
changes (tests/unit/test_t4_cost.py reads them back from the chapter files). A plan function takes
keyword ``changes`` that replace those values, e.g. ``ch03(steps=10_000)``: how the recommended resizes
(``RESIZES``) are estimated. ``amp``: the chapter's samplers run under ``course_lib.sampling_autocast`` (fp16
on a T4), true for the chapters in ``SAMPLING_AUTOCAST``; items a chapter keeps in float32 leave ``amp`` out.
Models another chapter trains are listed as not counted (``counted=False``): the estimate assumes their
artifact is loaded.
Work of a few seconds (checks on 8 images, plots, the captions' Python loops) is left out. The plans' models
(``MODELS``, by key) are built in ``plan_models``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ..course.profiles import PROFILES, Profile
from ..recipes.ch02_vae import SWEEP, same_model, sweep_recipe, vae_recipe
from ..recipes.ch03_ddpm import compare_recipe, ddpm_recipe
from ..recipes.ch05_cfg import cfg_recipe, classifier_recipe
from ..recipes.ch06_ldm import ldm_recipe
from ..recipes.ch07_dit import dit_recipe, dit_sizes, lora_recipe, unet_recipe
from ..recipes.ch08_flow import fm_recipe, reflow_recipe
from ..recipes.ch09_lcm import lcm_recipe
from .t4_cost import Item, bootstrap, cpu, fid, fid_reference, sample, train

COLAB = PROFILES["colab"]

# The chapters' P colab values (chapters/NN_*/NN_*.py, ``P = profile.choose(...)``), as far as the plans use them.
CHAPTER_P: dict[int, dict[str, Any]] = {
    1: dict(steps=20_000, batch=1024),
    2: dict(live_steps=300, eval_images=10_000, fid_samples=5_000, fid_reference=10_000),
    3: dict(live_steps=200, snapshot_images=16, fid_samples=1_000, fid_steps=100, fid_reference=10_000,
            sample_batch=500, compare_fid_samples=250, eval_images=1_000),
    4: dict(grid={k: (10, 20, 50, 100) for k in ("DDIM, eta = 0", "DDIM, eta = 1", "Euler", "Heun",
                                                  "DPM-Solver++(2M)")},
            fid_samples=1_000, fid_reference=10_000, sample_batch=500, show_images=8, invert_images=64,
            invert_steps=(10, 50, 200),
            edm_grid={k: (5, 10, 18) for k in ("Heun, Karras", "Euler, Karras", "DPM-Solver++(2M), Karras")},
            sweep_steps=10, sweep_samples=1_000, rhos=(1, 3, 7), churns=(0, 1, 2, 4), bootstrap=200),
    5: dict(live_steps=200, weights=(0.0, 1.0, 2.0, 4.0, 7.5), samples_per_class=100, sampling_steps=50,
            fid_reference=10_000, sample_batch=500, guidance_scales=(0.0, 3.0, 10.0), cg_samples_per_class=50,
            negative_samples=500, bootstrap=50),
    6: dict(live_steps=300, w=3.0, sampling_steps=50, samples_per_colour=64, fid_samples=2_000, fid_reference=10_000,
            bootstrap=20),
    7: dict(live_steps=200, w=3.0, sampling_steps=50, fid_samples=2_000, fid_reference=10_000, bootstrap=50,
            lora_class=1, lora_samples=500),
    8: dict(eval_points=5_000, cifar_steps=(1, 2, 4, 20, 100), fid_samples=2_000, fid_reference=10_000, bootstrap=50,
            straight_samples=256, compare_steps=20),
    9: dict(live_steps=200, steps=(1, 2, 4, 8), teacher_steps=50, fid_samples=2_000, fid_reference=10_000,
            bootstrap=50, lora_steps=2_000),
}


# The chapters whose samplers run under course_lib.sampling_autocast (their ``with`` blocks: chapters/NN_*/*.py).
SAMPLING_AUTOCAST = {3, 5, 7, 8}


def _v(ch: int, recipe: dict[str, Any], changes: dict[str, Any], values: dict[str, Any] | None) -> dict[str, Any]:
    """The chapter's P values (``values``, default its colab ones, ``CHAPTER_P``) and its recipe's, with
    ``changes`` (a name in neither is an error) and ``amp``."""
    base = {**recipe, **(CHAPTER_P[ch] if values is None else values), "amp": ch in SAMPLING_AUTOCAST}
    unknown = set(changes) - set(base)
    if unknown:
        raise KeyError(f"chapter {ch}'s plan has no value {sorted(unknown)}; it has {sorted(base)}")
    return {**base, **changes}


def ch01(profile: Profile = COLAB, values: dict[str, Any] | None = None, **changes) -> list[Item]:
    v = _v(1, {}, changes, values)
    s = lambda label, n, nfe: sample(label, "mlp", n, nfe, n, amp=v["amp"])  # noqa: E731
    return [train("MLP, linear schedule", "mlp", v["steps"], v["batch"]),
            train("MLP, cosine schedule", "mlp", v["steps"], v["batch"]),
            train("MLP, EDM's loss", "mlp", v["steps"], v["batch"]),
            s("EDM Heun samples, 2,000 x (9 + 19 + 35 + 79) NFE", 2_000, 142),
            s("DDPM samples, 2,000 x 1,000 steps", 2_000, 1_000),
            s("annealed Langevin, 100 levels x 10 steps", 2_000, 1_000),
            s("cosine / clipped samples, 3 x 1,000 steps", 2_000, 3_000),
            s("inline sampler check, 64 points, 2 x 1,000 steps", 64, 2_000)]


def ch02(profile: Profile = COLAB, values: dict[str, Any] | None = None, **changes) -> list[Item]:
    v = _v(2, vae_recipe(profile), changes, values)
    n_eval, n_fid, amp = v["eval_images"], v["fid_samples"], v["amp"]
    sweep_steps = sweep_recipe(profile, "ch02_sweep_beta1")["steps"]
    # the betas that are models of their own (at laptop, beta = 1 is the chapter's VAE: same_model)
    betas = sum(same_model(name, profile) == name for name, (_, changes) in SWEEP.items() if not changes)
    return [train("VAE: the first steps, live", "vae", v["live_steps"], v["batch"]),
            train("VAE: the full run", "vae", v["steps"], v["batch"], published=True),
            train(f"sweep: {betas} more betas", "vae", betas * sweep_steps, v["batch"], published=True),
            train("sweep: 4x16x16 latents", "vae_16x16", sweep_steps, v["batch"], published=True),
            sample("reconstructions + bits/dim of the test images", "vae", 2 * n_eval, 1, 500, amp=amp),
            sample("sweep: rate, distortion and bits/dim, 4 models", "vae", 10 * n_eval, 1, 500, amp=amp),
            sample("FID: prior samples and reconstructions", "vae", n_fid, 2, 500, amp=amp),
            fid_reference(v["fid_reference"]),
            fid("FID: Inception, 2 x samples", 2 * n_fid)]


def ch03(profile: Profile = COLAB, values: dict[str, Any] | None = None, **changes) -> list[Item]:
    v = _v(3, ddpm_recipe(profile), changes, values)
    T, amp, b = v["num_steps"], v["amp"], v["sample_batch"]
    nc, n_fid = v["compare_fid_samples"], v["fid_steps"]
    compare_steps = compare_recipe(profile, "cosine", "v")["steps"]
    return [train("U-Net, DDPM: the first steps, live", "unet", v["live_steps"], v["batch"]),
            train("U-Net, DDPM: the full run", "unet", v["steps"], v["batch"], published=True),
            sample("samples over training: 14 x 16 x 50 DDIM steps (float32)", "unet", 16, 14 * 50, 16,
                   published=True),
            sample("samples over training: the live model, 16 x 50 DDIM steps (float32)", "unet", 16, 50, 16),
            sample(f"DDPM samples, {v['snapshot_images']} x {T} steps", "unet", v["snapshot_images"], T,
                   v["snapshot_images"], amp=amp),
            sample(f"FID samples, {v['fid_samples']:,} x {n_fid} steps", "unet", v["fid_samples"], n_fid, b, amp=amp),
            fid_reference(v["fid_reference"]),
            fid("FID: Inception, samples", v["fid_samples"]),
            train("comparison: 3 more U-Nets", "unet", 3 * compare_steps, v["batch"], published=True),
            sample("comparison: x0 error, 3 x 6 steps (float32)", "unet", v["eval_images"], 18, v["eval_images"]),
            sample(f"comparison: 3 x {nc:,} samples x {n_fid} steps", "unet", nc, 3 * n_fid, b, amp=amp),
            fid("comparison: Inception, 3 x samples", 3 * nc)]


def ch04(profile: Profile = COLAB, values: dict[str, Any] | None = None, **changes) -> list[Item]:
    v = _v(4, ddpm_recipe(profile), changes, values)
    n, amp, grid, edm = v["fid_samples"], v["amp"], v["grid"], v["edm_grid"]
    heun = lambda name, k: 2 * k - 1 if name.startswith("Heun") else k  # noqa: E731 (Heun: 2k - 1 NFE)
    nfe = sum(heun(name, k) for name, counts in grid.items() for k in counts)
    edm_nfe = sum(heun(name, k) for name, counts in edm.items() for k in counts)
    points, edm_points = sum(map(len, grid.values())), sum(map(len, edm.values()))
    slider = sum(sorted({k for counts in grid.values() for k in counts} | {5, 1000}))
    return [train("chapter 3's U-Net (loaded)", "unet", v["steps"], v["batch"], counted=False),
            sample("step-count slider and eta rows", "unet", v["show_images"], slider + 4 * 50, 8, amp=amp),
            sample(f"FID: {points} sampler and step-count points ({nfe} NFE per image)", "unet", n, nfe,
                   v["sample_batch"], amp=amp),
            fid_reference(v["fid_reference"]),
            fid(f"FID: Inception, {points} x samples", points * n),
            bootstrap("FID bootstrap sds, every point", points + edm_points + len(v["rhos"]) + len(v["churns"]),
                      v["bootstrap"]),
            sample(f"EDM: {edm_points} points on Karras steps ({edm_nfe} NFE per image)", "unet", n, edm_nfe,
                   v["sample_batch"], amp=amp),
            fid(f"EDM: Inception, {edm_points} x samples", edm_points * n),
            sample("EDM sweeps: rho and churn, Heun", "unet", v["sweep_samples"],
                   (len(v["rhos"]) + len(v["churns"])) * (2 * v["sweep_steps"] - 1), v["sample_batch"], amp=amp),
            fid("EDM sweeps: Inception", (len(v["rhos"]) + len(v["churns"])) * v["sweep_samples"]),
            sample("inversion and back", "unet", v["invert_images"], 2 * sum(v["invert_steps"]), 64, amp=amp),
            sample("interpolation, 2 paths", "unet", 8, 2 * max(v["invert_steps"]), 8, amp=amp)]


def ch05(profile: Profile = COLAB, values: dict[str, Any] | None = None, **changes) -> list[Item]:
    v = _v(5, {**cfg_recipe(profile), "clf_steps": classifier_recipe(profile)["steps"],
               "clf_batch": classifier_recipe(profile)["batch"]}, changes, values)
    n, K, amp, b = 10 * v["samples_per_class"], v["sampling_steps"], v["amp"], v["sample_batch"]
    single = sum(1 for w in v["weights"] if w in (0.0, 1.0))  # w = 0 or 1: one pass, not the doubled batch
    guided_rows = 2 * len(v["guidance_scales"])
    n_cg = 10 * v["cg_samples_per_class"]
    return [train("class-conditional U-Net: the first steps, live", "unet_cond", v["live_steps"], v["batch"]),
            train("class-conditional U-Net (CFG): the full run", "unet_cond", v["steps"], v["batch"], published=True),
            train("chapter 3's U-Net (loaded)", "unet", v["steps"], v["batch"], counted=False),
            train("noise-aware classifier", "noisy_classifier", v["clf_steps"], v["clf_batch"], published=True),
            train("evaluation classifier", "classifier", v["clf_steps"], v["clf_batch"], published=True),
            sample("classifier guidance: U-Net", "unet", 8, guided_rows * K, 8, amp=amp),
            Item("classifier guidance: classifier gradients", "amp" if amp else "fp32", "noisy_classifier",
                 guided_rows * K, 8, passes=3),
            sample("classifier guidance measured: U-Net", "unet", n_cg, len(v["guidance_scales"]) * K, b, amp=amp),
            Item("classifier guidance measured: classifier gradients", "amp" if amp else "fp32",
                 "noisy_classifier", math.ceil(n_cg / b) * len(v["guidance_scales"]) * K, min(b, n_cg), passes=3),
            sample(f"sweep, w in {v['weights']}: one-pass weights", "unet_cond", n, single * K, b, amp=amp),
            sample("sweep: guided weights (doubled batch)", "unet_cond", n, (len(v["weights"]) - single) * K, b,
                   cfg=True, amp=amp),
            fid_reference(v["fid_reference"]),
            fid("FID: Inception, samples", len(v["weights"]) * n),
            bootstrap("FID bootstrap sds", len(v["weights"]), v["bootstrap"]),
            sample("accuracy of the samples (float32)", "classifier", len(v["weights"]) * n, 1, 1000),
            sample("negative, interval, rescale rows", "unet_cond", 8, 4 * K, 8, cfg=True, amp=amp),
            sample("negative guidance measured", "unet_cond", v["negative_samples"], 2 * K, b, cfg=True, amp=amp),
            sample("accuracy of the classifier-guided and negative samples (float32)", "classifier",
                   n_cg * len(v["guidance_scales"]) + 2 * v["negative_samples"], 1, 1000)]


def ch06(profile: Profile = COLAB, values: dict[str, Any] | None = None, **changes) -> list[Item]:
    v = _v(6, ldm_recipe(profile), changes, values)
    K, amp, n = v["sampling_steps"], v["amp"], v["fid_samples"]
    m = v["samples_per_colour"]
    return [train("chapter 2's autoencoder (loaded)", "vae", vae_recipe(profile)["steps"], 128, counted=False),
            train("chapter 3's U-Net (loaded)", "unet", ddpm_recipe(profile)["steps"], 128, counted=False),
            sample("encode CIFAR-10's 50,000 training images", "vae_encode", 50_000, 1, 500, amp=amp),
            train("text-to-image latent U-Net: the first steps, live", "ldm", v["live_steps"], v["batch"]),
            train("text-to-image latent U-Net: the full run", "ldm", v["steps"], v["batch"], published=True),
            sample("5 colours, guided (doubled batch)", "ldm", m, 5 * K, m, cfg=True, amp=amp),
            sample("empty caption", "ldm", m, K, m, amp=amp),
            sample("SDEdit (6 strengths) and inpainting", "ldm", 4, 7 * K, 4, cfg=True, amp=amp),
            train("training cost: pixel U-Net, 12 steps", "unet", 12, v["batch"]),
            train("training cost: latent U-Net, 12 steps", "ldm", 12, v["batch"]),
            sample(f"FID: {n:,} pixel samples", "unet", n, K, 250, amp=amp),
            sample(f"FID: {n:,} latent samples", "ldm", n, K, 250, amp=amp),
            sample("decode the latents", "vae_decode", 6 * m + n, 1, 500, amp=amp),
            fid_reference(v["fid_reference"]),
            fid("FID: Inception, 2 x samples", 2 * n),
            bootstrap("FID bootstrap sds", 2, v["bootstrap"])]


def ch07(profile: Profile = COLAB, values: dict[str, Any] | None = None, **changes) -> list[Item]:
    main, sizes = dit_sizes(profile)
    v = _v(7, {**dit_recipe(profile, main), "lora_steps": lora_recipe(profile)["steps"],
               "lora_batch": lora_recipe(profile)["batch"]}, changes, values)
    K, amp, n, m = v["sampling_steps"], v["amp"], v["fid_samples"], v["lora_samples"]
    u, models = unet_recipe(profile), len(sizes) + 1  # the DiTs and the U-Net
    return [train("chapter 2's autoencoder (loaded)", "vae", vae_recipe(profile)["steps"], 128, counted=False),
            sample("encode CIFAR-10's 50,000 training images", "vae_encode", 50_000, 1, 500, amp=amp),
            train(f"DiT-{main}: the first steps, live", f"dit_{main}", v["live_steps"], v["batch"]),
            *[train(f"DiT-{s}: the full run", f"dit_{s}", dit_recipe(profile, s)["steps"], v["batch"],
                    published=True) for s in sizes],
            train("latent U-Net at the main DiT's compute", "unet_latent", u["steps"], u["batch"], published=True),
            *[sample(f"FID: {n:,} guided samples of DiT-{s} (doubled batch)", f"dit_{s}", n, K, n, cfg=True,
                     amp=amp) for s in sizes],
            sample(f"FID: {n:,} guided samples of the U-Net", "unet_latent", n, K, n, cfg=True, amp=amp),
            fid_reference(v["fid_reference"]),
            fid("FID: Inception, samples", models * n),
            bootstrap("FID bootstrap sds", models, v["bootstrap"]),
            train("LoRA fine-tune", f"dit_{main}", v["lora_steps"], v["lora_batch"]),
            train("chapter 5's classifier (loaded)", "classifier", 2_500, 512, counted=False),
            sample("before/after LoRA samples", f"dit_{main}", m, 2 * K, m, amp=amp),
            sample("decode the latents", "vae_decode", models * n + 2 * m, 1, 500, amp=amp),
            sample("classify the LoRA samples (float32)", "classifier", 2 * m, 1, 1000)]


# scipy's exact assignment (linear_sum_assignment) of a 1,024 x 1,024 dense cost matrix on Colab's CPU, per
# OT-CFM training step: 0.3-0.45 s in issue 21's audit; 0.35 s assumed (host work, no GPU rate applies), and
# scaled as batch^3 for other batches (0.35 s / 64 = 5.5 ms at 256: the recipe measured ~6 ms at smoke's 256).
OT_ASSIGNMENT_S = 0.35


def ch08(profile: Profile = COLAB, values: dict[str, Any] | None = None, **changes) -> list[Item]:
    toy, toy_reflow, cifar, cifar_reflow = (fm_recipe(profile, "swiss_roll"), reflow_recipe(profile, "swiss_roll"),
                                            fm_recipe(profile), reflow_recipe(profile))
    v = _v(8, {"toy_steps": toy["steps"], "toy_batch": toy["batch"], "ot_steps": toy["steps"],
               "ot_batch": toy["ot_batch"],
               "toy_pairs": toy_reflow["pairs"], "toy_reflow_steps": toy_reflow["steps"],
               "steps": cifar["steps"], "batch": cifar["batch"], "pairs": cifar_reflow["pairs"],
               "pair_steps": cifar_reflow["sample_steps"], "reflow_steps": cifar_reflow["steps"]}, changes, values)
    pts, amp, n = v["eval_points"], v["amp"], v["fid_samples"]  # the swiss roll's samplers stay float32
    # per swiss-roll flow: Euler 20 and 100 (trajectories), the solver table (Euler k, midpoint 2k, Heun 2k - 1
    # for k in 1, 2, 5, 20: 108) and dopri5 at rtol 1e-4 (adaptive: ~200 evaluations assumed)
    toy_nfe = 2 * (20 + 100 + 108 + 200) + (100 + 3 * 7 + 3 + 20)
    cifar_nfe = 2 * sum(v["cifar_steps"])
    return [train("swiss roll: rectified flow MLP", "mlp", v["toy_steps"], v["toy_batch"]),
            train("swiss roll: OT-CFM MLP", "mlp", v["ot_steps"], v["ot_batch"]),
            cpu(f"OT-CFM: exact assignment {v['ot_batch']} x {v['ot_batch']} (scipy, CPU) per step",
                v["ot_steps"], OT_ASSIGNMENT_S * (v["ot_batch"] / 1024) ** 3),
            sample("swiss roll: samplers and solvers", "mlp", pts, toy_nfe, pts),
            sample("swiss roll: reflow couplings", "mlp", v["toy_pairs"], toy_reflow["sample_steps"], 1000),
            train("swiss roll: reflow", "mlp", v["toy_reflow_steps"], v["toy_batch"]),
            train("CIFAR-10 flow U-Net", "unet", v["steps"], v["batch"], published=True),
            sample("CIFAR-10 reflow couplings", "unet", v["pairs"], v["pair_steps"], 1000, amp=amp, published=True),
            train("CIFAR-10 reflow", "unet", v["reflow_steps"], v["batch"], published=True),
            sample(f"FID: 2 flows x {v['cifar_steps']} Euler steps", "unet", n, cifar_nfe, n, amp=amp),
            sample("straightness: 2 flows x 50 Euler steps", "unet", v["straight_samples"], 2 * 50,
                   v["straight_samples"], amp=amp),
            train("chapter 3's U-Net (loaded)", "unet", ddpm_recipe(profile)["steps"], 128, counted=False),
            sample(f"chapter 3's U-Net: DPM-Solver++(2M), {v['compare_steps']} steps", "unet", n, v["compare_steps"],
                   n, amp=amp),
            fid_reference(v["fid_reference"]),
            fid(f"FID: Inception, {2 * len(v['cifar_steps']) + 1} x samples", (len(v["cifar_steps"]) * 2 + 1) * n),
            bootstrap("FID bootstrap sds", 2 * len(v["cifar_steps"]) + 1, v["bootstrap"])]


def ch09(profile: Profile = COLAB, values: dict[str, Any] | None = None, **changes) -> list[Item]:
    r = lcm_recipe(profile)
    # P's "steps": the LCM's sampling steps
    v = _v(9, {"distill_steps": r["steps"], "batch": r["batch"]}, changes, values)
    K, amp, n = v["teacher_steps"], v["amp"], v["fid_samples"]
    # a distillation step: the student's forward and backward (3 passes), the teacher's guided solver step
    # (one pass of the doubled batch: 2) and the target network's forward (1)
    return [train("chapter 6's latent U-Net (loaded)", "ldm", 30_000, 128, counted=False),
            train("chapter 2's autoencoder (loaded)", "vae", 15_000, 128, counted=False),
            sample("encode CIFAR-10's 50,000 training images", "vae_encode", 50_000, 1, 500, amp=amp),
            train("LCM distillation: the first steps, live", "ldm", v["live_steps"], v["batch"], passes=6),
            train("LCM distillation: the full run", "ldm", v["distill_steps"], v["batch"], passes=6, published=True),
            sample(f"FID: teacher, guided DDIM {K} steps and 1 step", "ldm", n, K + 1, n, cfg=True, amp=amp),
            sample(f"FID: LCM at {v['steps']} steps", "ldm", n, sum(v["steps"]), n, amp=amp),
            sample("decode the latents", "vae_decode", (3 + len(v["steps"])) * n, 1, 500, amp=amp),
            fid_reference(v["fid_reference"]),
            fid("FID: Inception, samples", (3 + len(v["steps"])) * n),
            bootstrap("FID bootstrap sds", 3 + len(v["steps"]), v["bootstrap"]),
            train("LCM-LoRA distillation", "ldm", v["lora_steps"], v["batch"], passes=6),
            sample("one-step gaps, 3 x a 50-step reference", "ldm", 16, 3 * K, 16, cfg=True, amp=amp),
            sample("FID: LCM-LoRA at 4 steps", "ldm", n, 4, n, amp=amp)]


PLANS: dict[int, Callable[..., list[Item]]] = {1: ch01, 2: ch02, 3: ch03, 4: ch04, 5: ch05, 6: ch06, 7: ch07,
                                               8: ch08, 9: ch09}


# Recommended resizes of the chapters over the budget: {chapter: (what to change, plan changes)}, estimated
# with ``chapter_plan(ch, **changes)`` and applied to the recipes and the chapters' P once agreed (issue 21's
# resizes of chapters 3, 5, 7 and 8 are applied: every chapter fits). Empty while every chapter fits.
RESIZES: dict[int, tuple[str, dict[str, Any]]] = {}
