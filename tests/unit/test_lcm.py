"""Chapter 9's latent consistency distillation: the teacher's skipping-step solver is a DDIM step of its guided
prediction (samplers.ddim.ddim_step), the loss's pieces, its target network, and that it trains."""

import pytest
import torch

from course_lib.data.captions import tokenize
from course_lib.process.consistency import consistency_output
from course_lib.samplers.ddim import ddim_step
from course_lib.process.lcm_distillation import (LCMDistillationLoss, ddim_step_batched, guided_ddim_step,
                                                 pseudo_huber)
from course_lib.models.lcm import GuidanceConditionedDenoiser
from course_lib.process.schedules import make_schedule
from course_lib.process.text_guidance import text_cfg_model

from test_consistency import tiny_teacher


def test_batched_ddim_step_equals_ddim_step_row_by_row():
    schedule = make_schedule("linear", 1000)
    z, eps = torch.randn(4, 4, 8, 8, dtype=torch.float64), torch.randn(4, 4, 8, 8, dtype=torch.float64)
    t, t_prev = torch.tensor([19, 39, 519, 999]), torch.tensor([-1, 19, 499, 979])
    out = ddim_step_batched(schedule, eps, z, t, t_prev)
    for i in range(4):
        expected = ddim_step(schedule, eps[i:i + 1], int(t[i]), int(t_prev[i]), z[i:i + 1])
        torch.testing.assert_close(out[i:i + 1], expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="t_prev < t"):
        ddim_step_batched(schedule, eps, z, t_prev, t)


def test_guided_solver_is_a_ddim_step_of_the_guided_teacher():
    schedule, teacher = make_schedule("linear", 1000), tiny_teacher()
    z, tokens = torch.randn(3, 4, 8, 8), tokenize(["a photo of a red truck", "a photo of a cat", "a dog"])
    t, w = torch.tensor([999, 499, 19]), torch.tensor([1.0, 3.0, 5.0])
    out = guided_ddim_step(teacher, schedule, z, t, t - 20, tokens, w)
    with torch.no_grad():
        for i in range(3):
            eps = text_cfg_model(teacher, tokens[i], float(w[i]))(z[i:i + 1], t[i:i + 1])
            expected = ddim_step(schedule, eps, int(t[i]), int(t[i]) - 20, z[i:i + 1])
            torch.testing.assert_close(out[i:i + 1], expected, rtol=1e-4, atol=1e-5)


def test_pseudo_huber():
    d = torch.tensor([0.0, 1e-4, 1.0, -3.0])
    assert pseudo_huber(d, 1e-3)[0] == 0
    torch.testing.assert_close(pseudo_huber(d, 1e-3)[2:], torch.tensor([1.0, 3.0]), atol=1e-3, rtol=0)  # |d| far out
    near_zero = torch.tensor(1e-8 / 2e-3)  # d^2 / 2c
    torch.testing.assert_close(pseudo_huber(d, 1e-3)[1], near_zero, rtol=1e-2, atol=0)


def batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    captions = ["a photo of a red truck", "a photo of a white cat", "a bright photo of a ship", "a dark horse"]
    return torch.randn(n, 4, 8, 8, generator=g), tokenize([captions[i % 4] for i in range(n)])


def test_loss_at_the_data_end_targets_the_teachers_estimate_and_the_target_follows():
    schedule, teacher = make_schedule("linear", 1000), tiny_teacher()
    student = GuidanceConditionedDenoiser.from_teacher(teacher)
    loss = LCMDistillationLoss(teacher, schedule, w_min=2.0, w_max=2.0, huber_c=None)
    loss.grid = torch.tensor([19])  # every example at t_{n+k} = 19, one step from the data end
    z0, tokens = batch()
    g = torch.Generator().manual_seed(1)
    value = loss(student.eval(), (z0, tokens), generator=g)
    g = torch.Generator().manual_seed(1)  # the same draws by hand
    n = torch.randint(0, 1, (8,), generator=g)
    w = 2.0 + 0.0 * torch.rand(8, generator=g)
    noise = torch.randn(z0.shape, generator=g)
    a = schedule.alpha_bar[19].float()
    z_t = a.sqrt() * z0 + (1 - a).sqrt() * noise
    t = torch.full((8,), 19)
    with torch.no_grad():
        x0_hat = (z_t - (1 - a).sqrt() * text_cfg_model(teacher, tokens, w)(z_t, t)) / a.sqrt()  # DDIM to alpha_bar = 1
        pred = consistency_output(schedule, student(z_t, t, tokens, w), z_t, t)
    torch.testing.assert_close(value, (pred - x0_hat).pow(2).mean(), rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    loss(student.train(), (z0, tokens))  # training mode: theta^- <- 0.95 theta^- + 0.05 theta
    p_target, p_student = next(loss.target.model.parameters()), next(student.parameters())
    torch.testing.assert_close(p_target, p_student - 0.95, rtol=1e-5, atol=1e-5)


def test_distillation_loss_decreases_on_a_tiny_model():
    """Adam steps on one batch with the same draws (n, w, noise) each time; the target follows the student."""
    schedule, teacher = make_schedule("linear", 1000), tiny_teacher()
    student = GuidanceConditionedDenoiser.from_teacher(teacher).train()
    loss = LCMDistillationLoss(teacher, schedule, w_min=1.0, w_max=5.0)
    data, optimizer = batch(16), torch.optim.Adam(student.parameters(), lr=3e-4)
    values = []
    for _ in range(30):
        value = loss(student, data, generator=torch.Generator().manual_seed(3))
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        values.append(value.item())
    assert values[-1] < 0.3 * values[0], values
    assert float(student.w_proj.weight.detach().abs().sum()) > 0  # the w-condition learnt something
