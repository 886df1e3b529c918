"""Fast samplers: parity with diffusers' schedulers step for step in float64, spacings, invariants.

The parity tests run the full loop of each sampler and of the matching diffusers scheduler on the
same fake model (a fixed random map of (x, t)), and compare every intermediate state."""

import math

import pytest
import torch

from course_lib.process.diffusion import velocity, x0_to_eps
from course_lib.samplers.ddim import ddim_invert, ddim_sample, ddim_step, timesteps
from course_lib.samplers.ode import dpm_solver_timesteps, dpmpp_2m_sample, euler_sample, heun_sample
from course_lib.samplers.ddpm import ddpm_sample
from course_lib.process.schedules import make_schedule

diffusers = pytest.importorskip("diffusers")
from diffusers.schedulers import scheduling_dpmsolver_multistep, scheduling_euler_discrete  # noqa: E402

# diffusers calls np.array on its (torch) alphas_cumprod; numpy 2 warns about the copy keyword.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

T, N = 1000, 10
SHAPE = (4, 3, 4, 4)
SCHEDULES = [("linear", "linear"), ("cosine", "squaredcos_cap_v2")]
PREDICTIONS = [("eps", "epsilon"), ("v", "v_prediction")]
TOL = dict(rtol=1e-10, atol=1e-12)  # float64 on both sides: the loops agree to rounding


