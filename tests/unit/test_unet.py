import math

import pytest
import torch
from torch.nn import functional as F

from course_lib.models import UNet, UNetConfig
from course_lib.models.unet_blocks import SelfAttention

from helpers import load_benchmark, perturbed

TINY16 = dict(image_size=16, attention_resolutions=(4,))  # the tiny sizes on 16x16 inputs: fast tests


def _wake(model: torch.nn.Module, scale: float = 0.05) -> torch.nn.Module:
    """Perturb every weight: DDPM's zero-initialized output layers would make the network output 0."""
    return perturbed(model, scale, seed=None).eval()


def _inputs(c: UNetConfig, batch: int = 2):
    return torch.randn(batch, c.in_channels, c.image_size, c.image_size), torch.randint(0, 1000, (batch,))


@pytest.mark.parametrize("config, out_channels", [
    (UNetConfig.tiny(), 3),
    (UNetConfig.tiny(num_res_blocks=2, head_dim=8, **TINY16), 3),
    (UNetConfig.tiny(in_channels=4, image_size=8, attention_resolutions=(4,)), 4),  # a 4x8x8 VAE latent
    (UNetConfig.tiny(in_channels=4, out_channels=8, image_size=8, attention_resolutions=(4, 2)), 8),
])
def test_output_shape(config, out_channels):
    x, t = _inputs(config)
    out = UNet(config)(x, t)
    assert out.shape == (2, out_channels, config.image_size, config.image_size)


def test_a_fresh_model_outputs_zero_as_in_ddpm():
    x, t = _inputs(UNetConfig.tiny(**TINY16))
    assert UNet(UNetConfig.tiny(**TINY16))(x, t).abs().max().item() == 0.0


def test_ddpm_cifar10_parameter_count():
    with torch.device("meta"):  # no memory, no initialization cost
        model = UNet(UNetConfig.ddpm_cifar10())
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - 35.7e6) / 35.7e6 < 0.01, f"{n:,} parameters; DDPM's CIFAR-10 model has 35.7M"
    with torch.device("meta"):
        sizes = [sum(p.numel() for p in UNet(getattr(UNetConfig, s)()).parameters()) for s in ("tiny", "small")]
    assert sizes[0] < sizes[1] < n


def test_integer_and_float_steps_agree():
    c = UNetConfig.tiny(**TINY16)
    model, (x, t) = _wake(UNet(c)), _inputs(c)
    torch.testing.assert_close(model(x, t), model(x, t.float()))
    assert not torch.allclose(model(x, t), model(x, t + 100)), "t must change the output"


def test_class_conditioning_and_null_class():
    c = UNetConfig.tiny(num_classes=10, **TINY16)
    model, (x, t) = _wake(UNet(c)), _inputs(c)
    out0, out1 = model(x, t, torch.tensor([0, 0])), model(x, t, torch.tensor([1, 1]))
    assert not torch.allclose(out0, out1), "the label must change the output"
    torch.testing.assert_close(model(x, t), model(x, t, torch.tensor([10, 10])))  # y=None: the null class
    mixed = model(x, t, torch.tensor([0, 10]))  # label dropout per sample, as classifier-free guidance trains
    torch.testing.assert_close(mixed[0], out0[0])
    torch.testing.assert_close(mixed[1], model(x, t)[1])
    with pytest.raises(ValueError, match=r"y must be an integer tensor of shape \(2,\)"):
        model(x, t, torch.zeros(2))
    with pytest.raises(ValueError, match="unconditional"):
        UNet(UNetConfig.tiny(**TINY16))(x, t, torch.tensor([0, 1]))


def test_channels_last_matches_contiguous():
    c = UNetConfig.tiny(head_dim=8, **TINY16)
    model, (x, t) = _wake(UNet(c)), _inputs(c)
    ref = model(x, t)
    model_cl = model.to(memory_format=torch.channels_last)
    out = model_cl(x.contiguous(memory_format=torch.channels_last), t)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_attention_equals_manual_softmax():
    C, heads, H, W = 8, 2, 3, 4
    attn = _wake(SelfAttention(C, heads, groups=4))
    x = torch.randn(2, C, H, W)
    n = attn.norm(x).flatten(2)  # (B, C, HW)
    wq, wk, wv = attn.qkv.weight.chunk(3)  # each (C, C)
    bq, bk, bv = attn.qkv.bias.chunk(3)
    d = C // heads
    out = torch.empty(2, C, H * W)
    for h in range(heads):
        rows = slice(h * d, (h + 1) * d)
        q, k, v = ((w[rows] @ n + b[rows, None]) for w, b in ((wq, bq), (wk, bk), (wv, bv)))  # (B, d, HW)
        weights = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(d), dim=-1)  # (B, HW_query, HW_key)
        out[:, rows] = (weights @ v.transpose(1, 2)).transpose(1, 2)
    expected = x + (attn.proj.weight @ out + attn.proj.bias[:, None]).reshape(2, C, H, W)
    torch.testing.assert_close(attn(x), expected, atol=1e-5, rtol=1e-4)


def test_a_few_steps_lower_the_eps_prediction_loss():
    c = UNetConfig.tiny(**TINY16)
    model = UNet(c).train()
    x0, t = _inputs(c, batch=8)
    eps = torch.randn_like(x0)
    alpha_bar = torch.linspace(0.99, 0.05, 1000)[t].view(-1, 1, 1, 1)
    x_t = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps  # DDPM Eq. 4
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(16):
        loss = F.mse_loss(model(x_t, t), eps)  # DDPM Eq. 14
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_follows_input_dtype_and_autocast():
    c = UNetConfig.tiny(**TINY16)
    model, (x, t) = _wake(UNet(c)), _inputs(c)
    assert model.double()(x.double(), t).dtype == torch.float64
    model.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, t)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), model(x, t), atol=0.1, rtol=0.1)


def test_bad_inputs_raise_clear_errors():
    c = UNetConfig.tiny(**TINY16)
    model, (x, t) = UNet(c), _inputs(c)
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 3, 16, 16\), got \(2, 4, 16, 16\)"):
        model(torch.randn(2, 4, 16, 16), t)
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 3, 16, 16\), got \(2, 3, 32, 32\)"):
        model(torch.randn(2, 3, 32, 32), t)
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 3, 16, 16\), got \(3, 16, 16\)"):
        model(x[0], t)
    with pytest.raises(ValueError, match=r"t must be a tensor of shape \(2,\), got \(3,\)"):
        model(x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"t must be a tensor of shape \(2,\), got int"):
        model(x, 5)


def test_bad_configs_raise_clear_errors():
    with pytest.raises(ValueError, match="attention_resolutions"):
        UNetConfig.tiny(attention_resolutions=(12,))
    with pytest.raises(ValueError, match="divisible"):
        UNetConfig(image_size=20)
    with pytest.raises(ValueError, match="head_dim"):
        UNetConfig.tiny(head_dim=7)


def test_same_function_as_the_diffusers_twin_of_the_benchmark():
    pytest.importorskip("diffusers")
    bench = load_benchmark("unet_vs_diffusers")
    for c in (UNetConfig.tiny(**TINY16), UNetConfig.tiny(num_classes=10, head_dim=8, num_res_blocks=2, **TINY16)):
        model, twin = UNet(c), bench.diffusers_twin(c)
        assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in twin.parameters())
        assert bench.parity_check(model, twin, torch.device("cpu")) < 1e-5
