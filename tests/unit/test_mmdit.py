"""MMDiT (SD3, Esser et al. 2024): joint attention over both token streams, adaLN-Zero identity at
init, padding in the context never attended to, and the interface's checks."""

import pytest
import torch
import torch.nn.functional as F

from course_lib.models.dit import DiTBlock
from course_lib.models.mmdit import MMDiT, MMDiTBlock, MMDiTConfig, joint_attention

from helpers import perturbed

D, HEADS = 32, 2


def _tiny(**overrides):
    return MMDiTConfig.tiny(**{"input_size": 8, "patch_size": 2, "hidden_size": D, "num_heads": HEADS,
                               "context_dim": 12, **overrides})


def test_joint_attention_is_softmax_attention_over_the_concatenated_tokens():
    q, k, v = torch.randn(3, 2, HEADS, 7, 8, dtype=torch.float64).unbind(0)
    scores = q @ k.transpose(-1, -2) / 8**0.5  # (B, heads, N + L, N + L)
    torch.testing.assert_close(joint_attention(q, k, v), scores.softmax(-1) @ v)
    mask = torch.tensor([[True] * 5 + [False, True], [True] * 7])
    masked = scores.masked_fill(~mask[:, None, None, :], float("-inf")).softmax(-1) @ v
    torch.testing.assert_close(joint_attention(q, k, v, mask), masked)


def test_a_block_with_equal_stream_weights_is_a_dit_block_over_the_concatenation():
    """The two streams differ only in their weights: with the context stream's set to the image
    stream's, an MMDiT block is one DiT block applied to [image tokens; context tokens]."""
    block = perturbed(MMDiTBlock(D, HEADS))
    block.ctx_stream.load_state_dict(block.x_stream.state_dict())
    dit = DiTBlock(D, HEADS)
    state = {k.replace("qkv", "attn.qkv").replace("proj", "attn.proj"): v for k, v in block.x_stream.state_dict().items()}
    dit.load_state_dict(state)
    x, ctx, c = torch.randn(2, 16, D), torch.randn(2, 5, D), torch.randn(2, D)
    new_x, new_ctx = block(x, ctx, c)
    torch.testing.assert_close(torch.cat([new_x, new_ctx], dim=1), dit(torch.cat([x, ctx], dim=1), c))


def test_streams_interact_only_through_attention():
    block = perturbed(MMDiTBlock(D, HEADS))
    x, ctx, other, c = torch.randn(2, 16, D), torch.randn(2, 5, D), torch.randn(2, 5, D), torch.randn(2, D)
    assert not torch.allclose(block(x, other, c)[0], block(x, ctx, c)[0])  # image tokens see the context ...
    with torch.no_grad():  # ... and only through attention: zero the image stream's attention output
        block.x_stream.proj.weight.zero_()
        block.x_stream.proj.bias.zero_()
    torch.testing.assert_close(block(x, other, c)[0], block(x, ctx, c)[0])


def test_identity_at_init_and_zero_output():
    model = MMDiT(_tiny())
    block = model.blocks[0]
    x, ctx, c = torch.randn(2, 16, D), torch.randn(2, 5, D), torch.randn(2, D)
    new_x, new_ctx = block(x, ctx, c)
    torch.testing.assert_close(new_x, x, rtol=0, atol=0)
    torch.testing.assert_close(new_ctx, ctx, rtol=0, atol=0)
    out = model(torch.randn(2, 3, 8, 8), torch.tensor([0, 999]), torch.randn(2, 5, 12))
    assert out.shape == (2, 3, 8, 8) and torch.count_nonzero(out) == 0


def test_padding_tokens_are_never_attended_to_nor_pooled():
    model = perturbed(MMDiT(_tiny())).double()
    x, t = torch.randn(2, 3, 8, 8, dtype=torch.float64), torch.tensor([10, 700])
    context = torch.randn(2, 6, 12, dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True, False, False], [True] * 6])
    out = model(x, t, context, mask)
    garbage = context.clone()
    garbage[0, 4:] = 1e3 * torch.randn(2, 12, dtype=torch.float64)
    torch.testing.assert_close(model(x, t, garbage, mask), out)  # the padding's values do not matter
    torch.testing.assert_close(model(x[:1], t[:1], context[:1, :4]), out[:1])  # = no padding at all
    assert not torch.allclose(model(x, t, garbage), out)  # without the mask they would


def test_input_checks():
    model = MMDiT(_tiny())
    x, t, ctx = torch.randn(2, 3, 8, 8), torch.tensor([1, 2]), torch.randn(2, 5, 12)
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 3, 8, 8\)"):
        model(torch.randn(2, 4, 8, 8), t, ctx)
    with pytest.raises(ValueError, match=r"t must be a tensor of shape \(2,\)"):
        model(x, t[:1], ctx)
    with pytest.raises(ValueError, match=r"context must have shape \(2, L, 12\)"):
        model(x, t, torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match="context_mask must be a bool tensor"):
        model(x, t, ctx, torch.ones(2, 5))
    assert MMDiTConfig.sd3(24) == MMDiTConfig()  # SD3 Medium's depth 24: width 1536, 24 heads


def test_the_last_block_keeps_only_what_its_attention_reads():
    model = MMDiT(_tiny(depth=3))
    assert [b.ctx_stream.pre_only for b in model.blocks] == [False, False, True]
    assert not hasattr(model.blocks[-1].ctx_stream, "mlp")


def test_trains_every_parameter():
    model = perturbed(MMDiT(_tiny()), scale=0.02)
    x, t, ctx = torch.randn(4, 3, 8, 8), torch.randint(0, 1000, (4,)), torch.randn(4, 3, 12)
    loss = F.mse_loss(model(x, t, ctx), torch.randn_like(x))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())  # none unused (DDP requires it)
