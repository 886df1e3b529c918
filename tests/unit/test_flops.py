"""Gflops in the DiT paper's convention (one multiply-add = one flop), counted with FlopCounterMode."""

import pytest
import torch
from torch import nn

from course_lib.evaluation.flops import forward_flops, gflops, model_gflops
from course_lib.models.dit import DiT, DiTConfig
from course_lib.models.unet import UNet, UNetConfig

# The paper's numbers: DiT (Peebles & Xie 2023), Table 4, at 256 x 256 images (32 x 32 x 4 latents).
PAPER_GFLOPS = {"S/2": 6.06, "S/4": 1.41, "B/2": 23.01, "B/4": 5.56, "XL/2": 118.6}


@pytest.mark.parametrize("name", sorted(PAPER_GFLOPS))
def test_dit_gflops_match_the_paper(name):
    with torch.device("meta"):  # no weights allocated: B/2 and XL/2 cost nothing to count
        model = DiT(DiTConfig.named(name, input_size=32, in_channels=4, num_classes=1000))
    assert model_gflops(model) == pytest.approx(PAPER_GFLOPS[name], rel=0.01)


def test_a_linear_layer_counts_its_multiply_adds():
    layer = nn.Linear(64, 32, bias=False)
    x = torch.randn(5, 64)
    assert forward_flops(layer, x) == 2 * 5 * 64 * 32  # FlopCounterMode: 2 per multiply-add
    assert gflops(layer, x) == pytest.approx(64 * 32 / 1e9)  # per sample, one per multiply-add


def test_attention_is_counted_on_the_cpu():
    """The fused CPU attention kernel is invisible to FlopCounterMode; the math backend is not."""
    q = torch.randn(1, 2, 16, 8)
    attention = nn.Module()
    attention.forward = lambda q: torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert forward_flops(attention, q) == 2 * 2 * (2 * 16 * 16 * 8)  # q k^T and (.) v, per head


def test_counts_the_unet_too_and_do_not_depend_on_the_batch():
    with torch.device("meta"):
        unet = UNet(UNetConfig.ddpm_cifar10())
    assert 5.5 < model_gflops(unet) < 7.0  # DDPM's CIFAR-10 U-Net: about 6 G multiply-adds per pass
    dit = DiT(DiTConfig.tiny(2, in_channels=3, num_classes=10))
    one = model_gflops(dit)
    x, t = torch.zeros(4, 3, 32, 32), torch.zeros(4, dtype=torch.long)
    assert gflops(dit, x, t, torch.zeros(4, dtype=torch.long)) == pytest.approx(one)
