"""DiT (Peebles & Xie 2023): adaLN-Zero identity at init, patchify/unpatchify, position embeddings,
the U-Net's interface (guidance and samplers take it unchanged), and parity with diffusers'
DiTTransformer2DModel (parameter counts, and outputs in float64 with the weights copied over)."""

import pytest
import torch

from course_lib.samplers.ddim import ddim_sample, timesteps
from course_lib.process.guidance import LabelDropoutLoss, cfg_model
from course_lib.models.dit import DiT, DiTBlock, DiTConfig, patchify, sincos_pos_embed_2d, unpatchify
from course_lib.process.schedules import make_schedule

from helpers import load_benchmark, perturbed

TINY = dict(input_size=8, patch_size=2, in_channels=4, hidden_size=32, depth=2, num_heads=2, num_classes=10)


def test_named_sizes_follow_dit_table_1():
    for name, (depth, width, heads) in {"S": (12, 384, 6), "B": (12, 768, 12), "XL": (28, 1152, 16)}.items():
        for p in (2, 4, 8):
            c = DiTConfig.named(f"{name}/{p}")
            assert (c.depth, c.hidden_size, c.num_heads, c.patch_size) == (depth, width, heads, p)
    assert DiTConfig.small(4) == DiTConfig.named("S/4") and DiTConfig.base(2) == DiTConfig.named("B/2")
    assert DiTConfig.small(2, in_channels=3).num_tokens == 256 and DiTConfig.small(4).num_tokens == 64
    with pytest.raises(ValueError, match="SIZE/PATCH"):
        DiTConfig.named("M/2")
    with pytest.raises(ValueError, match="must divide"):
        DiTConfig(input_size=32, patch_size=3)


