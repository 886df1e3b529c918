"""The samplers' options that diffusers users reach for (issue 22), each in float64 parity with diffusers:
DDIM's x0 clipping (``clip_sample``), Imagen's dynamic thresholding (``thresholding``), GLIDE's
``use_clipped_model_output`` and Stable Diffusion's ``set_alpha_to_one=False`` (sampling and inversion);
a prediction type for ``ddpm_step`` / ``ddpm_sample``, ``sdedit`` and ``inpaint``."""

import pytest
import torch

from course_lib.process.diffusion import clip_x0_hat, velocity
from course_lib.process.schedules import make_schedule
from course_lib.samplers.ddim import ddim_invert, ddim_sample, timesteps
from course_lib.samplers.ddpm import ddpm_sample, ddpm_step
from course_lib.samplers.editing import inpaint, sdedit

from test_diffusion import float64_diffusers
from test_fast_samplers import PREDICTIONS, SHAPE, T, TOL, fake_model, float64_scheduler, x_T

diffusers = pytest.importorskip("diffusers")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

N = 10
# (our keyword arguments, diffusers' DDIMScheduler config)
CLIPPING = [
    (dict(clip_sample=1.0), dict(clip_sample=True, clip_sample_range=1.0)),
    (dict(clip_sample=0.5), dict(clip_sample=True, clip_sample_range=0.5)),
    (dict(dynamic_threshold=(0.9, 1.5)),
     dict(thresholding=True, dynamic_thresholding_ratio=0.9, sample_max_value=1.5)),
    (dict(dynamic_threshold=(0.995, 1.0)),
     dict(thresholding=True, dynamic_thresholding_ratio=0.995, sample_max_value=1.0)),
]


def _ddim(prediction, spacing="leading", alpha_to_one=True, **config):
    config = {"clip_sample": False, "thresholding": False, **config}
    sched, ref = float64_scheduler(diffusers.DDIMScheduler, "linear", "linear", prediction,
                                   set_alpha_to_one=alpha_to_one, steps_offset=0, timestep_spacing=spacing,
                                   rescale_betas_zero_snr=False, **config)
    # diffusers keeps the data end's alpha_bar in float32; ours is float64
    sched.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64) if alpha_to_one else ref.alpha_bar[0]
    sched.set_timesteps(N)
    return sched, ref


@pytest.mark.parametrize("kind,prediction", PREDICTIONS)
@pytest.mark.parametrize("ours_kw,theirs_kw", CLIPPING)
@pytest.mark.parametrize("clipped_eps", [False, True])
@pytest.mark.parametrize("alpha_to_one", [True, False])
def test_ddim_clipping_matches_diffusers_step_for_step(kind, prediction, ours_kw, theirs_kw, clipped_eps,
                                                       alpha_to_one):
    sched, ref = _ddim(prediction, alpha_to_one=alpha_to_one, **theirs_kw)
    steps = timesteps(T, N)
    model, x = fake_model(), 3 * x_T()  # large enough that x0_hat leaves [-1, 1]
    _, traj = ddim_sample(model, ref, x, steps, eta=0.5, prediction_type=kind, keep_trajectory=True,
                          generator=torch.Generator().manual_seed(5), use_clipped_model_output=clipped_eps,
                          set_alpha_to_one=alpha_to_one, **ours_kw)
    g = torch.Generator().manual_seed(5)
    for i, t in enumerate(sched.timesteps):
        noise = torch.randn(SHAPE, generator=g, dtype=torch.float64)
        x = sched.step(model(x, torch.full((SHAPE[0],), int(t))), int(t), x, eta=0.5, variance_noise=noise,
                       use_clipped_model_output=clipped_eps).prev_sample
        torch.testing.assert_close(traj[i + 1], x, **TOL)
    unclipped = ddim_sample(model, ref, 3 * x_T(), steps, eta=0.5, prediction_type=kind,
                            generator=torch.Generator().manual_seed(5), set_alpha_to_one=alpha_to_one)
    assert not torch.allclose(traj[-1], unclipped, rtol=0, atol=1e-3)  # the clipping was exercised


