"""Guidance (course_lib.process.guidance): classifier-free guidance as one batched pass equals two passes, its
limits w = 0 and w = 1, negative guidance, label dropout's rate, classifier guidance's gradient (closed
form and finite differences), CFG rescale, the guidance interval, the samplers, and clear errors."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from course_lib.process.diffusion import PredictionLoss
from course_lib.samplers.ddim import ddim_sample, timesteps
from course_lib.process.guidance import LabelDropoutLoss, cfg_model, drop_labels, guided_eps, rescale_guidance
from course_lib.process.classifier_guidance import (NoisyClassifierLoss, classifier_guided_eps,
                                                    classifier_guided_model, log_prob_grad)
from course_lib.models import Classifier, ClassifierConfig, UNet, UNetConfig
from course_lib.samplers.ode import dpm_solver_timesteps, dpmpp_2m_sample
from course_lib.samplers.ddpm import ddpm_sample
from course_lib.process.schedules import make_schedule

K = 3  # classes of the tiny models; label K is the null class


@pytest.fixture(scope="module")
def unet():
    """A tiny class-conditional U-Net in float64 whose zero-initialized layers are made random (so that
    its output depends on x_t, t and y)."""
    torch.manual_seed(0)
    model = UNet(UNetConfig.tiny(image_size=8, num_classes=K)).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            if not p.abs().sum():
                p.normal_(0, 0.2)
    return model


class Counting:
    """Calls ``model`` and records the batch size of every call (how many forward passes, of what size)."""

    def __init__(self, model):
        self.model, self.config, self.batches = model, model.config, []

    def __call__(self, x_t, t, y):
        self.batches.append(x_t.shape[0])
        return self.model(x_t, t, y)


def _inputs(B=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 1000, (B,), generator=g),
            torch.arange(B) % K)


def _branches(unet, x, t, y, y_uncond=None):
    """eps_cond and eps_uncond from two separate forward passes."""
    with torch.no_grad():
        return unet(x, t, y), unet(x, t, torch.full_like(y, K) if y_uncond is None else y_uncond)


# ---- classifier-free guidance -----------------------------------------------------------------------

@pytest.mark.parametrize("w", [3.0, 0.5, -0.5, torch.tensor([0.0, 1.0, 2.5, 7.5], dtype=torch.float64)])
def test_batched_cfg_equals_two_separate_passes(unet, w):
    x, t, y = _inputs()
    eps_c, eps_u = _branches(unet, x, t, y)
    assert (eps_c - eps_u).abs().mean() > 1e-2  # the label matters, so the test can tell the branches apart
    model = Counting(unet)
    with torch.no_grad():
        eps = cfg_model(model, y, w)(x, t)
    wb = w.view(-1, 1, 1, 1) if isinstance(w, torch.Tensor) else w
    torch.testing.assert_close(eps, eps_u + wb * (eps_c - eps_u), rtol=1e-10, atol=1e-12)
    assert model.batches == [2 * len(x)]  # one forward pass of the doubled batch


def test_w0_is_unconditional_and_w1_conditional_in_one_pass(unet):
    x, t, y = _inputs()
    eps_c, eps_u = _branches(unet, x, t, y)
    for w, expected in [(0.0, eps_u), (1.0, eps_c), (1, eps_c)]:
        model = Counting(unet)
        with torch.no_grad():
            torch.testing.assert_close(cfg_model(model, y, w)(x, t), expected, rtol=1e-12, atol=1e-12)
        assert model.batches == [len(x)]  # the shortcut: one pass of the batch, not of the doubled batch
    with torch.no_grad():  # per-sample w = 0 and 1 take the batched path: the same answers
        eps = cfg_model(unet, y, torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64))(x, t)
    torch.testing.assert_close(eps[0::2], eps_u[0::2], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(eps[1::2], eps_c[1::2], rtol=1e-10, atol=1e-12)


def test_an_int_label_means_that_class_for_every_sample(unet):
    x, t, _ = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(cfg_model(unet, 2, 4.0)(x, t), cfg_model(unet, torch.full((4,), 2), 4.0)(x, t))


def test_negative_guidance_replaces_the_unconditional_branch(unet):
    x, t, y = _inputs()
    y_neg = (y + 1) % K
    eps_c, eps_neg = _branches(unet, x, t, y, y_uncond=y_neg)
    with torch.no_grad():
        torch.testing.assert_close(cfg_model(unet, y, 2.0, y_neg=y_neg)(x, t), eps_neg + 2.0 * (eps_c - eps_neg),
                                   rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(cfg_model(unet, y, 0.0, y_neg=y_neg)(x, t), eps_neg, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (2, 5), (3, 4, 16, 16)])
def test_guided_eps_is_the_papers_form_with_w_plus_one(shape):
    g = torch.Generator().manual_seed(0)
    eps_c, eps_u = (torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(2))
    for w_paper in (0.0, 0.1, 3.0):  # CFG Eq. 6: (1 + w') eps_c - w' eps_u
        torch.testing.assert_close(guided_eps(eps_c, eps_u, 1 + w_paper), (1 + w_paper) * eps_c - w_paper * eps_u)
    w = torch.linspace(-1, 4, shape[0], dtype=torch.float64)
    expected = torch.stack([eps_u[i] + w[i] * (eps_c[i] - eps_u[i]) for i in range(shape[0])])
    torch.testing.assert_close(guided_eps(eps_c, eps_u, w), expected)


def test_rescale_with_phi_0_is_plain_cfg_and_phi_1_matches_the_conditional_std(unet):
    x, t, y = _inputs()
    eps_c, eps_u = _branches(unet, x, t, y)
    with torch.no_grad():
        plain, rescaled = cfg_model(unet, y, 5.0)(x, t), cfg_model(unet, y, 5.0, phi=1.0)(x, t)
        torch.testing.assert_close(cfg_model(unet, y, 5.0, phi=0.0)(x, t), plain, rtol=0, atol=0)
        half = cfg_model(unet, y, 5.0, phi=0.5)(x, t)
    torch.testing.assert_close(plain, guided_eps(eps_c, eps_u, 5.0), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(rescaled.flatten(1).std(1), eps_c.flatten(1).std(1), rtol=1e-10, atol=1e-12)
    assert not torch.allclose(plain.flatten(1).std(1), eps_c.flatten(1).std(1), rtol=1e-3)  # CFG inflates it
    torch.testing.assert_close(half, 0.5 * rescaled + 0.5 * plain, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(rescale_guidance(plain, eps_c, 0.0), plain)


def test_guidance_interval_gives_the_conditional_prediction_outside_it(unet):
    """Outside [t_lo, t_hi] the guided model is the conditional model (w = 1), as in Kynkäänniemi et
    al. 2024: guidance is switched off, not the condition."""
    x, _, y = _inputs()
    t = torch.tensor([10, 400, 950, 999])
    eps_c, eps_u = _branches(unet, x, t, y)
    with torch.no_grad():
        eps = cfg_model(unet, y, 3.0, interval=(400, 950))(x, t)
    inside = torch.tensor([False, True, True, False])
    torch.testing.assert_close(eps[~inside], eps_c[~inside], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(eps[inside], guided_eps(eps_c, eps_u, 3.0)[inside], rtol=1e-10, atol=1e-12)
    model = Counting(unet)
    with torch.no_grad():  # no sample inside: one conditional pass
        torch.testing.assert_close(cfg_model(model, y, 3.0, interval=(0, 5))(x, t), eps_c, rtol=1e-12, atol=1e-12)
    assert model.batches == [len(x)]


def test_every_sampler_takes_the_guided_model(unet):
    schedule = make_schedule("linear", 20)
    x_T = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    guided = cfg_model(unet, torch.tensor([0, 2]), 3.0, interval=(5, 15), phi=0.7)
    for out in (ddim_sample(guided, schedule, x_T, timesteps(20, 4)),
                dpmpp_2m_sample(guided, schedule, x_T, dpm_solver_timesteps(20, 4)),
                ddpm_sample(guided, schedule, x_T, generator=torch.Generator().manual_seed(0))):
        assert out.shape == x_T.shape and torch.isfinite(out).all()


# ---- label dropout ---------------------------------------------------------------------------------

def test_label_dropout_drops_at_the_stated_rate_and_never_at_p_0():
    n, p = 200_000, 0.1
    y = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(0))
    dropped = drop_labels(y, p, 10, generator=torch.Generator().manual_seed(1))
    rate = (dropped == 10).double().mean().item()
    assert abs(rate - p) < 5 * (p * (1 - p) / n) ** 0.5  # within 5 standard errors
    kept = dropped != 10
    assert torch.equal(dropped[kept], y[kept])  # the other labels are untouched
    assert torch.equal(drop_labels(y, 0.0, 10, generator=torch.Generator().manual_seed(2)), y)
    assert torch.equal(drop_labels(y, 0.0, 10, u=torch.zeros(n)), y)  # not even at u = 0
    assert (drop_labels(y, 1.0, 10) == 10).all()
    again = drop_labels(y, p, 10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again, dropped)  # reproducible under a seeded generator


class LabelEcho(nn.Module):
    """A class-conditional stand-in whose prediction depends on the label; it records the labels it sees."""

    def __init__(self):
        super().__init__()
        self.config, self.seen = SimpleNamespace(num_classes=K), []

    def forward(self, x_t, t, y):
        self.seen.append(y.clone())
        return 0.5 * x_t + y.to(x_t.dtype).view(-1, *([1] * (x_t.ndim - 1)))


def test_label_dropout_loss_is_prediction_loss_on_the_dropped_labels():
    schedule = make_schedule("linear", 1000)
    x0, y = torch.randn(20_000, 2), torch.randint(0, K, (20_000,))
    model = LabelEcho()
    loss = LabelDropoutLoss(schedule, p_uncond=0.1)(model, (x0, y), generator=torch.Generator().manual_seed(0))
    seen = model.seen[-1]
    assert abs((seen == K).float().mean().item() - 0.1) < 5 * (0.09 / 20_000) ** 0.5
    g = torch.Generator().manual_seed(0)  # replay: the labels are dropped first, then t and the noise drawn
    y_dropped = drop_labels(y, 0.1, K, generator=g)
    assert torch.equal(y_dropped, seen)
    expected = PredictionLoss(schedule)(lambda x_t, t: model(x_t, t, y_dropped), x0, generator=g)
    torch.testing.assert_close(loss, expected, rtol=0, atol=0)
    LabelDropoutLoss(schedule, p_uncond=0.0, target="v")(model, [x0, y])
    assert torch.equal(model.seen[-1], y)


def test_label_dropout_loss_trains_a_class_conditional_unet():
    from course_lib.training.loop import TrainConfig, train

    torch.manual_seed(0)
    model = UNet(UNetConfig.tiny(image_size=8, num_classes=K))
    g = torch.Generator().manual_seed(0)
    batches = iter([(torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, K, (8,), generator=g)) for _ in range(3)])
    res = train(model, LabelDropoutLoss(make_schedule("linear", 1000)), batches, TrainConfig(steps=3, progress=False))
    assert res.steps_run == 3 and all(torch.isfinite(torch.tensor(loss)) for _, loss in res.history)


# ---- classifier guidance -----------------------------------------------------------------------------

class LinearSoftmax(nn.Module):
    """logits = W flatten(x): grad_x log p(y | x) = W_y - sum_k p_k W_k in closed form."""

    def __init__(self, dim, classes=K):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.W = nn.Parameter(torch.randn(classes, dim, dtype=torch.float64, generator=g))

    def forward(self, x, t):
        return x.flatten(1) @ self.W.T


def test_classifier_guidance_closed_form_for_a_linear_classifier():
    schedule = make_schedule("cosine", 1000)
    x, t, y = _inputs()
    eps = torch.randn_like(x)
    clf = LinearSoftmax(3 * 8 * 8).eval()
    p = torch.softmax(x.flatten(1) @ clf.W.T, dim=1)  # (B, K)
    grad = (clf.W[y] - p @ clf.W).view_as(x)  # W_y - sum_k p_k W_k
    a_bar = schedule.alpha_bar[t].view(-1, 1, 1, 1)
    with torch.no_grad():  # as inside a sampler
        guided = classifier_guided_eps(eps, x, t, clf, y, 2.5, schedule.alpha_bar)
    torch.testing.assert_close(guided, eps - 2.5 * (1 - a_bar).sqrt() * grad)  # D&N Eq. 14
    torch.testing.assert_close(classifier_guided_eps(eps, x, t, clf, y, 0.0, schedule.alpha_bar), eps)


def test_classifier_guidance_gradient_against_finite_differences():
    torch.manual_seed(0)
    clf = Classifier(ClassifierConfig.tiny(image_size=8, time_conditioned=True)).double().eval()
    x, t, y = _inputs(B=3)
    grad = log_prob_grad(clf, x, t, y)

    def log_p(z):
        return torch.log_softmax(clf(z, t), dim=1).gather(1, y[:, None]).squeeze(1)  # (B,)

    g, h = torch.Generator().manual_seed(5), 1e-6
    for _ in range(3):
        v = torch.randn(x.shape, generator=g, dtype=torch.float64)
        with torch.no_grad():
            fd = (log_p(x + h * v) - log_p(x - h * v)) / (2 * h)  # (B,) directional derivatives
        torch.testing.assert_close((grad * v).flatten(1).sum(1), fd, rtol=1e-5, atol=1e-7)
    alone = torch.cat([log_prob_grad(clf, x[i:i + 1], t[i:i + 1], y[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(grad, alone)  # each sample's gradient depends on that sample alone


def test_classifier_guided_model_in_a_sampler():
    torch.manual_seed(0)
    schedule = make_schedule("linear", 20)
    denoiser = UNet(UNetConfig.tiny(image_size=8)).eval()
    clf = Classifier(ClassifierConfig.tiny(image_size=8, time_conditioned=True)).eval()
    x_T = torch.randn(2, 3, 8, 8)
    guided = classifier_guided_model(denoiser, clf, 1, 10.0, schedule.alpha_bar)
    plain = ddim_sample(denoiser, schedule, x_T, timesteps(20, 4))
    steered = ddim_sample(guided, schedule, x_T, timesteps(20, 4))
    assert torch.isfinite(steered).all() and not torch.allclose(plain, steered)


def test_noisy_classifier_loss_feeds_noised_images_and_their_steps():
    seen = []

    def clf(x, t):
        seen.append((x, t))
        return torch.zeros(x.shape[0], K, requires_grad=True)

    x0 = torch.zeros(6, 3, 8, 8)
    loss = NoisyClassifierLoss(make_schedule("linear", 1000))(clf, (x0, torch.zeros(6, dtype=torch.long)))
    (x_t, t), = seen
    assert t.shape == (6,) and t.dtype == torch.long and x_t.std() > 0  # noised, at sampled steps
    torch.testing.assert_close(loss, torch.log(torch.tensor(float(K))))  # uniform logits: log K


# ---- errors -----------------------------------------------------------------------------------------

def test_bad_inputs_raise_clear_errors(unet):
    x, t, y = _inputs()
    e = torch.zeros(4, 3, 8, 8)
    schedule = make_schedule("linear", 1000)
    cases = [
        (lambda: guided_eps(e, e[:2], 1.0), ValueError, "share a shape"),
        (lambda: guided_eps(e, e, float("nan")), ValueError, "w must be finite"),
        (lambda: guided_eps(e, e, torch.tensor([1.0, float("inf"), 1.0, 1.0])), ValueError, "w must be finite"),
        (lambda: guided_eps(e, e, torch.ones(3)), ValueError, "the batch holds 4 samples"),
        (lambda: guided_eps(e, e, "7.5"), TypeError, "w must be a float"),
        (lambda: cfg_model(unet, torch.tensor([0, 1, 2, K]), 2.0), ValueError, r"labels in \[0, 2\].*null class"),
        (lambda: cfg_model(unet, -1, 2.0), ValueError, "y must be a label in"),
        (lambda: cfg_model(unet, y, 2.0, y_neg=K), ValueError, "y_neg must be a label in"),
        (lambda: cfg_model(unet, y.float(), 2.0), TypeError, "integer tensor"),
        (lambda: cfg_model(unet, y, float("inf")), ValueError, "w must be finite"),
        (lambda: cfg_model(unet, y, 2.0, phi=1.5), ValueError, "phi must be a number in"),
        (lambda: cfg_model(unet, y, 2.0, interval=(900, 100)), ValueError, "t_lo <= t_hi"),
        (lambda: cfg_model(lambda x, t, y: x, y, 2.0), ValueError, "config.num_classes"),
        (lambda: cfg_model(unet, y[:2], 2.0)(x, t), ValueError, "x_t holds 4 samples"),
        (lambda: drop_labels(y, 1.5, K), ValueError, "p_uncond must be a number in"),
        (lambda: drop_labels(y, 0.1, K, u=torch.rand(3)), ValueError, "u must have y's shape"),
        (lambda: LabelDropoutLoss(schedule, p_uncond=-0.1), ValueError, "p_uncond"),
        (lambda: LabelDropoutLoss(schedule)(unet, x.float()), TypeError, "pair"),
        (lambda: LabelDropoutLoss(schedule)(unet, (x, y + K)), ValueError, "labels in"),
        (lambda: LabelDropoutLoss(schedule)(lambda x_t, t, y: x_t, (x, y)), ValueError, "num_classes"),
        (lambda: classifier_guided_eps(e[:2], x, t, LinearSoftmax(192).eval(), y, 1.0, schedule.alpha_bar), ValueError,
         "share a shape"),
        (lambda: classifier_guided_eps(x, x, t, LinearSoftmax(192).train(), y, 1.0, schedule.alpha_bar), ValueError,
         r"classifier.eval\(\)"),
        (lambda: classifier_guided_eps(x, x, t, LinearSoftmax(192).eval(), y, -1.0, schedule.alpha_bar), ValueError,
         "scale must be"),
        (lambda: classifier_guided_eps(x, x, t, LinearSoftmax(192).eval(), y, 1.0, schedule.alpha_bar[t]), ValueError,
         "alpha_bar must be"),
        (lambda: classifier_guided_eps(x, x, t, LinearSoftmax(192).eval(), y + 1, 1.0, schedule.alpha_bar), ValueError,
         "labels in"),
    ]
    for fn, error, message in cases:
        with pytest.raises(error, match=message):
            fn()