@pytest.mark.parametrize("p,channels,size", [(1, 3, 4), (2, 3, 32), (4, 4, 32), (8, 4, 16)])
def test_patchify_unpatchify_round_trip(p, channels, size):
    x = torch.randn(2, channels, size, size)
    tokens = patchify(x, p)
    assert tokens.shape == (2, (size // p) ** 2, p * p * channels)
    torch.testing.assert_close(unpatchify(tokens, p, channels), x, rtol=0, atol=0)
    # token n is the n-th patch in row-major order, flattened as (rows, columns, channels)
    n_col = size // p
    torch.testing.assert_close(tokens[:, n_col + 1], x[:, :, p:2 * p, p:2 * p].permute(0, 2, 3, 1).reshape(2, -1))


def test_patch_embedding_is_a_linear_map_of_the_patches():
    model = DiT(DiTConfig(**TINY))
    x = torch.randn(3, 4, 8, 8)
    w = model.x_embedder.weight  # (D, C, p, p)
    linear = patchify(x, 2) @ w.permute(0, 2, 3, 1).reshape(w.shape[0], -1).T + model.x_embedder.bias
    torch.testing.assert_close(model.x_embedder(x).flatten(2).transpose(1, 2), linear)


def test_sincos_position_embeddings():
    pos = sincos_pos_embed_2d(16, 4)  # (16 tokens, 16 channels)
    assert pos.shape == (16, 16) and pos.dtype == torch.float64
    row, col = 2, 3
    omega = 1.0 / 10_000 ** (torch.arange(4, dtype=torch.float64) / 4)
    expected = torch.cat([(col * omega).sin(), (col * omega).cos(), (row * omega).sin(), (row * omega).cos()])
    torch.testing.assert_close(pos[row * 4 + col], expected)
    assert torch.unique(pos, dim=0).shape[0] == 16  # every position distinct


def test_adaln_zero_makes_every_block_the_identity_and_the_output_zero():
    model = DiT(DiTConfig(**TINY))
    x, c = torch.randn(3, 16, 32), torch.randn(3, 32)
    for block in model.blocks:
        torch.testing.assert_close(block(x, c), x, rtol=0, atol=0)
    out = model(torch.randn(3, 4, 8, 8), torch.tensor([0, 500, 999]), torch.tensor([1, 10, 3]))
    assert out.shape == (3, 4, 8, 8) and torch.count_nonzero(out) == 0
    # the gates are zero but the block is not trivially dead: its gradient reaches the modulation
    block = DiTBlock(32, 2)
    block(x, c).sum().backward()
    assert block.adaLN_modulation[-1].weight.grad.abs().sum() > 0


def test_interface_matches_the_unet():
    model = perturbed(DiT(DiTConfig(**TINY)))
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([3, 7])
    null = torch.full((2,), 10)
    torch.testing.assert_close(model(x, t), model(x, t, null))  # y=None is the null class
    assert not torch.allclose(model(x, t, torch.tensor([0, 1])), model(x, t, null))
    assert model(x, t.float()).shape == x.shape  # float steps go through the same features
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 4, 8, 8\)"):
        model(torch.randn(2, 3, 8, 8), t)
    with pytest.raises(ValueError, match=r"t must be a tensor of shape \(2,\)"):
        model(x, torch.tensor(3))
    with pytest.raises(ValueError, match="y must be an integer tensor"):
        model(x, t, torch.tensor([0.0, 1.0]))
    uncond = DiT(DiTConfig(**{**TINY, "num_classes": None}))
    assert uncond.y_embedder is None and uncond(x, t).shape == x.shape
    with pytest.raises(ValueError, match="unconditional model"):
        uncond(x, t, torch.tensor([0, 1]))


def test_guidance_and_samplers_take_it_unchanged():
    model = perturbed(DiT(DiTConfig(**TINY)))
    schedule = make_schedule("linear", 1000)
    loss = LabelDropoutLoss(schedule, p_uncond=0.5)  # num_classes read from model.config
    batch = (torch.randn(4, 4, 8, 8), torch.tensor([0, 1, 2, 9]))
    value = loss(model, batch, generator=torch.Generator().manual_seed(0))
    value.backward()
    assert value.ndim == 0 and model.y_embedder.weight.grad is not None
    with torch.no_grad():
        x = ddim_sample(cfg_model(model, 3, 2.0), schedule, torch.randn(2, 4, 8, 8), timesteps(1000, 3))
    assert x.shape == (2, 4, 8, 8) and torch.isfinite(x).all()


def test_follows_the_input_dtype():
    model = perturbed(DiT(DiTConfig(**TINY))).double()
    out = model(torch.randn(2, 4, 8, 8, dtype=torch.float64), torch.tensor([1, 2]), torch.tensor([0, 1]))
    assert out.dtype == torch.float64


# ---- parity with diffusers' DiTTransformer2DModel -------------------------------------------------

def _bench():
    """benchmarks/dit_vs_diffusers.py: the twin and the weight copy that the benchmark times, tested here."""
    pytest.importorskip("diffusers")
    return load_benchmark("dit_vs_diffusers")


def _diffusers_dit(config: DiTConfig):
    return _bench().diffusers_twin(config)


def _embedder_parameters(model: DiT) -> int:
    return sum(p.numel() for m in (model.t_embedder, model.y_embedder) for p in m.parameters())


@pytest.mark.parametrize("name", ["S/2", "S/4"])
def test_parameter_count_equals_diffusers_but_for_its_per_block_embedders(name):
    """diffusers gives every block its own timestep and label embedders (AdaLayerNormZero owns one; the
    final layer uses block 0's); DiT shares one. So diffusers holds depth - 1 extra copies of them, and
    everything else (patch embedding, attention, MLP, modulation, final layer) matches exactly."""
    config = DiTConfig.named(name, in_channels=4, num_classes=1000)
    with torch.device("meta"):  # counts only: no memory, no init
        ours, ref = DiT(config), _diffusers_dit(config)
    n_ours, n_ref = (sum(p.numel() for p in m.parameters()) for m in (ours, ref))
    assert n_ref - n_ours == (config.depth - 1) * _embedder_parameters(ours)
    per_block_ref = sum(p.numel() for n, p in ref.transformer_blocks[0].named_parameters() if ".emb." not in n)
    assert per_block_ref == sum(p.numel() for p in ours.blocks[0].parameters())


def test_outputs_equal_diffusers_in_float64():
    config = DiTConfig(input_size=8, patch_size=2, in_channels=4, hidden_size=64, depth=2, num_heads=2, num_classes=10)
    ours = perturbed(DiT(config)).double()
    ref = _diffusers_dit(config).double().eval()  # eval: diffusers' label embedder drops labels in training mode
    torch.testing.assert_close(ours.pos_embed, ref.pos_embed.pos_embed, rtol=0, atol=0)
    with torch.no_grad():
        _bench().copy_weights(ours, ref)
        x = torch.randn(3, 4, 8, 8, dtype=torch.float64)
        t, y = torch.tensor([0, 500, 999]), torch.tensor([1, 10, 3])  # 10: the null class
        out = ours(x, t, y)
        torch.testing.assert_close(out, ref(x, t, y).sample, rtol=1e-12, atol=1e-12)
    assert out.abs().max() > 0.1


def test_the_benchmarks_parity_check_sees_the_same_function_and_a_wrong_copy():
    bench = _bench()  # a fresh module: patching it below touches nothing else
    config = DiTConfig(**{**TINY, "in_channels": 3})
    assert bench.parity_check(DiT(config), bench.diffusers_twin(config), torch.device("cpu")) < 1e-5
    right = bench.copy_weights

    def off_by_a_bias(ours, twin):
        right(ours, twin)
        twin.proj_out_2.bias.data.add_(0.1)

    bench.copy_weights = off_by_a_bias
    assert bench.parity_check(DiT(config), bench.diffusers_twin(config), torch.device("cpu")) > 0.05
