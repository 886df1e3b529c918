"""EDM (Karras et al. 2022): a VP model read as a denoiser, Karras sigmas, the samplers on sigma, the
preconditioning and the loss. Parity with k-diffusion in float64, closed forms, invariants, and agreement
with the course's own samplers on integer steps (samplers/ode.py)."""

import importlib
import importlib.util
import math
import sys
import types

import pytest
import torch

from course_lib.process.diffusion import velocity, x0_to_eps
from course_lib.process.edm import (EDMDenoiser, EDMLoss, VPDenoiser, edm_scalings, gaussian_denoiser,
                                    karras_sigmas)
from course_lib.process.schedules import (NoiseSchedule, make_schedule, rescale_zero_terminal_snr,
                                          scaled_linear_betas)
from course_lib.samplers.ddim import timesteps
from course_lib.samplers.edm import (ancestral_step, edm_dpmpp_2m_sample, edm_euler_ancestral_sample,
                                     edm_euler_sample, edm_heun_sample)
from course_lib.samplers.ode import dpm_solver_timesteps, dpmpp_2m_sample, euler_sample, heun_sample

F64 = torch.float64
T, SHAPE = 1000, (4, 3, 4, 4)
TOL = dict(rtol=1e-10, atol=1e-10)  # float64 on both sides: the loops agree to rounding


@pytest.fixture(scope="module")
def kd():
    """k-diffusion's sampling, external and layers modules, the reference. tests/setup_env.sh installs
    k-diffusion without its declared dependencies; its package __init__ imports every module (augmentation
    needs scikit-image, config jsonmerge, evaluation clean-fid and CLIP), so the package is registered
    bare and only these three are imported, with what they import (torchsde, einops, dctorch, scipy,
    torchdiffeq). A missing reference fails the tests, it does not skip them."""
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None:
        pytest.fail("k-diffusion is not installed; run tests/setup_env.sh (pip install --no-deps k-diffusion)")
    before = set(sys.modules)
    if "k_diffusion" not in sys.modules:
        package = types.ModuleType("k_diffusion")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["k_diffusion"] = package
    yield types.SimpleNamespace(**{name: importlib.import_module(f"k_diffusion.{name}")
                                   for name in ("sampling", "external", "layers")})
    for name in set(sys.modules) - before:
        if name.split(".")[0] == "k_diffusion":
            del sys.modules[name]


