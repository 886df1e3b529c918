"""Why chapter 2's decoder predicts a noise level for every pixel: the same VAE recipe with one learned noise
level per colour channel (the decoder until commit cb16a82) and with one per pixel (today's), scored on
CIFAR-10 test images.

Both are chapter 2's sweep VAE at beta = 1 (`ch02_sweep_beta1`, laptop recipe: 2,000 steps of 64). The
per-channel one is the file published at cb16a82 (read with `git show`), loaded into today's model exactly:
its constant log-noise becomes the bias of the decoder's log-s outputs, with their weights at zero. The
per-pixel one is today's published (or cached) artifact, `ch02_vae-laptop` (in the laptop profile the sweep's
beta = 1 point is chapter 2's VAE itself, the same recipe). Also printed: the training data, which differ in one
more way (today's loss dequantizes its batches, the earlier one did not).

    python benchmarks/vae_decoder_noise.py [--images 1000]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _table.py beside this file
from _table import print_markdown_table  # noqa: E402

OLD = "cb16a82"
OLD_FILE = "results/models/ch02_sweep_beta1-laptop.pt"


def per_channel_vae(VAE, VAEConfig):
    """The per-channel VAE published at OLD, in today's architecture (same function of z)."""
    import torch

    raw = subprocess.run(["git", "show", f"{OLD}:{OLD_FILE}"], cwd=ROOT, capture_output=True, check=True).stdout
    payload = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    state = dict(payload["state_dict"])
    log_sigma = state.pop("log_sigma")  # (3,)
    vae = VAE(VAEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload["config"]["model"].items()}))
    out = [k for k in vae.state_dict() if k.startswith("decoder.net.")][-2:]  # the last conv's weight and bias
    weight, bias = vae.state_dict()[out[0]].clone(), vae.state_dict()[out[1]].clone()
    weight[:3], weight[3:] = state[out[0]], 0.0
    bias[:3], bias[3:] = state[out[1]], log_sigma
    state[out[0]], state[out[1]] = weight, bias
    vae.load_state_dict(state)
    return vae.eval()


def score(vae, x, seed: int = 0) -> tuple[float, float, float, float]:
    """(test bits/dim as chapter 2 measures them, PSNR through the posterior mean, KL nats/dim, mean s)."""
    import torch

    from course_lib.data import to_float, to_uint8
    from course_lib.evaluation.metrics import bits_per_dim, discretization_correction_bits, psnr
    from course_lib.process.elbo import dequantize, elbo_terms, gaussian_kl

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        nelbo = torch.cat([elbo_terms(vae, dequantize(x[i:i + 250], g), generator=g).negative_elbo
                           for i in range(0, len(x), 250)])
        mu, logvar = vae.encode(x)
        x_mean, log_s = vae.decode_distribution(mu)
    bpd = bits_per_dim(nelbo.mean(), x[0].numel()).item() + discretization_correction_bits()
    db = psnr(to_float(to_uint8(x_mean)), to_float(to_uint8(x))).mean().item()
    kl = gaussian_kl(mu, logvar).mean().item() / x[0].numel()
    return bpd, db, kl, log_s.exp().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="CIFAR-10 test images scored (default 1000)")
    args = parser.parse_args()
    import torch

    from course_lib.course.profiles import get_profile
    from course_lib.data import load_cifar10, to_float
    from course_lib.models import VAE, VAEConfig
    from course_lib.recipes.ch02_vae import _build_vae, _vae_config, sweep_recipe
    from course_lib.recipes.common import load_or_stand_in

    torch.set_num_threads(1)
    profile = get_profile("laptop")
    # the sweep's beta = 1 point, which in the laptop profile is chapter 2's VAE itself (ch02_vae-laptop)
    saved = load_or_stand_in("ch02_vae-laptop", _build_vae, profile, "cpu",
                             "Train it first: python scripts/train.py ch02_vae --profile laptop",
                             recipe_fn=lambda p: sweep_recipe(p, "ch02_sweep_beta1"), model_config_fn=_vae_config,
                             stand_in=False)
    if saved is None:
        sys.exit(1)
    today, meta = saved
    x = to_float(load_cifar10("test", subset=args.images).images)
    rows = [["decoder noise level", "training batches", "test bits/dim", "PSNR (dB)", "KL (nats/dim)", "mean s"]]
    for label, batches, vae in (("one per colour channel", "8-bit values", per_channel_vae(VAE, VAEConfig)),
                                ("one per pixel and colour", "dequantized", today)):
        bpd, db, kl, s = score(vae, x)
        rows.append([label, batches, f"{bpd:.3f}", f"{db:.2f}", f"{kl:.4f}", f"{s:.3f}"])
    print(f"torch {torch.__version__}, 1 thread; {args.images:,} CIFAR-10 test images; chapter 2's sweep VAE at "
          f"beta = 1, laptop recipe (2,000 steps of 64): the one published at {OLD} and today's "
          f"({meta.get('hardware', 'hardware not recorded')})")
    print_markdown_table(rows, left_align_first=True)


if __name__ == "__main__":
    main()
