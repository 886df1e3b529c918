"""Cross-attention in the U-Net (LDM Eq. 3): equal to torch.nn.MultiheadAttention with the same weights,
padding ignored, a model without context_dim unchanged (same parameter names, count and outputs as
chapters 3-5 saved), and clear errors."""

import pytest
import torch

from course_lib.models import UNet, UNetConfig
from course_lib.models.unet_blocks import CrossAttention

from helpers import perturbed

TINY8 = dict(in_channels=4, image_size=8, attention_resolutions=(4,))  # a 4x8x8 latent


def _wake(model, scale=0.2):
    return perturbed(model, scale, seed=None).eval()


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_cross_attention_equals_multihead_attention(heads):
    C, D, L, H, W = 8, 6, 5, 3, 4
    cross = _wake(CrossAttention(C, D, heads, groups=4)).double()
    mha = torch.nn.MultiheadAttention(C, heads, kdim=D, vdim=D, batch_first=True).double()
    with torch.no_grad():
        mha.q_proj_weight.copy_(cross.q.weight)
        mha.k_proj_weight.copy_(cross.k.weight)
        mha.v_proj_weight.copy_(cross.v.weight)
        mha.in_proj_bias.copy_(torch.cat([cross.q.bias, cross.k.bias, cross.v.bias]))
        mha.out_proj.weight.copy_(cross.proj.weight)
        mha.out_proj.bias.copy_(cross.proj.bias)
    x, context = torch.randn(2, C, H, W, dtype=torch.float64), torch.randn(2, L, D, dtype=torch.float64)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])  # sample 1: two padded tokens
    queries = cross.norm(x).flatten(2).transpose(1, 2)  # (B, H*W, C)
    ref, _ = mha(queries, context, context, key_padding_mask=~mask, need_weights=False)
    expected = x + ref.transpose(1, 2).reshape(2, C, H, W)
    torch.testing.assert_close(cross(x, context, mask), expected, rtol=1e-10, atol=1e-12)


def test_padded_tokens_do_not_change_the_output():
    model = _wake(UNet(UNetConfig.tiny(context_dim=6, **TINY8)))
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([10, 900])
    context = torch.randn(2, 5, 6)
    mask = torch.tensor([[True, True, False, False, False], [True, True, True, True, False]])
    out = model(x, t, context=context, context_mask=mask)
    other = torch.where(mask[..., None], context, 100 * torch.randn(2, 5, 6))  # new content where padded
    torch.testing.assert_close(model(x, t, context=other, context_mask=mask), out)
    assert not torch.allclose(model(x, t, context=other), out)  # without the mask the padding counts
    shorter = model(x[:1], t[:1], context=context[:1, :2], context_mask=mask[:1, :2])  # no padding at all
    torch.testing.assert_close(shorter, out[:1], atol=1e-5, rtol=1e-4)


def test_every_attention_block_and_the_middle_cross_attend():
    c = UNetConfig.tiny(context_dim=6, **TINY8)
    model = UNet(c)
    with_self = [n for n, m in model.named_modules() if type(m).__name__ == "SelfAttention"]
    with_cross = [n for n, m in model.named_modules() if isinstance(m, CrossAttention)]
    assert len(with_cross) == len(with_self) > 0 and "mid.cross" in with_cross
    assert all(m.proj.weight.abs().sum() == 0 for m in model.modules() if isinstance(m, CrossAttention))
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([1, 2])
    assert UNet(c)(x, t, context=torch.randn(2, 3, 6)).abs().max() == 0  # zero-initialised output, as DDPM's
    woken = _wake(model)
    assert not torch.allclose(woken(x, t, context=torch.randn(2, 3, 6)), woken(x, t, context=torch.randn(2, 3, 6)))


@pytest.mark.parametrize("config", [UNetConfig.tiny(), UNetConfig.tiny(num_classes=10, head_dim=8), UNetConfig.small()])
def test_without_context_dim_the_unet_is_the_one_of_chapters_3_to_5(config):
    """Saved chapter 3-5 artifacts must load: same names, shapes, count; and the same function."""
    torch.manual_seed(0)
    model = UNet(config)
    names = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert not any("cross" in k for k in names)
    torch.manual_seed(0)
    with_context = UNet(UNetConfig(**{**config.__dict__, "context_dim": 8}))
    extra = {k for k in with_context.state_dict() if k not in names}
    assert extra and all(".cross." in k for k in extra)  # cross-attention only adds parameters
    fresh = UNet(config)
    fresh.load_state_dict(model.state_dict(), strict=True)  # what load_artifact does
    if config.image_size == 32 and config.base_channels == 16:
        _wake(model)
        fresh.load_state_dict(model.state_dict())
        x, t = torch.randn(2, 3, 32, 32), torch.tensor([3, 500])
        y = torch.tensor([1, 2]) if config.num_classes else None
        torch.testing.assert_close(fresh(x, t, y), model(x, t, y), rtol=0, atol=0)


def test_bad_context_raises_clear_errors():
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([1, 2])
    plain = UNet(UNetConfig.tiny(**TINY8))
    with pytest.raises(ValueError, match="without cross-attention"):
        plain(x, t, context=torch.randn(2, 3, 6))
    model = UNet(UNetConfig.tiny(context_dim=6, **TINY8))
    with pytest.raises(ValueError, match="cross-attends to a context"):
        model(x, t)
    with pytest.raises(ValueError, match=r"context must be a float tensor of shape \(2, L, 6\)"):
        model(x, t, context=torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match=r"context must be a float tensor"):
        model(x, t, context=torch.randn(3, 3, 6))
    with pytest.raises(ValueError, match=r"context_mask must be a bool tensor of shape \(2, 3\)"):
        model(x, t, context=torch.randn(2, 3, 6), context_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="context_dim must be None or a positive int"):
        UNetConfig.tiny(context_dim=0)