def fake_eps_model(seed=0, dim=48):
    """Deterministic outputs as a smooth function of (x_t, t), t long or fractional: tanh of a fixed
    random linear map of x_t, plus sin of a fixed random frequency times t."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(dim, dim, generator=g, dtype=F64) / dim ** 0.5
    freq, phase = 0.01 * torch.randn(dim, generator=g, dtype=F64), torch.randn(dim, generator=g, dtype=F64)

    def model(x, t):
        assert t.shape == (x.shape[0],)
        emb = 0.5 * torch.sin(t.to(x)[:, None] * freq.to(x) + phase.to(x))  # (B, dim)
        return (torch.tanh(x.flatten(1) @ W.to(x)) + emb).reshape(x.shape)
    return model


def noise(seed=1, shape=SHAPE):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def gaussian_eps_model(sch, m, s, kind="eps"):
    """The exact prediction at integer steps for data x0 ~ N(m, s^2 I), read as eps, x0 or v."""
    def model(x, t):
        a = sch.alpha_bar[t].to(x).reshape(-1, *([1] * (x.ndim - 1)))
        x0 = m + a.sqrt() * s ** 2 * (x - a.sqrt() * m) / (a * s ** 2 + 1 - a)
        eps = x0_to_eps(x0, x, a)
        return {"eps": eps, "x0": x0, "v": velocity(x0, eps, a)}[kind]
    return model


# ---- Karras sigmas and the VP denoiser ----------------------------------------------------------

@pytest.mark.parametrize("n, sigma_min, sigma_max, rho", [(18, 0.002, 80.0, 7.0), (1, 0.002, 80.0, 7.0),
                                                         (10, 0.0100005, 157.4, 7.0), (50, 0.03, 14.6, 3.0)])
def test_karras_sigmas_match_k_diffusion(kd, n, sigma_min, sigma_max, rho):
    ours = karras_sigmas(n, sigma_min, sigma_max, rho)
    default = torch.get_default_dtype()
    torch.set_default_dtype(F64)  # k-diffusion's ramp is torch.linspace in the default dtype
    try:
        theirs = kd.sampling.get_sigmas_karras(n, sigma_min, sigma_max, rho)
    finally:
        torch.set_default_dtype(default)
    assert ours.dtype == F64 and ours.shape == (n + 1,) and ours[-1] == 0
    torch.testing.assert_close(ours, theirs, rtol=1e-14, atol=0)
    assert ours[0].item() == pytest.approx(sigma_max, rel=1e-13)
    if n > 1:
        assert ours[-2].item() == pytest.approx(sigma_min, rel=1e-13)  # EDM Eq. 5 hits both ends
        assert bool((ours[1:] < ours[:-1]).all())


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("quantize", [True, False])
def test_vp_denoiser_matches_k_diffusion(kd, name, quantize):
    sch, model = make_schedule(name, T), fake_eps_model()
    ours = VPDenoiser(model, sch, quantize=quantize)
    theirs = kd.external.DiscreteEpsDDPMDenoiser(model, sch.alpha_bar, quantize=quantize)
    g = torch.Generator().manual_seed(2)
    log_s = torch.empty(64, dtype=F64).uniform_(math.log(ours.sigma_min) - 1, math.log(ours.sigma_max) + 1,
                                                generator=g)  # in range and out of it at both ends
    sigmas = torch.cat([log_s.exp(), ours.sigmas[[0, 1, 500, T - 2, T - 1]]])
    for chunk in sigmas.split(SHAPE[0]):
        x = chunk.reshape(-1, 1, 1, 1) * noise(len(chunk), (len(chunk), *SHAPE[1:]))
        assert torch.equal(ours.sigma_to_t(chunk), theirs.sigma_to_t(chunk))
        torch.testing.assert_close(ours(x, chunk), theirs(x, chunk), rtol=1e-12, atol=1e-12)
    assert ours.sigma_to_t(ours.sigmas[[0, 7, T - 1]]).tolist() == [0, 7, T - 1]  # a step's own sigma maps back
    assert ours.sigma_to_t(ours.sigmas[:1]).dtype == (torch.long if quantize else F64)


@pytest.mark.parametrize("kind", ["eps", "x0", "v"])
def test_vp_denoiser_of_the_exact_model_is_the_ideal_denoiser(kind):
    """At a step's own sigma, the exact VP prediction for N(m, s^2 I) data, of any kind, read through
    x = x_t / sqrt(alpha_bar), is E[x0 | x] = m + s^2 / (s^2 + sigma^2) (x - m)."""
    sch, m, s = make_schedule("cosine", T), 0.5, 0.3
    D = VPDenoiser(gaussian_eps_model(sch, m, s, kind), sch, prediction_type=kind)
    sigma = D.sigmas[[3, 100, 600, 990]]
    x = m + (s ** 2 + sigma ** 2).sqrt().reshape(-1, 1, 1, 1) * noise()
    torch.testing.assert_close(D(x, sigma), gaussian_denoiser(m, s)(x, sigma), rtol=1e-9, atol=1e-9)


# ---- samplers: parity with k-diffusion ----------------------------------------------------------

CHURN = dict(S_churn=40.0, S_tmin=0.05, S_tmax=50.0, S_noise=1.003)  # EDM's ImageNet-64 settings (Table 5)
SAMPLERS = [  # (ours, k-diffusion's name, keyword arguments)
    (edm_heun_sample, "sample_heun", {}),
    (edm_heun_sample, "sample_heun", CHURN),
    (edm_heun_sample, "sample_heun", dict(S_churn=5.0)),
    (edm_euler_sample, "sample_euler", {}),
    (edm_euler_sample, "sample_euler", CHURN),
    (edm_euler_ancestral_sample, "sample_euler_ancestral", {}),
    (edm_euler_ancestral_sample, "sample_euler_ancestral", dict(eta=0.5, s_noise=1.01)),
    (edm_dpmpp_2m_sample, "sample_dpmpp_2m", {}),
]


def _ours_kwargs(kwargs):
    return {("S_noise" if k == "s_noise" else k): v for k, v in kwargs.items()}


def _theirs_kwargs(kwargs):
    return {k.lower(): v for k, v in kwargs.items() if k != "generator"}


@pytest.mark.parametrize("ours, theirs, kwargs", SAMPLERS)
@pytest.mark.parametrize("name, quantize", [("linear", True), ("cosine", False)])
def test_samplers_match_k_diffusion(kd, ours, theirs, kwargs, name, quantize):
    """The whole loop on a VP model through each library's denoiser, on each library's Karras sigmas
    (10 steps over the model's range); the noise comes from the same seed: our generator, their
    global RNG (k-diffusion draws with randn_like)."""
    sch, model = make_schedule(name, T), fake_eps_model()
    D_ours = VPDenoiser(model, sch, quantize=quantize)
    D_theirs = kd.external.DiscreteEpsDDPMDenoiser(model, sch.alpha_bar, quantize=quantize)
    sigmas = karras_sigmas(10, max(D_ours.sigma_min, 0.002), min(D_ours.sigma_max, 80.0))
    x_T = sigmas[0] * noise()
    torch.manual_seed(5)
    ref = getattr(kd.sampling, theirs)(D_theirs, x_T.clone(), sigmas, disable=True, **_theirs_kwargs(kwargs))
    assert not torch.allclose(ref, x_T)
    if theirs == "sample_euler_ancestral" or kwargs.get("S_churn", 0) > 0:
        kwargs = dict(kwargs, generator=torch.Generator().manual_seed(5))
    out = ours(D_ours, x_T, sigmas, **_ours_kwargs(kwargs))
    assert out.dtype == F64 and out.shape == SHAPE
    torch.testing.assert_close(out, ref, **TOL)


def test_noise_streams_matter():
    """The stochastic samplers use their generator: other seeds, other results; the same seed, the same."""
    sch = make_schedule("linear", T)
    D, sigmas = VPDenoiser(fake_eps_model(), sch), karras_sigmas(8, 0.02, 80.0)
    for sampler, kw in [(edm_heun_sample, CHURN), (edm_euler_sample, CHURN), (edm_euler_ancestral_sample, {})]:
        a, b, c = (sampler(D, 80 * noise(), sigmas, generator=torch.Generator().manual_seed(s), **kw)
                   for s in (0, 0, 1))
        assert torch.equal(a, b) and not torch.allclose(a, c)
    assert torch.equal(edm_heun_sample(D, 80 * noise(), sigmas), edm_heun_sample(D, 80 * noise(), sigmas))


# ---- samplers: agreement with the course's samplers on integer steps ------------------------------

@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("kind", ["eps", "v"])
def test_sigma_samplers_equal_the_step_samplers_on_the_schedules_own_sigmas(name, kind):
    """On the sigmas of the listed steps (then 0), with the nearest-step denoiser, the sigma samplers are
    samplers/ode.py's Euler, Heun and DPM-Solver++(2M): x = x_t sqrt(sigma_0^2 + 1) at the start, and both
    end on the data (x = x_t at sigma = 0)."""
    sch, model = make_schedule(name, T), fake_eps_model()
    D = VPDenoiser(model, sch, prediction_type=kind)
    x_T = noise()
    for step_sampler, sigma_sampler, steps in [(euler_sample, edm_euler_sample, timesteps(T, 10, "trailing")),
                                               (heun_sample, edm_heun_sample, timesteps(T, 10, "trailing")),
                                               (dpmpp_2m_sample, edm_dpmpp_2m_sample, dpm_solver_timesteps(T, 10))]:
        sigmas = torch.cat([D.sigmas[steps], torch.zeros(1, dtype=F64)])
        ours = sigma_sampler(D, x_T * (1 + sigmas[0] ** 2) ** 0.5, sigmas)
        torch.testing.assert_close(ours, step_sampler(model, sch, x_T, steps, prediction_type=kind), **TOL,
                                   msg=lambda m: f"{sigma_sampler.__name__}: {m}")


M, S = 0.5, 0.5  # the data N(M, S^2 I) of the ideal-denoiser tests


def _gaussian_start():
    return 80.0 * torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0), dtype=F64)


@pytest.mark.parametrize("sampler, n, tol", [
    (edm_heun_sample, 50, 0.01), (edm_dpmpp_2m_sample, 50, 0.01),  # second order: 0.6% at 50 steps (measured)
    (edm_heun_sample, 100, 0.002), (edm_dpmpp_2m_sample, 100, 0.002),  # and four times less at 100
    (edm_euler_sample, 200, 0.02),  # first order: 1.5% at 200 steps
])
def test_ideal_denoiser_on_gaussian_data_follows_the_exact_ode(sampler, n, tol):
    """For data N(M, S^2 I) the ODE's solution from sigma_max = 80 is x0 = M + S / sqrt(S^2 + 80^2) (x_T - M);
    each solver's RMS error from it, over 20,000 x 2 samples, is the solver's own error (relative to S)."""
    x_T = _gaussian_start()
    exact = M + S / (S ** 2 + 80.0 ** 2) ** 0.5 * (x_T - M)
    out = sampler(gaussian_denoiser(M, S), x_T, karras_sigmas(n))
    assert (out - exact).pow(2).mean().sqrt().item() < tol * S


@pytest.mark.parametrize("sampler, n, tol, kw", [
    (edm_heun_sample, 100, 0.03, CHURN),  # about +2% at 100 steps (measured)
    (edm_euler_ancestral_sample, 200, 0.05, {}),  # about -3% at 200 steps
])
def test_stochastic_samplers_on_gaussian_data_recover_mean_and_std(sampler, n, tol, kw):
    """Data N(0.5, 0.5^2 I), 20,000 x 2 samples: the sampling error on the mean and the std is about 0.5%
    of S; the rest allowed is the sampler's error at n steps."""
    out = sampler(gaussian_denoiser(M, S), _gaussian_start(), karras_sigmas(n),
                  generator=torch.Generator().manual_seed(1), **kw)
    assert abs(out.mean().item() - M) < 0.03 * S
    assert abs(out.std().item() - S) < tol * S


def test_denoiser_calls_and_trajectories():
    sigmas, seen = karras_sigmas(5), []

    def D(x, sigma):
        assert sigma.shape == (x.shape[0],) and sigma.dtype == x.dtype
        seen.append(float(sigma[0]))
        return torch.zeros_like(x)
    for sampler, calls in [(edm_heun_sample, 9), (edm_euler_sample, 5), (edm_euler_ancestral_sample, 5),
                           (edm_dpmpp_2m_sample, 5)]:
        seen.clear()
        for dtype in (torch.float32, F64):
            x, traj = sampler(D, torch.randn(3, 2, dtype=dtype), sigmas, keep_trajectory=True)
            assert x.dtype == dtype and traj.shape == (6, 3, 2) and torch.equal(traj[-1], x)
        assert len(seen) == 2 * calls and seen[0] == pytest.approx(80.0), sampler.__name__


def test_ancestral_step_splits_sigma_to():
    for sigma_from, sigma_to, eta in [(10.0, 5.0, 1.0), (1.0, 0.3, 0.5), (2.0, 0.0, 1.0), (3.0, 1.0, 0.0)]:
        down, up = ancestral_step(sigma_from, sigma_to, eta)
        assert down ** 2 + up ** 2 == pytest.approx(sigma_to ** 2) and 0 <= down <= sigma_to
    assert ancestral_step(10.0, 5.0)[1] == pytest.approx((25 * 75 / 100) ** 0.5)  # the DDPM posterior std


def test_bad_inputs_raise_clear_errors():
    D, x = gaussian_denoiser(0.0, 1.0), torch.randn(2, 2)
    for bad in ([1.0, 2.0, 0.0], [5.0], [[5.0, 0.0]], [1.0, -0.5], [float("inf"), 0.0]):
        with pytest.raises(ValueError, match="sigmas must"):
            edm_heun_sample(D, x, bad)
    with pytest.raises(ValueError, match="S_churn"):
        edm_heun_sample(D, x, [1.0, 0.0], S_churn=-1.0)
    with pytest.raises(ValueError, match="eta"):
        edm_euler_ancestral_sample(D, x, [1.0, 0.0], eta=-1.0)
    with pytest.raises(ValueError, match="num_steps"):
        karras_sigmas(0)
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        karras_sigmas(10, 80.0, 0.002)
    with pytest.raises(ValueError, match="prediction_type"):
        VPDenoiser(lambda x, t: x, make_schedule("linear", 10), prediction_type="epsilon")


# ---- EDM's preconditioning and loss ------------------------------------------------------------

def fake_net(seed=3, dim=48):
    """A raw network F(x_in, c_noise), c_noise (B,)."""
    g = torch.Generator().manual_seed(seed)
    W, w = torch.randn(dim, dim, generator=g, dtype=F64) / dim ** 0.5, torch.randn(dim, generator=g, dtype=F64)
    return lambda x, c_noise: (torch.tanh(x.flatten(1) @ W) + torch.cos(c_noise[:, None] * w)).reshape(x.shape)


def test_scalings_are_edm_table_1():
    sigma, sd = torch.tensor([0.002, 0.5, 1.0, 80.0], dtype=F64), 0.5
    c_skip, c_out, c_in, c_noise = edm_scalings(sigma, sd)
    torch.testing.assert_close(c_skip + (c_out / sd) ** 2, torch.ones_like(sigma))  # c_skip^2 sd^2 + c_out^2 ... = sd^2
    torch.testing.assert_close(c_in ** 2 * (sigma ** 2 + sd ** 2), torch.ones_like(sigma))  # unit-variance input
    torch.testing.assert_close(c_noise, sigma.log() / 4)
    torch.testing.assert_close(EDMLoss().weight(sigma) * c_out ** 2, torch.ones_like(sigma))  # lambda c_out^2 = 1


def test_preconditioning_and_loss_match_k_diffusion(kd):
    """k-diffusion's Denoiser (weighting "karras") is EDM's D and loss, its inner model taking sigma
    itself: it is given c_noise = ln(sigma) / 4. Its loss, lambda c_out^2 ||F - target||^2 with
    lambda c_out^2 = 1, equals ours, lambda ||D - x0||^2, per example; fixed sigma and noise."""
    net = fake_net()
    ref = kd.layers.Denoiser(lambda x, sigma: net(x, sigma.log() / 4), sigma_data=0.5, weighting="karras")
    ours = EDMDenoiser(net, sigma_data=0.5)
    sigma = torch.tensor([0.002, 0.3, 2.0, 80.0], dtype=F64)
    for a, b in zip(edm_scalings(sigma), ref.get_scalings(sigma)):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=0)
    x = noise()
    torch.testing.assert_close(ours(x, sigma), ref(x, sigma), rtol=1e-12, atol=1e-12)

    x0 = 0.5 * noise(7, (16, 3, 4, 4))
    g = torch.Generator().manual_seed(11)
    sigma = (torch.randn(16, generator=g, dtype=F64) * 1.2 - 1.2).exp()  # EDMLoss's draws, in its order
    eps = torch.randn(x0.shape, generator=g, dtype=F64)
    theirs = ref.loss(x0, eps, sigma)  # (B,)
    loss = EDMLoss(P_mean=-1.2, P_std=1.2, sigma_data=0.5)
    torch.testing.assert_close(loss(ours, x0, generator=torch.Generator().manual_seed(11)), theirs.mean(),
                               rtol=1e-12, atol=0)


