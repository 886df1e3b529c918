"""Chapter 8's flow matchers: closed forms (endpoints, u_s = d x_s / ds), the exact OT pairing, the regression
target on Gaussian data, the velocity read as x0, eps and a score, and parity with torchcfm (float64) after
its time map t = 1 - s, its x0 = our eps (noise) and x1 = our x0 (data), u_t = -u_s."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from course_lib.process.flow_matching import (TIME_SCALE, ConditionalFlowMatcher,
                                              ExactOptimalTransportConditionalFlowMatcher, PairedFlowMatchingLoss,
                                              TargetConditionalFlowMatcher,
                                              VariancePreservingConditionalFlowMatcher, eps_to_velocity,
                                              exact_ot_permutation, flow_model_as_eps, flow_time_of_alpha_bar,
                                              velocity_to_eps, velocity_to_score, velocity_to_x0)
from course_lib.process.schedules import make_schedule

F64 = torch.float64
PATHS = {  # matcher -> (a_s, b_s, da_s/ds, db_s/ds) with x_s = a_s x0 + b_s eps
    "linear": (ConditionalFlowMatcher(), lambda s: (1 - s, s, -torch.ones_like(s), torch.ones_like(s))),
    "vp": (VariancePreservingConditionalFlowMatcher(),
           lambda s: (torch.cos(math.pi * s / 2), torch.sin(math.pi * s / 2),
                      -math.pi / 2 * torch.sin(math.pi * s / 2), math.pi / 2 * torch.cos(math.pi * s / 2))),
    "target": (TargetConditionalFlowMatcher(sigma=0.1),
               lambda s: (1 - s, 0.1 + 0.9 * s, -torch.ones_like(s), 0.9 * torch.ones_like(s))),
}


@pytest.mark.parametrize("name", list(PATHS))
@pytest.mark.parametrize("shape", [(7, 2), (3, 3, 4, 4)])
def test_path_endpoints_and_velocity_is_the_time_derivative(name, shape):
    matcher, _ = PATHS[name]
    x0, eps = torch.randn(shape, dtype=F64), torch.randn(shape, dtype=F64)
    B = shape[0]
    _, at0, _ = matcher.sample_location_and_conditional_flow(x0, eps, torch.zeros(B, dtype=F64))
    _, at1, _ = matcher.sample_location_and_conditional_flow(x0, eps, torch.ones(B, dtype=F64))
    assert_close(at0, x0 + (0.1 * eps if name == "target" else 0))  # data at s = 0 (sigma_min around it)
    assert_close(at1, eps)  # noise at s = 1
    s, h = torch.rand(B, dtype=F64) * 0.9 + 0.05, 1e-6
    _, x_s, u_s = matcher.sample_location_and_conditional_flow(x0, eps, s)
    x_plus = matcher.compute_mu_t(x0, eps, s + h)
    x_minus = matcher.compute_mu_t(x0, eps, s - h)
    assert_close(u_s, (x_plus - x_minus) / (2 * h), rtol=1e-6, atol=1e-6)  # u_s = d x_s / ds
    assert u_s.shape == x_s.shape == shape


def test_default_is_rectified_flow_the_path_of_diffusers_flow_match():
    x0, eps, s = torch.randn(5, 3, dtype=F64), torch.randn(5, 3, dtype=F64), torch.rand(5, dtype=F64)
    got_s, x_s, u_s = ConditionalFlowMatcher().sample_location_and_conditional_flow(x0, eps, s)
    assert torch.equal(got_s, s)
    assert_close(x_s, (1 - s[:, None]) * x0 + s[:, None] * eps)  # FlowMatchEuler's scale_noise with sigma = s
    assert_close(u_s, eps - x0)


def test_sigma_adds_gaussian_width_from_the_generator():
    x0, eps, s = torch.randn(4, 2, dtype=F64), torch.randn(4, 2, dtype=F64), torch.rand(4, dtype=F64)
    m = ConditionalFlowMatcher(sigma=0.3)
    _, x_s, u_s = m.sample_location_and_conditional_flow(x0, eps, s, generator=torch.Generator().manual_seed(3))
    z = torch.randn(4, 2, dtype=F64, generator=torch.Generator().manual_seed(3))
    assert_close(x_s, m.compute_mu_t(x0, eps, s) + 0.3 * z)
    assert_close(u_s, eps - x0)


def test_loss_calls_the_model_at_1000_s_and_is_the_mse():
    x0 = torch.randn(6, 2)
    seen = []

    def model(x, t):
        seen.append(t)
        return torch.zeros_like(x)

    m = ConditionalFlowMatcher()
    loss = m(model, x0, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    eps = torch.randn(x0.shape, generator=g)
    s = torch.rand(6, generator=g)
    assert seen[0].shape == (6,)
    assert_close(seen[0], TIME_SCALE * s)
    assert_close(loss, ((eps - x0) ** 2).mean())
    paired = PairedFlowMatchingLoss()(model, (x0, eps), generator=torch.Generator().manual_seed(1))
    assert_close(paired, ((eps - x0) ** 2).mean())  # zero model: the loss does not depend on s


def test_exact_ot_permutation_is_the_best_of_all_pairings():
    x0, eps = torch.randn(6, 2, 2, dtype=F64), torch.randn(6, 2, 2, dtype=F64)
    perm = exact_ot_permutation(x0, eps)
    cost = lambda p: float(((x0 - eps[torch.as_tensor(list(p))]) ** 2).sum())
    best = min(itertools.permutations(range(6)), key=cost)
    assert perm.tolist() == list(best)
    m = ExactOptimalTransportConditionalFlowMatcher()
    s = torch.rand(6, dtype=F64)
    _, x_s, u_s = m.sample_location_and_conditional_flow(x0, eps, s)
    assert_close(u_s, eps[perm] - x0)  # data stay in order, noise re-paired
    assert cost(perm) <= cost(range(6))


def _gaussian_conditionals(a, b, mu, c, x):
    """E[x0 | x_s = x] and E[eps | x_s = x] for x0 ~ N(mu, c^2 I), x_s = a x0 + b eps (all in closed form)."""
    var = a ** 2 * c ** 2 + b ** 2
    r = x - a * mu
    return mu + a * c ** 2 / var * r, b / var * r, var


@pytest.mark.parametrize("name", list(PATHS))
def test_regressing_the_target_on_gaussian_data_recovers_the_closed_form_velocity(name):
    matcher, coef = PATHS[name]
    g = torch.Generator().manual_seed(0)
    n, mu, c = 200_000, torch.tensor([1.0, -2.0], dtype=F64), 0.5
    x0 = mu + c * torch.randn(n, 2, generator=g, dtype=F64)
    eps = torch.randn(n, 2, generator=g, dtype=F64)
    s = torch.full((n,), 0.4, dtype=F64)
    _, x_s, u_s = matcher.sample_location_and_conditional_flow(x0, eps, s)
    design = torch.cat([x_s, torch.ones(n, 1, dtype=F64)], 1)
    fit = torch.linalg.lstsq(design, u_s).solution  # the best affine v(x) = least squares on the CFM loss
    a, b, da, db = (float(v) for v in coef(torch.tensor(0.4, dtype=F64)))
    probe = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 2.0]], dtype=F64)
    x0_hat, eps_hat, _ = _gaussian_conditionals(a, b, mu, c, probe)
    v_star = da * x0_hat + db * eps_hat  # E[u_s | x_s]: the marginal velocity (FM Eq. 8)
    assert_close(torch.cat([probe, torch.ones(3, 1, dtype=F64)], 1) @ fit, v_star, atol=0.02, rtol=0)


def test_a_velocity_reads_as_x0_eps_and_score_on_the_linear_path():
    mu, c = torch.tensor([0.5, -1.0], dtype=F64), 0.7
    x, s = torch.randn(5, 2, dtype=F64), torch.rand(5, dtype=F64) * 0.9 + 0.05
    a, b = (1 - s)[:, None], s[:, None]
    x0_hat, eps_hat, var = _gaussian_conditionals(a, b, mu, c, x)
    v = eps_hat - x0_hat  # the exact velocity of Gaussian data
    assert_close(velocity_to_x0(v, x, s), x0_hat)
    assert_close(velocity_to_eps(v, x, s), eps_hat)
    assert_close(velocity_to_score(v, x, s), -(x - a * mu) / var)  # grad log N(a mu, var I)
    assert_close(eps_to_velocity(eps_hat, x, s), v)


def test_ddpm_x_t_rescaled_is_a_point_of_the_linear_path():
    alpha_bar = torch.tensor([0.999, 0.5, 0.01], dtype=F64)[:, None]
    x0, eps = torch.randn(3, 4, dtype=F64), torch.randn(3, 4, dtype=F64)
    x_t = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps  # DDPM Eq. 4
    s = flow_time_of_alpha_bar(alpha_bar)
    assert_close(x_t / (alpha_bar.sqrt() + (1 - alpha_bar).sqrt()), (1 - s) * x0 + s * eps)


def test_a_flow_model_runs_as_ddpm_noise_predictor():
    mu, c = torch.tensor([0.5, -1.0], dtype=F64), 0.7

    def velocity(x, t):  # the exact velocity of data N(mu, c^2 I) on the linear path, called at 1000 s
        s = (t / TIME_SCALE)[:, None]
        x0_hat, eps_hat, _ = _gaussian_conditionals(1 - s, s, mu, c, x)
        return eps_hat - x0_hat

    schedule = make_schedule("linear", 1000)
    t = torch.tensor([0, 300, 999])
    x_t = torch.randn(3, 2, dtype=F64)
    a = schedule.alpha_bar[t][:, None]
    _, eps_star, _ = _gaussian_conditionals(a.sqrt(), (1 - a).sqrt(), mu, c, x_t)  # E[eps | x_t] under DDPM
    assert_close(flow_model_as_eps(velocity, schedule)(x_t, t), eps_star)


def test_bad_shapes_are_errors():
    m = ConditionalFlowMatcher()
    with pytest.raises(ValueError, match="eps must have x0's shape"):
        m.sample_location_and_conditional_flow(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="s must have shape"):
        m.sample_location_and_conditional_flow(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(2))


# ---- parity with torchcfm -----------------------------------------------------------------------------

@pytest.fixture
def cfm():
    """torchcfm's flow matchers, the reference (installed by tests/setup_env.sh, without its heavy extras)."""
    import torchcfm.conditional_flow_matching as cfm
    return cfm


