"""course_lib: the tested reference implementations behind *Diffusion from Scratch*.

Modules by concern: profiles and device (set-up), schedules, diffusion (forward process and
losses), samplers (ancestral), fast_samplers and ode_samplers (DDIM, DPM-Solver++, Euler, Heun),
guidance (classifier-free and classifier guidance), models, vae (ELBO terms), data, training,
recipes (how reusable models are trained); chapter 6's latent diffusion (captions, latent,
text_guidance, editing, latent_recipes); chapter 7's DiT (flops, lora, dit_recipes); chapter 8's
flow matching (flow_matching, flow_samplers, flow_recipes); chapter 9's latent consistency models
(consistency, lcm, lcm_recipes); artifacts and registry (saved models with checksums), metrics and
fid, results (a chapter's headline numbers, for the Results page), plotting, exercises, notebooks.

Time convention, for every module: integer steps t in {0, ..., T-1}, t = 0 nearest the data;
continuous time s = (t + 1) / T in (0, 1], s -> 0 data, s = 1 noise. See the notation page.
"""

__version__ = "0.1.0"

from .device import autocast_dtype, default_device, describe_hardware, seed_everything
from .profiles import PROFILES, Profile, get_profile, show_setup

__all__ = ["PROFILES", "Profile", "get_profile", "show_setup", "default_device", "describe_hardware",
           "autocast_dtype", "seed_everything", "__version__"]
