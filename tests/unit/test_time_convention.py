"""The course's one time convention (notation page): integer steps t in {0..T-1}, t = 0 nearest
the data and t = T-1 the noisiest; continuous s = (t + 1) / T; samplers run from T-1 down to 0."""

import torch

from course_lib.process.diffusion import add_noise
from course_lib.samplers.ddpm import ddpm_sample
from course_lib.process.schedules import make_schedule


def test_step_zero_is_data_and_last_step_is_noise():
    sch = make_schedule("linear", 1000)
    x0 = torch.randn(4096, 2, dtype=torch.float64)
    noise = torch.randn_like(x0)
    assert sch.alpha_bar[0].item() > 0.9998 and sch.alpha_bar[-1].item() < 1e-4
    # t = 0: sqrt(1 - 1e-4) x0 + 0.01 eps, so |x_0 - x0| <= 0.01 |eps| + 5e-5 |x0|
    assert torch.allclose(add_noise(sch, x0, 0, noise), x0, atol=0.06)
    # t = T-1: sqrt(4e-5) x0 + ~eps, so |x_{T-1} - eps| <= 0.0064 |x0| + 2e-5 |eps|
    assert torch.allclose(add_noise(sch, x0, 999, noise), noise, atol=0.04)


def test_continuous_time_mapping():
    sch = make_schedule("cosine", 50)
    s = sch.continuous_time(torch.arange(50))
    assert s[0].item() == 1 / 50 and s[-1].item() == 1.0
    assert bool((s[1:] > s[:-1]).all())


def test_sampler_visits_every_step_from_noisiest_to_data():
    sch = make_schedule("linear", 20)
    seen = []

    def model(x, t):
        seen.append(int(t[0]))
        assert bool((t == t[0]).all()) and t.dtype == torch.long
        return torch.zeros_like(x)

    ddpm_sample(model, sch, torch.randn(3, 2))
    assert seen == list(range(19, -1, -1))
