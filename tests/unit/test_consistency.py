"""Chapter 9's consistency parameterization and LCM sampler: the boundary scalings and the sampling loop equal
diffusers' LCMScheduler (float64, step for step), the boundary condition holds, and the guidance-conditioned
student starts as its teacher."""

import pytest
import torch

from course_lib.data.captions import tokenize
from course_lib.process.consistency import c_out, c_skip, consistency_output, lcm_grid
from course_lib.samplers.consistency import lcm_sample, lcm_timesteps
from course_lib.models import LatentDenoiser
from course_lib.models.lcm import GuidanceConditionedDenoiser, guidance_embedding
from course_lib.recipes.ch06_ldm import ldm_config, ldm_recipe
from course_lib.course.profiles import get_profile
from course_lib.process.schedules import make_schedule

from helpers import perturbed

diffusers = pytest.importorskip("diffusers")


def lcm_scheduler(schedule):
    """diffusers' LCMScheduler with the course's linear betas, its alpha_bar replaced by the course's float64 one."""
    s = diffusers.LCMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    # the same schedule (diffusers holds it in float32)
    torch.testing.assert_close(s.alphas_cumprod.double(), schedule.alpha_bar, rtol=1e-4, atol=1e-6)
    s.alphas_cumprod = schedule.alpha_bar.clone()  # float64, for a float64 comparison
    s.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    return s


def test_scalings_equal_lcm_schedulers_at_every_step():
    s = diffusers.LCMScheduler()
    for t in range(1000):
        assert (c_skip(t), c_out(t)) == s.get_scalings_for_boundary_condition_discrete(t)
    t = torch.arange(1000)
    torch.testing.assert_close(c_skip(t), torch.tensor([c_skip(i) for i in range(1000)], dtype=torch.float64))
    torch.testing.assert_close(c_out(t), torch.tensor([c_out(i) for i in range(1000)], dtype=torch.float64))


def test_boundary_condition_and_the_switch_to_x0_hat():
    schedule = make_schedule("linear", 1000)
    assert c_skip(0) == 1.0 and c_out(0) == 0.0  # CM Eq. 5: f(x, eps) = x
    x, eps = torch.randn(3, 4, 8, 8, dtype=torch.float64), torch.randn(3, 4, 8, 8, dtype=torch.float64)
    assert torch.equal(consistency_output(schedule, eps, x, torch.zeros(3, dtype=torch.long)), x)
    assert c_skip(1) < 0.003 and c_out(1) > 0.998  # LCM's timestep_scaling = 10: f is nearly x0_hat from t = 1
    t = torch.arange(1000)
    assert bool((c_skip(t).diff() < 0).all()) and bool((c_out(t).diff() > 0).all())
    t = torch.tensor([0, 19, 999])
    a = schedule.alpha_bar[t].reshape(-1, 1, 1, 1)
    x0_hat = (x - (1 - a).sqrt() * eps) / a.sqrt()
    expected = c_skip(t).reshape(-1, 1, 1, 1) * x + c_out(t).reshape(-1, 1, 1, 1) * x0_hat
    torch.testing.assert_close(consistency_output(schedule, eps, x, t), expected)


@pytest.mark.parametrize("num_steps", [1, 2, 3, 4, 8, 50])
def test_timesteps_equal_set_timesteps(num_steps):
    s = diffusers.LCMScheduler()
    s.set_timesteps(num_steps, original_inference_steps=50)
    assert torch.equal(lcm_timesteps(1000, num_steps), s.timesteps)
    assert torch.equal(lcm_grid(1000, 50), torch.arange(19, 1000, 20))


def linear_model(seed=0):
    """A fixed random linear eps-model of (z, t, w), in float64."""
    g = torch.Generator().manual_seed(seed)
    A, b = torch.randn(4, 4, generator=g, dtype=torch.float64) / 4, torch.randn(4, generator=g, dtype=torch.float64)

    def model(z, t, tokens, w):
        mix = torch.einsum("oc,bchw->bohw", A, z)
        scale, shift = (1 + t.double() / 1000).reshape(-1, 1, 1, 1), 0.1 * w.double().reshape(-1, 1, 1, 1)
        return mix * scale + shift * b.reshape(1, 4, 1, 1)
    return model