@pytest.mark.parametrize("kind,prediction", PREDICTIONS)
def test_ddim_without_alpha_to_one_matches_diffusers_and_differs_from_the_default(kind, prediction):
    sched, ref = _ddim(prediction, alpha_to_one=False)
    model, x = fake_model(), x_T()
    ours = ddim_sample(model, ref, x, timesteps(T, N), prediction_type=kind, set_alpha_to_one=False)
    for t in sched.timesteps:
        x = sched.step(model(x, torch.full((SHAPE[0],), int(t))), int(t), x).prev_sample
    torch.testing.assert_close(ours, x, **TOL)
    default = ddim_sample(model, ref, x_T(), timesteps(T, N), prediction_type=kind)
    assert not torch.allclose(ours, default, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind,prediction", PREDICTIONS)
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_ddim_inversion_without_alpha_to_one_matches_diffusers(kind, prediction, spacing):
    sched, ref = float64_scheduler(diffusers.DDIMInverseScheduler, "linear", "linear", prediction,
                                   clip_sample=False, set_alpha_to_one=False, steps_offset=0,
                                   timestep_spacing=spacing)
    sched.initial_alpha_cumprod = ref.alpha_bar[0]
    sched.set_timesteps(N)
    model, x = fake_model(), x_T()
    _, traj = ddim_invert(model, ref, x, timesteps(T, N, spacing), prediction_type=kind, keep_trajectory=True,
                          set_alpha_to_one=False)
    for i, t in enumerate(sched.timesteps):
        x = sched.step(model(x, torch.full((SHAPE[0],), int(t))), int(t), x).prev_sample
        torch.testing.assert_close(traj[i + 1], x, **TOL)


def test_dynamic_thresholding_by_hand():
    """Imagen Sec. 2.3 on two examples: one inside [-1, 1] (s clamps to 1: unchanged), one whose 0.5
    quantile of |x| is 2 (clamped to [-2, 2], divided by 2); max_value caps s."""
    x = torch.tensor([[0.5, -0.25, 0.75, -1.0], [1.0, -2.0, 3.0, -4.0]], dtype=torch.float64)
    out = clip_x0_hat(x, dynamic_threshold=(0.5, 10.0))
    s = torch.quantile(x[1].abs(), 0.5)  # 2.5 with linear interpolation
    torch.testing.assert_close(out[0], x[0], rtol=0, atol=0)
    torch.testing.assert_close(out[1], x[1].clamp(-s, s) / s, rtol=0, atol=0)
    capped = clip_x0_hat(x, dynamic_threshold=(0.5, 2.0))
    torch.testing.assert_close(capped[1], x[1].clamp(-2, 2) / 2, rtol=0, atol=0)
    assert clip_x0_hat(x.to(torch.bfloat16), dynamic_threshold=(0.9, 1.5)).dtype == torch.bfloat16
    torch.testing.assert_close(clip_x0_hat(x, clip_sample=1.5), x.clamp(-1.5, 1.5), rtol=0, atol=0)
    assert clip_x0_hat(x) is x  # nothing asked, nothing changed


@pytest.mark.parametrize("bad, match", [(dict(dynamic_threshold=(0.0, 1.5)), "ratio"),
                                        (dict(dynamic_threshold=(0.9, 0.5)), "max_value"),
                                        (dict(clip_sample=0.0), "positive")])
def test_clipping_options_reject_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        clip_x0_hat(torch.zeros(2, 3), **bad)


@pytest.mark.parametrize("kind,prediction", [("eps", "epsilon"), ("x0", "sample"), ("v", "v_prediction")])
@pytest.mark.parametrize("variance,variance_type", [("small", "fixed_small"), ("large", "fixed_large")])
@pytest.mark.parametrize("t", [999, 500, 1, 0])
def test_ddpm_step_prediction_types_match_diffusers(kind, prediction, variance, variance_type, t):
    sched, ref = float64_diffusers("linear", "linear")
    sched.register_to_config(variance_type=variance_type, prediction_type=prediction)
    sched.variance_type = variance_type
    x_t = 1.5 * torch.randn(6, 3, 4, 4, dtype=torch.float64)
    out = torch.randn_like(x_t)
    expected = sched.step(out, t, x_t, generator=torch.Generator().manual_seed(7)).prev_sample
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    actual = ddpm_step(ref, out, t, x_t, noise, variance=variance, prediction_type=kind)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def _as(kind, eps_model, schedule):
    """The eps-model's output re-expressed as an x0 or v prediction: the same model in another target."""
    def model(x, t):
        eps, a = eps_model(x, t), schedule.alpha_bar[t].view(-1, *[1] * (x.ndim - 1)).to(x)
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        return {"eps": eps, "x0": x0, "v": velocity(x0, eps, a)}[kind]
    return model


@pytest.mark.parametrize("kind", ["x0", "v"])
def test_ddpm_sdedit_inpaint_read_x0_and_v_models_as_the_eps_model(kind):
    """A model that predicts x0 or v, converted from an eps-model, samples like that eps-model."""
    sch, eps_model = make_schedule("linear", T), fake_model()
    other = _as(kind, eps_model, sch)
    x, x0 = x_T(1), 0.5 * x_T(2)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    small = make_schedule("linear", 50)
    small_model = lambda x, t: eps_model(x, t * 20)  # noqa: E731
    torch.testing.assert_close(ddpm_sample(_as(kind, small_model, small), small, x, generator=gen(),
                                           prediction_type=kind),
                               ddpm_sample(small_model, small, x, generator=gen()), rtol=1e-9, atol=1e-9)
    ts = timesteps(T, N)
    torch.testing.assert_close(sdedit(other, sch, x0, ts, 0.6, x, eta=0.3, generator=gen(), prediction_type=kind),
                               sdedit(eps_model, sch, x0, ts, 0.6, x, eta=0.3, generator=gen()),
                               rtol=1e-9, atol=1e-9)
    known = torch.zeros(1, 1, 4, 4)
    known[..., :2] = 1
    torch.testing.assert_close(inpaint(other, sch, x0, known, x, ts, generator=gen(), prediction_type=kind),
                               inpaint(eps_model, sch, x0, known, x, ts, generator=gen()), rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="prediction_type"):
        sdedit(other, sch, x0, ts, 0.6, x, prediction_type="epsilon")
    with pytest.raises(ValueError, match="prediction_type"):
        ddpm_sample(other, small, x, prediction_type="sample")