def fake_model(seed: int = 0, dim: int = 48):
    """Deterministic pseudo-random outputs as a function of (x, t): tanh of a fixed random linear
    map of x, plus a fixed random embedding of the step t."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(dim, dim, generator=g, dtype=torch.float64) / dim ** 0.5
    emb = 0.5 * torch.randn(T, dim, generator=g, dtype=torch.float64)

    def model(x, t):
        assert t.dtype == torch.long and t.shape == (x.shape[0],)
        return (torch.tanh(x.flatten(1) @ W.to(x)) + emb[t].to(x)).reshape(x.shape)
    return model


def x_T(seed=1):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def float64_scheduler(cls, ours, theirs, prediction, **config):
    """A diffusers scheduler built with explicit arguments, with our float64 schedule swapped in
    for its float32 one after checking that they are the same schedule."""
    ref = make_schedule(ours, T)
    sched = cls(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule=theirs,
                trained_betas=None, prediction_type=prediction, **config)
    torch.testing.assert_close(sched.alphas_cumprod.double(), ref.alpha_bar, rtol=1e-4, atol=1e-6)
    sched.betas, sched.alphas, sched.alphas_cumprod = ref.betas, ref.alphas, ref.alpha_bar
    return sched, ref


def float64_sigmas(ref, steps):
    """EDM sigmas in float64 at our steps, then 0; diffusers rounds them to float32 in set_timesteps."""
    a = ref.alpha_bar[steps]
    return torch.cat([((1 - a) / a).sqrt(), torch.zeros(1, dtype=torch.float64)])


class TorchWithFloat64ForFloat32:
    """Stands in for `torch` inside one diffusers module: torch itself, except that float32 is
    float64. The Euler and DPM-Solver steps cast the sample with `sample.to(torch.float32)`
    ("upcast to avoid precision issues"), which would round our float64 states to float32."""
    float32 = torch.float64

    def __getattr__(self, name):
        return getattr(torch, name)


@pytest.fixture
def no_float32_upcast(monkeypatch):
    for module in (scheduling_euler_discrete, scheduling_dpmsolver_multistep):
        monkeypatch.setattr(module, "torch", TorchWithFloat64ForFloat32())


# ---- timestep spacings ------------------------------------------------------------------------

def _their_steps(sched, n):
    """diffusers' timesteps; for some N ("trailing": 61, 103, ... of T = 1000) numpy's arange with a
    float step gives N + 1 of them, the last -1 (not a step); we return the N real ones."""
    sched.set_timesteps(n)
    ts = sched.timesteps.long()
    if len(ts) == n + 1:
        assert int(ts[-1]) == -1
        ts = ts[:-1]
    return ts


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("num_train", [50, 1000])
def test_ddim_timesteps_match_diffusers_for_every_n(spacing, num_train):
    sched = diffusers.DDIMScheduler(num_train_timesteps=num_train, timestep_spacing=spacing, steps_offset=0)
    for n in range(1, num_train + 1):
        assert torch.equal(timesteps(num_train, n, spacing), _their_steps(sched, n)), n


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_dpm_solver_timesteps_match_diffusers(spacing):
    sched = diffusers.DPMSolverMultistepScheduler(num_train_timesteps=T, timestep_spacing=spacing, steps_offset=0)
    for n in [*range(1, 60), 61, 99, 100, 250, 500, 999]:
        assert torch.equal(dpm_solver_timesteps(T, n, spacing), _their_steps(sched, n)), n


def test_leading_steps_offset_matches_diffusers():
    sched = diffusers.DDIMScheduler(num_train_timesteps=T, timestep_spacing="leading", steps_offset=1)
    for n in (1, 10, 50, 999):
        assert torch.equal(timesteps(T, n, "leading", steps_offset=1), _their_steps(sched, n))


@pytest.mark.parametrize("cls", [diffusers.EulerDiscreteScheduler, diffusers.HeunDiscreteScheduler])
def test_euler_and_heun_timesteps_match_diffusers_where_integer(cls):
    """Their "linspace" steps are float (linspace(0, T-1, N) unrounded, sigma interpolated) unless
    (T-1)/(N-1) is an integer; ours are integers, so the match is for those N."""
    for spacing, ns in [("leading", (1, 7, 10, 50, 1000)), ("trailing", (1, 7, 10, 50, 1000)),
                        ("linspace", (2, 10, 28, 38, 112, 1000))]:
        sched = cls(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, timestep_spacing=spacing)
        for n in ns:
            ours = timesteps(T, n, spacing).double()
            sched.set_timesteps(n)
            if cls is diffusers.HeunDiscreteScheduler:  # t_0, t_1, t_1, t_2, t_2, ...
                ours = torch.cat([ours[:1], ours[1:].repeat_interleave(2)])
            assert torch.equal(sched.timesteps.double(), ours), (spacing, n)


# ---- parity: full loops, every intermediate state ------------------------------------------------

@pytest.mark.parametrize("ours,theirs", SCHEDULES)
@pytest.mark.parametrize("kind,prediction", PREDICTIONS)
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_ddim_matches_diffusers_step_for_step(ours, theirs, kind, prediction, spacing, eta):
    sched, ref = float64_scheduler(diffusers.DDIMScheduler, ours, theirs, prediction, clip_sample=False,
                                   set_alpha_to_one=True, steps_offset=0, thresholding=False,
                                   timestep_spacing=spacing, rescale_betas_zero_snr=False)
    sched.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    sched.set_timesteps(N)
    steps = timesteps(T, N, spacing)
    assert torch.equal(sched.timesteps, steps)
    model, x = fake_model(), x_T()
    _, traj = ddim_sample(model, ref, x, steps, eta=eta, prediction_type=kind,
                          generator=torch.Generator().manual_seed(5), keep_trajectory=True)
    g = torch.Generator().manual_seed(5)  # the same noise, in the order ddim_sample draws it
    for i, t in enumerate(sched.timesteps):
        noise = torch.randn(SHAPE, generator=g, dtype=torch.float64) if eta > 0 else None
        out = model(x, torch.full((SHAPE[0],), int(t)))
        x = sched.step(out, int(t), x, eta=eta, variance_noise=noise).prev_sample
        torch.testing.assert_close(traj[i + 1], x, **TOL)


@pytest.mark.parametrize("ours,theirs", SCHEDULES)
@pytest.mark.parametrize("kind,prediction", PREDICTIONS)
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_ddim_inversion_matches_diffusers_step_for_step(ours, theirs, kind, prediction, spacing):
    sched, ref = float64_scheduler(diffusers.DDIMInverseScheduler, ours, theirs, prediction, clip_sample=False,
                                   set_alpha_to_one=True, steps_offset=0, timestep_spacing=spacing)
    sched.initial_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    sched.set_timesteps(N)
    steps = timesteps(T, N, spacing)
    assert torch.equal(sched.timesteps, steps.flip(0))
    model, x = fake_model(), x_T()
    _, traj = ddim_invert(model, ref, x, steps, prediction_type=kind, keep_trajectory=True)
    for i, t in enumerate(sched.timesteps):
        x = sched.step(model(x, torch.full((SHAPE[0],), int(t))), int(t), x).prev_sample
        torch.testing.assert_close(traj[i + 1], x, **TOL)


@pytest.mark.parametrize("ours,theirs", SCHEDULES)
@pytest.mark.parametrize("kind,prediction", PREDICTIONS)
@pytest.mark.parametrize("n", [1, 2, 10])
def test_dpmpp_2m_matches_diffusers_step_for_step(ours, theirs, kind, prediction, n, no_float32_upcast):
    sched, ref = float64_scheduler(diffusers.DPMSolverMultistepScheduler, ours, theirs, prediction,
                                   solver_order=2, algorithm_type="dpmsolver++", solver_type="midpoint",
                                   lower_order_final=True, euler_at_final=False, use_karras_sigmas=False,
                                   final_sigmas_type="zero", lambda_min_clipped=-math.inf,
                                   timestep_spacing="linspace", steps_offset=0, thresholding=False)
    sched.set_timesteps(n)
    steps = dpm_solver_timesteps(T, n)
    assert torch.equal(sched.timesteps, steps)
    sig = float64_sigmas(ref, steps)
    torch.testing.assert_close(sched.sigmas.double(), sig, rtol=1e-5, atol=0)  # same sigmas, float32
    sched.sigmas = sig
    model, x = fake_model(), x_T()
    _, traj = dpmpp_2m_sample(model, ref, x, steps, prediction_type=kind, keep_trajectory=True)
    for i, t in enumerate(sched.timesteps):
        x = sched.step(model(x, torch.full((SHAPE[0],), int(t))), t, x).prev_sample
        assert x.dtype == torch.float64
        torch.testing.assert_close(traj[i + 1], x, **TOL)


@pytest.mark.parametrize("ours,theirs", SCHEDULES)
@pytest.mark.parametrize("kind,prediction", PREDICTIONS)
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_euler_matches_diffusers_step_for_step(ours, theirs, kind, prediction, spacing, no_float32_upcast):
    sched, ref = float64_scheduler(diffusers.EulerDiscreteScheduler, ours, theirs, prediction,
                                   interpolation_type="linear", use_karras_sigmas=False, timestep_spacing=spacing,
                                   timestep_type="discrete", steps_offset=0, final_sigmas_type="zero")
    sched.set_timesteps(N)
    steps = timesteps(T, N, spacing)
    assert torch.equal(sched.timesteps, steps.float())
    sig = float64_sigmas(ref, steps)
    torch.testing.assert_close(sched.sigmas.double(), sig, rtol=1e-5, atol=0)
    sched.sigmas = sig
    model, x_t = fake_model(), x_T()
    _, traj = euler_sample(model, ref, x_t, steps, prediction_type=kind, keep_trajectory=True)
    x = x_t * (1 + sig[0] ** 2).sqrt()  # diffusers works on x_t / sqrt(alpha_bar)
    for i, t in enumerate(sched.timesteps):
        out = model(sched.scale_model_input(x, t), torch.full((SHAPE[0],), int(t)))
        x = sched.step(out, t, x).prev_sample
        assert x.dtype == torch.float64
        torch.testing.assert_close(traj[i + 1], x / (1 + sig[i + 1] ** 2).sqrt(), **TOL)


@pytest.mark.parametrize("ours,theirs", SCHEDULES)
@pytest.mark.parametrize("kind,prediction", PREDICTIONS)
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_heun_matches_diffusers_step_for_step(ours, theirs, kind, prediction, spacing):
    sched, ref = float64_scheduler(diffusers.HeunDiscreteScheduler, ours, theirs, prediction,
                                   use_karras_sigmas=False, clip_sample=False, timestep_spacing=spacing,
                                   steps_offset=0)
    sched.set_timesteps(N)
    steps = timesteps(T, N, spacing)
    assert torch.equal(sched.timesteps, torch.cat([steps[:1], steps[1:].repeat_interleave(2)]).float())
    sig = float64_sigmas(ref, steps)
    doubled = torch.cat([sig[:1], sig[1:-1].repeat_interleave(2), sig[-1:]])  # as diffusers lays them out
    torch.testing.assert_close(sched.sigmas.double(), doubled, rtol=1e-5, atol=0)
    sched.sigmas = doubled
    model, x_t = fake_model(), x_T()
    _, traj = heun_sample(model, ref, x_t, steps, prediction_type=kind, keep_trajectory=True)
    x = x_t * (1 + sig[0] ** 2).sqrt()
    states = []
    for t in sched.timesteps:  # 2N - 1 calls: Euler predictor, Heun corrector, ..., final Euler
        out = model(sched.scale_model_input(x, t), torch.full((SHAPE[0],), int(t)))
        x = sched.step(out, t, x).prev_sample
        states.append(x)
    for i, x in enumerate(states[1::2] + states[-1:]):  # the corrected states, then the last
        torch.testing.assert_close(traj[i + 1], x / (1 + sig[i + 1] ** 2).sqrt(), **TOL)


# ---- invariants ---------------------------------------------------------------------------------

def test_ddim_eta_zero_is_deterministic():
    sch, model = make_schedule("linear", T), fake_model()
    run = lambda seed: ddim_sample(model, sch, x_T(), timesteps(T, N), generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(run(0), run(1), rtol=0, atol=0)
    noisy = lambda seed: ddim_sample(model, sch, x_T(), timesteps(T, N), eta=1.0,
                                     generator=torch.Generator().manual_seed(seed))
    assert not torch.allclose(noisy(0), noisy(1))


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_ddim_eta_one_over_all_steps_is_ddpm_with_beta_tilde(name):
    """eta = 1 gives sigma_t^2 = beta_tilde_t (DDIM Eq. 16), as in diffusers' DDIMScheduler; over all
    T steps it is DDPM's ancestral sampler with variance "small", draw for draw."""
    sch, model = make_schedule(name, T), fake_model()
    x = x_T()
    ddim = ddim_sample(model, sch, x, timesteps(T, T), eta=1.0, generator=torch.Generator().manual_seed(3))
    ddpm = ddpm_sample(model, sch, x, generator=torch.Generator().manual_seed(3), variance="small")
    torch.testing.assert_close(ddim, ddpm, rtol=1e-10, atol=1e-10)


