"""course_lib: the tested reference implementations behind *Diffusion from Scratch*.

The package by layer, each folder importing only the ones above it in this list
(tests/unit/test_layers.py checks it from the imports):

    course/      profiles, device, the cache folder, artifacts (checksummed saved models), registry
    models/      the networks: U-Net, VAE, classifier, text encoder, DiT and MMDiT, LoRA
    training/    the training loop: EMA, mixed precision, exact resume, chunks; torchrun helpers
    process/     the maths: schedules, forward process, targets and losses, ELBO, flow-matching
                 paths, guidance, consistency functions and distillation
    data/        CIFAR-10, toy 2-D data, captions, latents of a data set
    samplers/    DDPM, DDIM and inversion, ODE solvers, flow samplers, LCM sampling, editing
    evaluation/  FID, metrics, FLOPs
    recipes/     one module per chapter that trains models (ch02_vae, ch03_ddpm, ...): its recipes
                 per profile and train-or-load, over common.py
    book/        what the pages use: plotting, results, notebook execution, student copies, Colab
    exercises/   the chapters' exercise checkers

Time convention, for every module: integer steps t in {0, ..., T-1}, t = 0 nearest the data;
continuous time s = (t + 1) / T in (0, 1], s -> 0 data, s = 1 noise. See the notation page.
"""

__version__ = "0.1.0"

from .course.device import autocast_dtype, default_device, describe_hardware, sampling_autocast, seed_everything
from .course.profiles import PROFILES, Profile, get_profile, show_setup

__all__ = ["PROFILES", "Profile", "get_profile", "show_setup", "default_device", "describe_hardware",
           "autocast_dtype", "sampling_autocast", "seed_everything", "__version__"]
