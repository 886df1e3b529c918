"""Editing samplers (course_lib.samplers.editing): SDEdit step for step equal to a loop over diffusers' DDIMScheduler
with the img2img pipeline's rule for which steps run (float64), its limits; inpainting keeps the known
region exactly and takes the rest from the model."""

import pytest
import torch

from course_lib.process.diffusion import add_noise
from course_lib.samplers.editing import img2img_timesteps, inpaint, sdedit
from course_lib.samplers.ddim import ddim_sample, timesteps
from course_lib.process.schedules import make_schedule

diffusers = pytest.importorskip("diffusers")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

T = 1000
SHAPE = (3, 4, 4, 4)


def linear_model(seed=0, dim=64):
    """A fixed random linear map of x plus a fixed random embedding of t: the same (x, t) -> eps everywhere."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(dim, dim, generator=g, dtype=torch.float64) / dim ** 0.5
    emb = 0.5 * torch.randn(T, dim, generator=g, dtype=torch.float64)
    return lambda x, t: (x.flatten(1) @ W.to(x) + emb[t].to(x)).reshape(x.shape)


def pixelwise_model(seed=0, C=4):
    """A fixed random 1x1 map over channels plus an embedding of t: each pixel's output depends on it alone."""
    g = torch.Generator().manual_seed(seed)
    W, emb = torch.randn(C, C, generator=g, dtype=torch.float64) / C ** 0.5, torch.randn(T, C, generator=g)
    return lambda x, t: torch.einsum("dc,bchw->bdhw", W.to(x), x) + emb[t].to(x)[:, :, None, None]


def _rand(seed):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def diffusers_img2img(model, x0, noise, N, strength, eta, ddim_noise):
    """diffusers' img2img loop: StableDiffusionImg2ImgPipeline.get_timesteps, add_noise at the first
    step run, DDIMScheduler.step for each; their float32 schedule swapped for our float64 one."""
    ref = make_schedule("linear", T)
    sched = diffusers.DDIMScheduler(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                                    clip_sample=False, set_alpha_to_one=True, steps_offset=0,
                                    timestep_spacing="leading", prediction_type="epsilon")
    torch.testing.assert_close(sched.alphas_cumprod.double(), ref.alpha_bar, rtol=1e-4, atol=1e-6)
    sched.betas, sched.alphas, sched.alphas_cumprod = ref.betas, ref.alphas, ref.alpha_bar
    sched.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    sched.set_timesteps(N)
    init_timestep = min(int(N * strength), N)  # get_timesteps
    t_start = max(N - init_timestep, 0)
    steps = sched.timesteps[t_start * sched.order:]
    if len(steps) == 0:
        return x0
    x = sched.add_noise(x0, noise, steps[:1].repeat(x0.shape[0]))
    for i, t in enumerate(steps):
        eps = model(x, torch.full((x.shape[0],), int(t), dtype=torch.long))
        x = sched.step(eps, t, x, eta=eta, variance_noise=ddim_noise[i] if eta > 0 else None).prev_sample
    return x


@pytest.mark.parametrize("N, strength, eta", [(10, 0.75, 0.0), (10, 1.0, 0.0), (50, 0.3, 0.0), (20, 0.55, 0.5),
                                              (7, 0.8, 0.0), (10, 0.0, 0.0)])
def test_sdedit_equals_diffusers_img2img(N, strength, eta):
    model, x0, noise = linear_model(), _rand(1), _rand(2)
    g = torch.Generator().manual_seed(3)
    ddim_noise = [torch.randn(SHAPE, generator=g, dtype=torch.float64) for _ in range(N)]  # as sdedit draws them
    theirs = diffusers_img2img(model, x0, noise, N, strength, eta, ddim_noise)
    ours = sdedit(model, make_schedule("linear", T), x0, timesteps(T, N), strength, noise, eta=eta,
                  generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_img2img_timesteps_and_limits():
    ts = timesteps(T, 10)
    assert img2img_timesteps(ts, 0.75).tolist() == ts[3:].tolist()  # int(7.5) = 7 steps
    assert img2img_timesteps(ts, 0.0).numel() == 0 and torch.equal(img2img_timesteps(ts, 1.0), ts)
    model, schedule, x0, noise = linear_model(), make_schedule("linear", T), _rand(1), _rand(2)
    assert sdedit(model, schedule, x0, ts, 0.0, noise) is x0  # strength 0: nothing to do
    full = sdedit(model, schedule, x0, ts, 1.0, noise)
    torch.testing.assert_close(full, ddim_sample(model, schedule, add_noise(schedule, x0, int(ts[0]), noise), ts))
    with pytest.raises(ValueError, match="strength"):
        img2img_timesteps(ts, 1.5)


def test_inpainting_keeps_the_known_region_and_fills_the_rest_from_the_model():
    model, schedule, x0, x_T = pixelwise_model(), make_schedule("linear", T), _rand(1), _rand(2)
    known = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    known[..., :2] = True  # the left half is kept
    ts = timesteps(T, 20)
    out = inpaint(model, schedule, x0, known, x_T, ts, generator=torch.Generator().manual_seed(0))
    k = known.expand(SHAPE)
    assert torch.equal(out[k], x0[k])  # exactly x0, not nearly
    plain = ddim_sample(model, schedule, x_T, ts)  # each pixel on its own: the unknown pixels never see x0
    torch.testing.assert_close(out[~k], plain[~k], rtol=1e-10, atol=1e-12)
    assert not torch.allclose(out[~k], x0[~k])
    mixing = linear_model()  # mixes pixels: the unknown region now depends on the known one
    out = inpaint(mixing, schedule, x0, known, x_T, ts, eta=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[k], x0[k]) and not torch.allclose(out[~k], ddim_sample(mixing, schedule, x_T, ts)[~k])
    with pytest.raises(ValueError, match="broadcast"):
        inpaint(model, schedule, x0, torch.ones(2, 1, 3, 3), x_T, ts)