def gaussian_model(sch, m, s, kind="eps"):
    """The exact prediction for data x0 ~ N(m, s^2 I): E[x0 | x_t] = m + sqrt(a) s^2 (x_t - sqrt(a) m) / v_t,
    v_t = a s^2 + 1 - a, read as eps, x0 or v."""
    def model(x, t):
        a = sch.alpha_bar[t].to(x)[:, None]
        x0 = m + a.sqrt() * s ** 2 * (x - a.sqrt() * m) / (a * s ** 2 + 1 - a)
        eps = x0_to_eps(x0, x, a)
        return {"eps": eps, "x0": x0, "v": velocity(x0, eps, a)}[kind]
    return model


SAMPLERS = {
    "ddim": lambda m, sch, x, n, kind: ddim_sample(m, sch, x, timesteps(T, n, "trailing"), prediction_type=kind),
    "ddim_eta1": lambda m, sch, x, n, kind: ddim_sample(m, sch, x, timesteps(T, n, "trailing"), eta=1.0,
                                                        prediction_type=kind, generator=torch.Generator().manual_seed(1)),
    "dpmpp_2m": lambda m, sch, x, n, kind: dpmpp_2m_sample(m, sch, x, dpm_solver_timesteps(T, n), prediction_type=kind),
    "euler": lambda m, sch, x, n, kind: euler_sample(m, sch, x, timesteps(T, n, "trailing"), prediction_type=kind),
    "heun": lambda m, sch, x, n, kind: heun_sample(m, sch, x, timesteps(T, n, "trailing"), prediction_type=kind),
}