@pytest.mark.parametrize("num_steps", [1, 2, 4, 8])
def test_lcm_sample_equals_lcm_scheduler_step_for_step(num_steps):
    schedule = make_schedule("linear", 1000)
    model, tokens, w = linear_model(), torch.zeros(2, 5, dtype=torch.long), 3.0
    z_T = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    out, denoised = lcm_sample(model, schedule, z_T, num_steps, w, tokens, torch.Generator().manual_seed(7),
                               keep_trajectory=True)
    s = lcm_scheduler(schedule)
    s.set_timesteps(num_steps, original_inference_steps=50)
    z, gen = z_T.clone(), torch.Generator().manual_seed(7)
    for i, t in enumerate(s.timesteps):
        eps = model(z, torch.full((2,), int(t)), tokens, torch.full((2,), w))
        step = s.step(eps, int(t), z, generator=gen)
        torch.testing.assert_close(denoised[i], step.denoised, rtol=1e-12, atol=1e-12)
        z = step.prev_sample
    torch.testing.assert_close(out, z, rtol=1e-12, atol=1e-12)
    assert out.dtype == torch.float64


def test_lcm_sample_one_step_is_f_at_the_top_and_is_deterministic():
    schedule, model = make_schedule("linear", 1000), linear_model(1)
    z_T, tokens = torch.randn(3, 4, 8, 8, dtype=torch.float64), torch.zeros(5, dtype=torch.long)
    w = torch.tensor([1.0, 2.0, 3.0])
    one = lcm_sample(model, schedule, z_T, 1, w, tokens)
    t = torch.full((3,), 999)
    torch.testing.assert_close(one, consistency_output(schedule, model(z_T, t, None, w), z_T, t))
    a = lcm_sample(model, schedule, z_T, 4, 2.0, tokens, torch.Generator().manual_seed(0))
    b = lcm_sample(model, schedule, z_T, 4, 2.0, tokens, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="num_inference_steps"):
        lcm_sample(model, schedule, z_T, 51, 2.0, tokens)


def test_guidance_embedding_is_diffusers_sinusoidal_embedding_of_1000_omega():
    """LatentConsistencyModelPipeline.get_guidance_scale_embedding (it needs transformers to import) is
    get_timestep_embedding of 1000 omega with sin first and frequencies 10000^(-k / (dim/2 - 1)); the two round
    their frequencies differently in float32, which moves arguments up to 14000 by about 1e-3."""
    from diffusers.models.embeddings import get_timestep_embedding
    omega = torch.tensor([0.0, 0.25, 1.0, 2.5, 14.0])
    for dim in (16, 256):
        expected = get_timestep_embedding(1000 * omega, dim, flip_sin_to_cos=False, downscale_freq_shift=1)
        torch.testing.assert_close(guidance_embedding(omega, dim), expected, rtol=0, atol=5e-3)
        torch.testing.assert_close(guidance_embedding(omega[:3], dim), expected[:3], rtol=0, atol=1e-4)


def tiny_teacher():
    torch.manual_seed(0)
    teacher = LatentDenoiser(ldm_config(ldm_recipe(get_profile("smoke")), (4, 8, 8))).eval()
    return perturbed(teacher, 0.05, seed=None)  # no zero-initialised layers left: a teacher that predicts something


def test_student_starts_as_the_teacher_and_leaves_it_unchanged():
    teacher = tiny_teacher()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = GuidanceConditionedDenoiser.from_teacher(teacher).eval()
    assert set(student.state_dict()) == {f"denoiser.{k}" for k in before} | {"w_proj.weight"}
    z, t = torch.randn(4, 4, 8, 8), torch.tensor([0, 19, 500, 999])
    tokens = tokenize(["a photo of a red truck", "a photo of a cat", "", "a bright photo of a white ship"])
    for w in (1.0, torch.tensor([1.0, 3.0, 5.0, 15.0])):
        assert torch.equal(student(z, t, tokens, w), teacher(z, t, tokens))
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    assert not teacher.unet.time_mlp._forward_pre_hooks  # the hook lives for one call only
    assert all(p.requires_grad for p in student.parameters())
    with torch.no_grad():
        student.w_proj.weight.normal_()
    a, b = student(z, t, tokens, 1.0), student(z, t, tokens, 5.0)
    assert not torch.allclose(a, b)  # once trained, w matters
    assert torch.equal(teacher(z, t, tokens), teacher(z, t, tokens))
