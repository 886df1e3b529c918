"""EDM's samplers on Karras sigmas (course_lib.samplers.edm with process.edm.VPDenoiser) against diffusers'
schedulers under ``use_karras_sigmas=True``, step for step in float64 (issue 22): Euler and Heun
(EulerDiscreteScheduler, HeunDiscreteScheduler: the model at fractional steps, interpolated in log sigma) and
DPM-Solver++(2M) (DPMSolverMultistepScheduler: the model at the rounded step). diffusers builds its sigmas and
timesteps in float32 (here float64 where its modules ask for float32); each is checked against ours to float32
precision, then replaced by our float64 ones."""

import pytest
import torch

from course_lib.process.edm import VPDenoiser, karras_sigmas
from course_lib.process.schedules import make_schedule
from course_lib.samplers.edm import edm_dpmpp_2m_sample, edm_euler_sample, edm_heun_sample

diffusers = pytest.importorskip("diffusers")
from diffusers.schedulers import (scheduling_dpmsolver_multistep, scheduling_euler_discrete,  # noqa: E402
                                  scheduling_heun_discrete)

from test_edm import TorchWithFloat64ForFloat32  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(autouse=True)
def no_float32_upcast(monkeypatch):
    """diffusers' steps cast the sample to float32; here float32 means float64, so both sides stay float64."""
    for module in (scheduling_euler_discrete, scheduling_heun_discrete, scheduling_dpmsolver_multistep):
        monkeypatch.setattr(module, "torch", TorchWithFloat64ForFloat32())

T = 1000
SHAPE = (3, 3, 4, 4)
TOL = dict(rtol=1e-10, atol=1e-11)
PREDICTIONS = [("eps", "epsilon"), ("v", "v_prediction")]


def smooth_model(seed=0, dim=48):
    """Pseudo-random outputs that vary smoothly with a fractional step t: tanh of a fixed random map of x,
    plus a fixed random direction scaled by sin(t / 150)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(dim, dim, generator=g, dtype=torch.float64) / dim ** 0.5
    u = torch.randn(dim, generator=g, dtype=torch.float64)

    def model(x, t):
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1, 1)
        return (torch.tanh(x.flatten(1) @ W) + 0.5 * torch.sin(t / 150) * u).reshape(x.shape)
    return model


def _scheduler(cls, name, theirs, prediction, n, **config):
    ref = make_schedule(name, T)
    sched = cls(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule=theirs,
                prediction_type=prediction, use_karras_sigmas=True, timestep_spacing="linspace", **config)
    torch.testing.assert_close(sched.alphas_cumprod.double(), ref.alpha_bar, rtol=1e-4, atol=1e-6)
    sched.betas, sched.alphas, sched.alphas_cumprod = ref.betas, ref.alphas, ref.alpha_bar
    sched.set_timesteps(n)
    return sched, ref


def _ours(ref, n, kind, quantize):
    denoiser = VPDenoiser(smooth_model(), ref, quantize=quantize, prediction_type=kind)
    sigmas = karras_sigmas(n, denoiser.sigma_min, denoiser.sigma_max)  # the model's own range, as diffusers
    return denoiser, sigmas, denoiser.sigma_to_t(sigmas[:-1]).double()


def _z():
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("name,theirs", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
@pytest.mark.parametrize("kind,prediction", PREDICTIONS)
@pytest.mark.parametrize("n", [2, 5, 10])
def test_euler_on_karras_sigmas_matches_diffusers(name, theirs, kind, prediction, n):
    sched, ref = _scheduler(diffusers.EulerDiscreteScheduler, name, theirs, prediction, n,
                            interpolation_type="linear", timestep_type="discrete", final_sigmas_type="zero",
                            steps_offset=0)
    denoiser, sigmas, ts = _ours(ref, n, kind, quantize=False)
    torch.testing.assert_close(sched.sigmas.double(), sigmas, rtol=1e-5, atol=0)
    torch.testing.assert_close(sched.timesteps.double(), ts, rtol=1e-5, atol=1e-3)
    sched.sigmas, sched.timesteps = sigmas, ts
    x = sigmas[0] * _z()
    _, traj = edm_euler_sample(denoiser, x, sigmas, keep_trajectory=True)
    model = smooth_model()
    for i, t in enumerate(sched.timesteps):
        x = sched.step(model(sched.scale_model_input(x, t), t.expand(SHAPE[0])), t, x).prev_sample
        torch.testing.assert_close(traj[i + 1], x, **TOL)


@pytest.mark.parametrize("kind,prediction", PREDICTIONS)
@pytest.mark.parametrize("n", [2, 5, 10])
def test_heun_on_karras_sigmas_matches_diffusers(kind, prediction, n):
    sched, ref = _scheduler(diffusers.HeunDiscreteScheduler, "linear", "linear", prediction, n, clip_sample=False,
                            steps_offset=0)
    denoiser, sigmas, ts = _ours(ref, n, kind, quantize=False)
    doubled = torch.cat([sigmas[:1], sigmas[1:-1].repeat_interleave(2), sigmas[-1:]])  # diffusers' layout
    doubled_t = torch.cat([ts[:1], ts[1:].repeat_interleave(2)])
    torch.testing.assert_close(sched.sigmas.double(), doubled, rtol=1e-5, atol=0)
    torch.testing.assert_close(sched.timesteps.double(), doubled_t, rtol=1e-5, atol=1e-3)
    sched.sigmas, sched.timesteps = doubled, doubled_t
    x = sigmas[0] * _z()
    _, traj = edm_heun_sample(denoiser, x, sigmas, keep_trajectory=True)
    model, states = smooth_model(), []
    for t in sched.timesteps:  # 2N - 1 calls: Euler predictor, Heun corrector, ..., final Euler
        x = sched.step(model(sched.scale_model_input(x, t), t.expand(SHAPE[0])), t, x).prev_sample
        states.append(x)
    for i, x in enumerate(states[1::2] + states[-1:]):  # the corrected states, then the last
        torch.testing.assert_close(traj[i + 1], x, **TOL)


@pytest.mark.parametrize("kind,prediction", PREDICTIONS)
@pytest.mark.parametrize("n", [2, 5, 10, 20])
def test_dpmpp_2m_on_karras_sigmas_matches_diffusers(kind, prediction, n):
    sched, ref = _scheduler(diffusers.DPMSolverMultistepScheduler, "linear", "linear", prediction, n,
                            solver_order=2, algorithm_type="dpmsolver++", solver_type="midpoint",
                            lower_order_final=True, euler_at_final=False, final_sigmas_type="zero",
                            lambda_min_clipped=-float("inf"), steps_offset=0, thresholding=False)
    denoiser, sigmas, _ = _ours(ref, n, kind, quantize=True)
    ts = denoiser.sigma_to_t(sigmas[:-1])  # the nearest step: diffusers rounds the interpolated one
    torch.testing.assert_close(sched.sigmas.double(), sigmas, rtol=1e-5, atol=0)
    assert torch.equal(sched.timesteps, ts)
    sched.sigmas = sigmas
    z = _z()
    _, traj = edm_dpmpp_2m_sample(denoiser, sigmas[0] * z, sigmas, keep_trajectory=True)
    x, model = sigmas[0] * z / (1 + sigmas[0] ** 2).sqrt(), smooth_model()  # diffusers works on x_t (VP)
    for i, t in enumerate(sched.timesteps):
        x = sched.step(model(x, t.expand(SHAPE[0])), t, x).prev_sample
        torch.testing.assert_close(traj[i + 1] / (1 + sigmas[i + 1] ** 2).sqrt(), x, **TOL)