@pytest.mark.parametrize("sampler,n,tol", [
    ("dpmpp_2m", 50, 0.02), ("heun", 50, 0.02),  # second order: within sampling error at 50 steps
    ("ddim", 50, 0.07), ("euler", 50, 0.07),     # first order: about -5% at 50 steps (measured),
    ("ddim", 200, 0.02), ("euler", 200, 0.02),   # about -1% at 200
    ("ddim_eta1", 200, 0.05),                    # stochastic, DDPM-like: about -3% at 200
])
@pytest.mark.parametrize("kind", ["eps", "x0", "v"])
def test_exact_denoiser_on_gaussian_data_recovers_mean_and_std(sampler, n, tol, kind):
    """Data N(0.5, 0.5^2 I), 20,000 x 2 samples: the sampling error on the mean and the std is
    about 0.5% of s, the rest allowed is the solver's error at n steps (linear schedule)."""
    sch, m, s = make_schedule("linear", T), 0.5, 0.5
    x = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = SAMPLERS[sampler](gaussian_model(sch, m, s, kind), sch, x, n, kind)
    assert abs(out.mean().item() - m) < 0.03 * s
    assert abs(out.std().item() - s) < tol * s


@pytest.mark.parametrize("kind", ["eps", "v"])
def test_ddim_inversion_round_trip(kind):
    """Invert then sample with the same steps returns the data. The error comes from evaluating the
    model one step off during inversion, so it is first order: RMS about 7% of the data's std at
    100 steps and 0.7% at 1000 (measured), ten times smaller for ten times the steps."""
    sch, m, s = make_schedule("linear", T), 0.5, 0.3
    model = gaussian_model(sch, m, s, kind)
    x0 = m + s * torch.randn(512, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rms = {}
    for n in (100, 1000):
        steps = timesteps(T, n, "leading")
        noise = ddim_invert(model, sch, x0, steps, prediction_type=kind)
        assert abs(noise.mean().item()) < 0.1 and abs(noise.std().item() - 1) < 0.05  # it reached N(0, I)
        back = ddim_sample(model, sch, noise, steps, prediction_type=kind)
        rms[n] = (back - x0).pow(2).mean().sqrt().item()
    assert rms[100] < 0.1 * s and rms[1000] < 0.01 * s
    assert 8 < rms[100] / rms[1000] < 12


def test_samplers_call_the_model_at_the_listed_steps_in_order():
    sch, steps = make_schedule("linear", 100), [90, 60, 30, 0]
    for sampler, expected in [(ddim_sample, steps), (dpmpp_2m_sample, steps), (euler_sample, steps),
                              (heun_sample, [90, 60, 60, 30, 30, 0, 0])]:  # Heun: diffusers' doubled steps
        seen = []

        def model(x, t):
            assert t.dtype == torch.long and bool((t == t[0]).all())
            seen.append(int(t[0]))
            return torch.zeros_like(x)
        sampler(model, sch, torch.randn(3, 2), steps)
        assert seen == expected, sampler.__name__


@pytest.mark.parametrize("sampler", [ddim_sample, dpmpp_2m_sample, euler_sample, heun_sample])
def test_samplers_follow_the_dtype_of_x_T(sampler):
    sch = make_schedule("cosine", 100)
    for dtype in (torch.float32, torch.float64):
        x, traj = sampler(lambda x, t: 0.1 * x, sch, torch.randn(3, 2, dtype=dtype), [99, 50, 0], keep_trajectory=True)
        assert x.dtype == dtype and traj.shape == (4, 3, 2) and traj.dtype == dtype


def test_bad_inputs_raise_clear_errors():
    sch, x = make_schedule("linear", 100), torch.randn(2, 2)
    with pytest.raises(ValueError, match=r"num_inference_steps must lie in \[1, 100\]"):
        timesteps(100, 101)
    with pytest.raises(ValueError, match=r"num_inference_steps must lie in \[1, 100\]"):
        dpm_solver_timesteps(100, 0)
    with pytest.raises(TypeError, match="must be an int"):
        timesteps(100, 10.0)
    with pytest.raises(ValueError, match="expected one of 'leading', 'trailing', 'linspace'"):
        timesteps(100, 10, "karras")
    with pytest.raises(ValueError, match="outside"):
        timesteps(100, 100, "leading", steps_offset=1)
    with pytest.raises(ValueError, match="strictly decreasing"):
        ddim_sample(lambda x, t: x, sch, x, [0, 50])
    with pytest.raises(ValueError, match=r"\[0, 99\]"):
        euler_sample(lambda x, t: x, sch, x, [100, 50])
    with pytest.raises(ValueError, match="integer steps"):
        heun_sample(lambda x, t: x, sch, x, torch.tensor([50.0, 0.0]))
    with pytest.raises(ValueError, match="expected one of 'eps', 'x0', 'v'"):
        dpmpp_2m_sample(lambda x, t: x, sch, x, [50, 0], prediction_type="epsilon")
    with pytest.raises(ValueError, match=r"eta must lie in \[0, 1\]"):
        ddim_sample(lambda x, t: x, sch, x, [50, 0], eta=1.5)
    with pytest.raises(ValueError, match="needs standard Gaussian noise"):
        ddim_step(sch, x, 50, 0, x, eta=0.5)
    with pytest.raises(ValueError, match="t_prev < t"):
        ddim_step(sch, x, 10, 20, x)


def test_ddim_sigma_is_zero_at_eta_0_and_the_ddpm_posterior_std_at_eta_1():
    from course_lib.process.diffusion import q_posterior
    from course_lib.samplers.ddim import ddim_sigma

    schedule = make_schedule("cosine", 1000)
    for t in (1, 10, 500, 999):
        var = q_posterior(schedule, torch.zeros(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64), t)[1]
        assert ddim_sigma(schedule, t, t - 1, 1.0) == pytest.approx(float(var) ** 0.5, rel=1e-12)
        assert ddim_sigma(schedule, t, t - 1, 0.0) == 0.0
    assert ddim_sigma(schedule, 0, -1, 1.0) == 0.0  # the last step to the data end adds no noise
    with pytest.raises(ValueError, match="eta"):
        ddim_sigma(schedule, 10, 5, 1.5)


def test_slerp_hits_both_ends_and_moves_at_constant_angle_on_the_sphere():
    from course_lib.samplers.ddim import slerp

    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(3, 4, 5, 5, generator=g, dtype=torch.float64), torch.randn(3, 4, 5, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(slerp(z0, z1, 0.0), z0)
    torch.testing.assert_close(slerp(z0, z1, 1.0), z1)
    u0, u1 = z0 / z0.flatten(1).norm(dim=1).view(-1, 1, 1, 1), z1 / z1.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    theta = torch.arccos((u0 * u1).flatten(1).sum(1))
    for w in (0.25, 0.5, 0.8):
        mid = slerp(u0, u1, w).flatten(1)
        torch.testing.assert_close(mid.norm(dim=1), torch.ones(3, dtype=torch.float64))  # stays on the unit sphere
        torch.testing.assert_close(torch.arccos((mid * u0.flatten(1)).sum(1)), w * theta)  # at angle w * theta from z0
    torch.testing.assert_close(slerp(z0, z0, 0.3), z0)  # parallel inputs: no division by zero
    per_example = slerp(z0, z1, torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    torch.testing.assert_close(per_example[0], z0[0])
    torch.testing.assert_close(per_example[2], z1[2])
    with pytest.raises(ValueError, match="share a shape"):
        slerp(z0, z1[:, :1], 0.5)