def _pair(B=16, shape=(3, 4, 4)):
    g = torch.Generator().manual_seed(7)
    return (torch.randn(B, *shape, generator=g, dtype=F64), torch.randn(B, *shape, generator=g, dtype=F64),
            torch.rand(B, generator=g, dtype=F64))


@pytest.mark.parametrize("ours, theirs, sigma", [
    (ConditionalFlowMatcher, "ConditionalFlowMatcher", 0.0),
    (ConditionalFlowMatcher, "ConditionalFlowMatcher", 0.2),
    (VariancePreservingConditionalFlowMatcher, "VariancePreservingConditionalFlowMatcher", 0.0),
    (TargetConditionalFlowMatcher, "TargetConditionalFlowMatcher", 0.1),
])
def test_parity_with_torchcfm(cfm, ours, theirs, sigma):
    data, noise, t = _pair()
    torch.manual_seed(1)  # torchcfm draws its Gaussian (sigma's z, or Target's noise) with randn_like
    t_ref, xt_ref, ut_ref, z = getattr(cfm, theirs)(sigma=sigma).sample_location_and_conditional_flow(
        noise, data, t=t, return_noise=True)
    eps = z if ours is TargetConditionalFlowMatcher else noise  # Target ignores its x0 and uses its own noise
    torch.manual_seed(1)
    s, x_s, u_s = ours(sigma=sigma).sample_location_and_conditional_flow(data, eps, s=1 - t)
    assert_close(s, 1 - t_ref)
    assert_close(x_s, xt_ref)
    assert_close(u_s, -ut_ref)


