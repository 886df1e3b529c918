import pytest
import torch

from course_lib.process.diffusion import EpsilonLoss, add_noise, eps_to_score
from course_lib.process.schedules import make_schedule

diffusers = pytest.importorskip("diffusers")
SCHEDULES = [("linear", "linear"), ("cosine", "squaredcos_cap_v2")]


def float64_diffusers(theirs: str, ours: str, T: int = 1000):
    """diffusers' DDPMScheduler with our float64 schedule tensors swapped in (it builds float32)."""
    sched = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule=theirs, clip_sample=False)
    ref = make_schedule(ours, T)
    sched.betas, sched.alphas, sched.alphas_cumprod = ref.betas, ref.alphas, ref.alpha_bar
    sched.one = torch.tensor(1.0, dtype=torch.float64)
    return sched, ref


@pytest.mark.parametrize("shape", [(5, 2), (3, 3, 8, 8), (2, 4, 4, 4, 4)])
@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_add_noise_closed_form(shape, name):
    sch = make_schedule(name, 100)
    x0, noise = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    t = torch.randint(0, 100, (shape[0],))
    out = add_noise(sch, x0, t, noise)
    for i in range(shape[0]):
        a = sch.alpha_bar[t[i]]
        assert torch.allclose(out[i], a.sqrt() * x0[i] + (1 - a).sqrt() * noise[i], rtol=1e-12, atol=1e-12)


def test_add_noise_follows_input_dtype():
    sch = make_schedule("linear", 10)
    x0 = torch.randn(4, 2, dtype=torch.bfloat16)
    assert add_noise(sch, x0, torch.tensor([0, 1, 2, 9]), torch.randn_like(x0)).dtype == torch.bfloat16


def test_add_noise_preserves_unit_variance():
    sch = make_schedule("cosine", 1000)
    x0 = torch.randn(200_000, dtype=torch.float64).reshape(-1, 1)
    out = add_noise(sch, x0, 500, torch.randn_like(x0))
    assert abs(out.var().item() - 1.0) < 0.02


@pytest.mark.parametrize("ours,theirs", SCHEDULES)
def test_add_noise_matches_diffusers_float64(ours, theirs):
    sched, ref = float64_diffusers(theirs, ours)
    x0 = torch.randn(16, 3, 4, 4, dtype=torch.float64)
    noise = torch.randn_like(x0)
    t = torch.randint(0, 1000, (16,))
    torch.testing.assert_close(add_noise(ref, x0, t, noise), sched.add_noise(x0, noise, t), rtol=1e-13, atol=1e-13)


def test_eps_to_score_on_gaussian_data():
    """For x0 ~ N(0, I), x_t ~ N(0, I) at every t, so the true score is -x_t; the optimal eps is
    sqrt(1 - alpha_bar) x_t."""
    sch = make_schedule("linear", 100)
    x_t = torch.randn(8, 2, dtype=torch.float64)
    t = torch.randint(0, 100, (8,))
    eps = (1 - sch.alpha_bar[t]).sqrt()[:, None] * x_t
    torch.testing.assert_close(eps_to_score(sch, eps, t), -x_t)


def test_epsilon_loss_is_zero_for_an_oracle_and_positive_otherwise():
    sch = make_schedule("linear", 50)
    loss = EpsilonLoss(sch)
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(32, 2)

    recorded = {}

    def oracle(x_t, t):  # recovers the noise exactly: eps = (x_t - sqrt(a) x0) / sqrt(1 - a)
        a = sch.alpha_bar[t].float()[:, None]
        recorded["eps"] = (x_t - a.sqrt() * x0) / (1 - a).sqrt()
        return recorded["eps"]

    assert loss(oracle, x0, generator=g).item() < 1e-8
    assert loss(lambda x_t, t: torch.zeros_like(x_t), x0, generator=g).item() > 0.5


@pytest.mark.parametrize("t,err,match", [
    (torch.tensor([0.5, 1.0]), TypeError, "integer steps"),
    (torch.tensor([0, 1, 2]), ValueError, r"shape \(2,\)"),
    (torch.tensor([0, 100]), ValueError, r"\[0, 99\]"),
    (-1, ValueError, r"\[0, 99\]"),
])
def test_add_noise_rejects_bad_timesteps(t, err, match):
    sch = make_schedule("linear", 100)
    x0 = torch.randn(2, 2)
    with pytest.raises(err, match=match):
        add_noise(sch, x0, t, torch.randn_like(x0))


def test_add_noise_rejects_bad_tensors():
    sch = make_schedule("linear", 10)
    with pytest.raises(TypeError, match="floating-point"):
        add_noise(sch, torch.ones(2, 2, dtype=torch.long), 0, torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected shape \(2, 2\)"):
        add_noise(sch, torch.randn(2, 2), 0, torch.randn(2, 3))
    with pytest.raises(ValueError, match="dtype torch.float32"):
        add_noise(sch, torch.randn(2, 2), 0, torch.randn(2, 2, dtype=torch.float64))


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_q_posterior_is_the_gaussian_product_of_the_two_forward_factors(name):
    """q(x_{t-1} | x_t, x0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x0): Bayes' rule for Gaussians, computed
    independently of DDPM Eq. 7 from the precisions; and at t = 0 the posterior is x0 itself."""
    from course_lib.process.diffusion import q_posterior

    schedule = make_schedule(name, 1000)
    g = torch.Generator().manual_seed(0)
    t = torch.tensor([1, 5, 100, 500, 999])
    x0, x_t = torch.randn(5, 3, 2, 2, generator=g, dtype=torch.float64), torch.randn(5, 3, 2, 2, generator=g, dtype=torch.float64)
    mean, var = q_posterior(schedule, x0, x_t, t)
    ab = schedule.alpha_bar
    ab_prev, alpha, beta = ab[t - 1].view(-1, 1, 1, 1), schedule.alphas[t].view(-1, 1, 1, 1), schedule.betas[t].view(-1, 1, 1, 1)
    precision = 1 / (1 - ab_prev) + alpha / beta
    torch.testing.assert_close(var.expand_as(mean), (1 / precision).expand_as(mean), rtol=1e-9, atol=0)
    torch.testing.assert_close(mean, (ab_prev.sqrt() * x0 / (1 - ab_prev) + alpha.sqrt() * x_t / beta) / precision,
                               rtol=1e-9, atol=1e-12)
    mean0, var0 = q_posterior(schedule, x0, x_t, 0)
    torch.testing.assert_close(mean0, x0, rtol=0, atol=1e-12)
    assert float(var0) == 0.0
    with pytest.raises(ValueError, match="share a shape"):
        q_posterior(schedule, x0, x_t[:, :1], t)
