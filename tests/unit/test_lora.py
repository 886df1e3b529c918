"""LoRA (Hu et al. 2022): the output is unchanged at init, merging computes the same function, only
the A and B matrices train, and the update has rank r and scale alpha / r."""

import pytest
import torch
from torch import nn

from course_lib.models.lora import LoRALinear, add_lora, merge_lora, trainable_parameters
from course_lib.models.dit import DiT, DiTConfig

from helpers import perturbed

CONFIG = DiTConfig(input_size=8, patch_size=2, in_channels=3, hidden_size=32, depth=2, num_heads=2, num_classes=10)


def _inputs(B=3):
    return torch.randn(B, 3, 8, 8), torch.tensor([0, 400, 999])[:B], torch.tensor([1, 10, 4])[:B]


def test_lora_linear_is_w0_plus_scaled_low_rank_update():
    base = nn.Linear(16, 8)
    lora = LoRALinear(base, rank=2, alpha=6.0)
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.randn(5, 16)
    delta = lora.delta_weight()
    assert torch.linalg.matrix_rank(delta) == 2 and lora.scale == 3.0
    torch.testing.assert_close(lora(x), base(x) + x @ (3.0 * lora.lora_B @ lora.lora_A).T)  # LoRA Eq. 3
    torch.testing.assert_close(lora.merged()(x), lora(x))
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(base, rank=9)


def test_output_unchanged_at_init_and_only_lora_parameters_train():
    model = perturbed(DiT(CONFIG))
    x, t, y = _inputs()
    before = model(x, t, y)
    total = sum(p.numel() for p in model.parameters())
    add_lora(model, rank=4)
    torch.testing.assert_close(model(x, t, y), before, rtol=0, atol=0)  # B = 0
    wrapped = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    assert sorted(n.rsplit(".", 1)[-1] for n in wrapped) == ["proj", "proj", "qkv", "qkv"]
    expected = sum(4 * (m.base.in_features + m.base.out_features) for m in model.modules() if isinstance(m, LoRALinear))
    assert trainable_parameters(model) == expected < total / 10
    assert {n.rsplit(".", 1)[-1] for n, p in model.named_parameters() if p.requires_grad} == {"lora_A", "lora_B"}


def test_gradient_reaches_a_and_b_only_and_training_changes_the_output():
    model = add_lora(perturbed(DiT(CONFIG)), rank=2)
    x, t, y = _inputs()
    before = model(x, t, y).detach()
    model(x, t, y).square().mean().backward()
    for name, p in model.named_parameters():
        if name.endswith(("lora_A", "lora_B")):
            assert p.grad is not None
        else:
            assert p.grad is None, name
    # B = 0 at init: A's gradient B^T (...) is zero at the first step, B's is not
    a_grads = [m.lora_A.grad for m in model.modules() if isinstance(m, LoRALinear)]
    b_grads = [m.lora_B.grad for m in model.modules() if isinstance(m, LoRALinear)]
    assert all(torch.count_nonzero(g) == 0 for g in a_grads) and all(g.abs().sum() > 0 for g in b_grads)
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
    assert not torch.allclose(model(x, t, y), before)


def test_merged_model_equals_the_unmerged_one_with_the_original_structure():
    model = DiT(CONFIG)
    keys = set(model.state_dict())
    add_lora(perturbed(model), rank=3, alpha=5.0)
    perturbed(model, seed=1)  # A and B as after training (and the frozen weights, which do not matter here)
    x, t, y = _inputs()
    with torch.no_grad():
        unmerged = model(x, t, y)
        merge_lora(model)
        torch.testing.assert_close(model(x, t, y), unmerged, rtol=1e-5, atol=1e-5)
    assert set(model.state_dict()) == keys and not any(isinstance(m, LoRALinear) for m in model.modules())
    DiT(CONFIG).load_state_dict(model.state_dict())  # loads into a plain DiT


def test_targets_by_name_or_predicate():
    model = add_lora(DiT(CONFIG), target=lambda name, layer: name.startswith("blocks.0.mlp"), rank=2)
    wrapped = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    assert wrapped == ["blocks.0.mlp.0", "blocks.0.mlp.2"]
    with pytest.raises(ValueError, match="no nn.Linear"):
        add_lora(DiT(CONFIG), target=("to_q",))