def test_parity_with_torchcfm_exact_ot(cfm, monkeypatch):
    data, noise, t = _pair()
    ref = cfm.ExactOptimalTransportConditionalFlowMatcher(sigma=0.0)
    perm = exact_ot_permutation(data, noise)  # data i <-> noise perm[i]
    plan = ref.ot_sampler.get_map(noise, data)  # POT's ot.emd: (B noise, B data), 1/B on the pairs
    expected = np.zeros((16, 16))
    expected[perm.numpy(), np.arange(16)] = 1 / 16
    np.testing.assert_allclose(plan, expected, atol=1e-12)
    np.random.seed(0)  # torchcfm draws pairs from the plan; without replacement they are the plan's pairs
    noise_ref, data_ref = ref.ot_sampler.sample_plan(noise, data, replace=False)
    order = torch.cdist(data_ref.flatten(1), data.flatten(1)).argmin(1)  # which data row each draw is
    assert sorted(order.tolist()) == list(range(16))
    assert_close(noise_ref, noise[perm[order]])
    # with its draw listing the plan's pairs in data order, torchcfm's (t, x_t, u_t) is ours
    monkeypatch.setattr(ref.ot_sampler, "sample_map",
                        lambda pi, batch_size, replace=True: (pi.argmax(0), np.arange(pi.shape[1])))
    t_ref, xt_ref, ut_ref = ref.sample_location_and_conditional_flow(noise, data, t=t)
    s, x_s, u_s = ExactOptimalTransportConditionalFlowMatcher().sample_location_and_conditional_flow(data, noise, 1 - t)
    assert_close(x_s, xt_ref)
    assert_close(u_s, -ut_ref)
