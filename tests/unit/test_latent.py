"""Latents (course_lib.data.latents): the measured scale gives unit variance, batches are where the data lies
and re-sample z each time, encode -> decode shapes and devices, clear errors."""

import pytest
import torch

from course_lib.data.captions import tokenize
from course_lib.data.latents import decode_latents, encode_images, latent_batches, latent_scale, sample_latents
from course_lib.models import VAE, VAEConfig

TINY_VAE = VAEConfig(base_channels=8, channel_mult=(1, 2, 2), latent_channels=4, groups=4)


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return VAE(TINY_VAE).eval()


def _images(n=10, seed=0):
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_encode_decode_shapes_and_batching(vae):
    images = _images(10)
    mu, logvar = encode_images(vae, images, batch_size=3)  # batches of 3, 3, 3, 1
    assert mu.shape == logvar.shape == (10, *TINY_VAE.latent_shape()) and mu.dtype == torch.float32
    with torch.no_grad():
        ref_mu, ref_logvar = vae.encode(images.float() / 127.5 - 1)
    torch.testing.assert_close(mu, ref_mu, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(logvar, ref_logvar, atol=1e-6, rtol=1e-5)
    assert not mu.requires_grad
    x = decode_latents(vae, 2.0 * mu, scale=2.0, batch_size=4)  # scaled latents: divided by s before decoding
    with torch.no_grad():
        torch.testing.assert_close(x, vae.decode(mu), atol=1e-5, rtol=1e-4)
    assert x.shape == (10, 3, 32, 32)


def test_the_measured_scale_gives_unit_variance():
    g = torch.Generator().manual_seed(0)
    mu = 3.0 * torch.randn(2000, 4, 8, 8, generator=g)  # latents of std sqrt(9 + e^-1)
    logvar = torch.full_like(mu, -1.0)
    scale = latent_scale(mu, logvar, torch.Generator().manual_seed(1))
    assert abs(scale - 1 / (9 + torch.e ** -1) ** 0.5) < 2e-3
    z = sample_latents(mu, logvar, torch.Generator().manual_seed(2))
    assert abs(float((scale * z).std()) - 1.0) < 5e-3
    z_batch, _ = next(latent_batches(mu, logvar, tokenize([""] * 2000), 4096, scale, torch.Generator().manual_seed(3)))
    assert abs(float(z_batch.std()) - 1.0) < 0.02


def test_batches_pair_latents_with_their_tokens_and_resample():
    mu = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 4, 2, 2).contiguous()
    logvar = torch.full_like(mu, -20.0)  # sigma ~ 5e-5: z ~ mu
    tokens = torch.arange(6).view(6, 1).repeat(1, 3)
    batches = latent_batches(mu, logvar, tokens, 5, scale=0.5, generator=torch.Generator().manual_seed(0))
    z, tok = next(batches)
    assert z.shape == (5, 4, 2, 2) and tok.shape == (5, 3) and tok.dtype == torch.long
    torch.testing.assert_close(z[:, 0, 0, 0], 0.5 * tok[:, 0].float(), atol=1e-3, rtol=0)  # row i of both
    z2, tok2 = next(latent_batches(mu, torch.zeros_like(mu), tokens, 5, 1.0, torch.Generator().manual_seed(0)))
    assert torch.equal(tok2, tok) and not torch.allclose(z2, 2 * z)  # same rows, a fresh z ~ q(z | x)


def test_clear_errors(vae):
    with pytest.raises(TypeError, match="uint8"):
        encode_images(vae, torch.zeros(2, 3, 32, 32))
    with pytest.raises(TypeError, match="uint8"):
        encode_images(vae, _images(2)[0])
    with pytest.raises(TypeError, match="float latents"):
        decode_latents(vae, torch.zeros(2, 4, 8, 8, dtype=torch.long), 1.0)
    with pytest.raises(ValueError, match="expected latents"):
        decode_latents(vae, torch.zeros(2, 3, 8, 8), 1.0)
    mu = torch.zeros(4, 4, 8, 8)
    with pytest.raises(ValueError, match=r"cond must be a long tensor of tokens \(4, L\) or labels \(4,\)"):
        next(latent_batches(mu, mu, torch.zeros(3, 8, dtype=torch.long), 2, 1.0))
    with pytest.raises(ValueError, match="share a shape"):
        next(latent_batches(mu, mu[:, :2], torch.zeros(4, 8, dtype=torch.long), 2, 1.0))
    with pytest.raises(ValueError, match="mu and logvar"):
        sample_latents(mu, mu[:2])


def test_latent_batches_carry_class_labels_too():
    """Chapter 7 trains on (kappa z, y): the batches pair each latent with its row of a (N,) label tensor."""
    mu = torch.arange(6.0)[:, None, None, None].expand(6, 4, 2, 2).contiguous()
    labels = torch.arange(6) * 10
    z, y = next(latent_batches(mu, torch.full_like(mu, -30.0), labels, 5, 2.0, torch.Generator().manual_seed(0)))
    assert y.shape == (5,) and torch.allclose(z[:, 0, 0, 0], 2.0 * y.float() / 10, atol=1e-4)