def test_loss_is_minimised_by_the_ideal_denoiser_on_gaussian_data():
    """For x0 ~ N(0, sigma_data^2 I), the ideal D's error has variance sigma^2 sigma_data^2 /
    (sigma^2 + sigma_data^2) = 1 / lambda per dimension: the loss is 1 in expectation at every sigma.
    Scaled or shifted denoisers, on the same draws, do worse."""
    sd, loss = 0.5, EDMLoss()
    x0 = sd * torch.randn(50_000, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    ideal = gaussian_denoiser(0.0, sd)

    def at(D):
        return loss(D, x0, generator=torch.Generator().manual_seed(1)).item()
    best = at(ideal)
    assert best == pytest.approx(1.0, abs=0.02)  # the mean of 200,000 chi-square(1) draws: std 0.003
    for worse in (lambda x, s: 0.95 * ideal(x, s), lambda x, s: 1.05 * ideal(x, s), lambda x, s: ideal(x, s) + 0.05,
                  gaussian_denoiser(0.0, 0.45), gaussian_denoiser(0.0, 0.55)):
        assert at(worse) > best


# ---- schedules of later models: scaled_linear, explicit beta ranges, zero terminal SNR ---------------

class TorchWithFloat64ForFloat32:
    """Stands in for `torch` inside diffusers' scheduling_ddpm: torch itself, except that float32 is
    float64, so that DDPMScheduler builds its betas in float64 (it asks for float32)."""
    float32 = torch.float64

    def __getattr__(self, name):
        return getattr(torch, name)


@pytest.mark.parametrize("name, beta_start, beta_end", [("linear", 1e-4, 0.02), ("linear", 0.0015, 0.0195),
                                                        ("scaled_linear", 0.00085, 0.012), ("scaled_linear", 1e-4, 0.02),
                                                        ("cosine", None, None)])
@pytest.mark.parametrize("zero_snr", [False, True])
@pytest.mark.parametrize("num_steps", [10, 1000])
def test_schedules_match_diffusers_ddpm_scheduler_in_float64(monkeypatch, name, beta_start, beta_end, zero_snr,
                                                             num_steps):
    diffusers = pytest.importorskip("diffusers")
    from diffusers.schedulers import scheduling_ddpm
    monkeypatch.setattr(scheduling_ddpm, "torch", TorchWithFloat64ForFloat32())
    theirs = diffusers.DDPMScheduler(num_train_timesteps=num_steps, beta_schedule={"cosine": "squaredcos_cap_v2"}.get(
        name, name), beta_start=beta_start or 1e-4, beta_end=beta_end or 0.02, rescale_betas_zero_snr=zero_snr)
    ours = make_schedule(name, num_steps, beta_start, beta_end, zero_terminal_snr=zero_snr)
    assert theirs.betas.dtype == F64
    torch.testing.assert_close(ours.betas, theirs.betas, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(ours.alpha_bar, theirs.alphas_cumprod, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["linear", "scaled_linear", "cosine"])
def test_zero_terminal_snr_keeps_the_first_step_and_ends_at_zero(name):
    """Lin et al. 2024, Alg. 1: sqrt(alpha_bar) is shifted and scaled, an affine map that keeps its
    first value and sends its last to 0; the schedule stays strictly decreasing."""
    before, after = make_schedule(name, 1000), make_schedule(name, 1000, zero_terminal_snr=True)
    assert after.betas[-1].item() == 1.0 and after.alpha_bar[-1].item() == 0.0
    assert after.alpha_bar[0].item() == pytest.approx(before.alpha_bar[0].item(), rel=1e-12)
    a, b = before.alpha_bar.sqrt(), after.alpha_bar.sqrt()
    torch.testing.assert_close(b, (a - a[-1]) / (a[0] - a[-1]) * a[0], rtol=1e-10, atol=1e-14)
    assert bool((after.alpha_bar[1:] < after.alpha_bar[:-1]).all())
    torch.testing.assert_close(rescale_zero_terminal_snr(after.betas), after.betas)  # already zero SNR: unchanged


def test_scaled_linear_is_linear_in_sqrt_beta():
    b = scaled_linear_betas(1000)
    assert b[0].item() == pytest.approx(0.00085, rel=1e-12) and b[-1].item() == pytest.approx(0.012, rel=1e-12)
    d = b.sqrt().diff()
    torch.testing.assert_close(d, torch.full_like(d, d.mean().item()), rtol=1e-9, atol=0)


def test_bad_schedule_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="not 'cosine'"):
        make_schedule("cosine", 100, beta_start=1e-4)
    with pytest.raises(ValueError, match="beta_start <= beta_end"):
        make_schedule("linear", 100, 0.02, 1e-4)
    with pytest.raises(ValueError, match="scaled_linear"):
        make_schedule("sigmoid")
    with pytest.raises(ValueError, match=r"the last in \(0, 1\]"):
        NoiseSchedule(torch.tensor([0.1, 1.0, 0.5], dtype=F64))  # only the last beta may be 1
