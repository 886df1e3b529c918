"""The CIFAR-10 classifier (course_lib.models.classifier), its losses, the crop augmentation, and
evaluate_classifier: shapes and sizes, time conditioning, a few training steps reduce the loss."""

import pytest
import torch
from torch import nn

from course_lib.data import image_batches, random_crop
from course_lib.process.classifier_guidance import ClassifierLoss, NoisyClassifierLoss
from course_lib.models import Classifier, ClassifierConfig
from course_lib.recipes.ch05_cfg import _refresh_batchnorm, evaluate_classifier
from course_lib.process.schedules import make_schedule
from course_lib.training.loop import TrainConfig, train


def _params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("config", [ClassifierConfig.tiny(), ClassifierConfig.tiny(image_size=16, num_classes=4)])
def test_logits_have_one_row_per_image(config):
    x = torch.randn(5, 3, config.image_size, config.image_size)
    assert Classifier(config).eval()(x).shape == (5, config.num_classes)


def test_named_sizes():
    assert 0.2e6 < _params(Classifier(ClassifierConfig.tiny())) < 1e6
    assert 6e6 < _params(Classifier(ClassifierConfig.standard())) < 7e6  # Page's ResNet-9: 6.57M
    assert 1.5e6 < _params(Classifier(ClassifierConfig.small())) < 1.8e6  # half width: a quarter


def test_time_conditioning_changes_the_output_and_is_checked():
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig.tiny(image_size=8, time_conditioned=True)).eval()
    x = torch.randn(4, 3, 8, 8)
    early, late = model(x, torch.zeros(4, dtype=torch.long)), model(x, torch.full((4,), 999))
    assert early.shape == (4, 10) and not torch.allclose(early, late)
    with pytest.raises(ValueError, match="time-conditioned: call it as model"):
        model(x)
    with pytest.raises(ValueError, match=r"t must be a tensor of shape \(4,\)"):
        model(x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="not time-conditioned"):
        Classifier(ClassifierConfig.tiny(image_size=8))(x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3, 8, 8\)"):
        model(torch.randn(4, 3, 16, 16), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible by 8"):
        ClassifierConfig(image_size=12)


def _colour_problem(n=256, seed=0):
    """Three classes told apart by which colour channel is brightest, on noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = 0.5 * torch.randn(n, 3, 8, 8, generator=g)
    x[torch.arange(n), y] += 1.0
    return x, y


@pytest.mark.parametrize("noisy", [False, True])
def test_a_few_training_steps_reduce_the_loss(noisy):
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig.tiny(image_size=8, num_classes=3, time_conditioned=noisy))
    x, y = _colour_problem()
    loss = NoisyClassifierLoss(make_schedule("linear", 1000)) if noisy else ClassifierLoss(label_smoothing=0.1)
    batches = ((x[i:i + 32], y[i:i + 32]) for _ in range(100) for i in range(0, 256, 32))
    res = train(model, loss, batches, TrainConfig(steps=40, lr=3e-3, log_every=10, ema_decay=0.9, progress=False))
    assert res.history[-1][1] < 0.8 * res.history[0][1], res.history
    _refresh_batchnorm(res.ema, loss, iter([(x[:64], y[:64])] * 50))
    norm = next(m for m in res.ema.modules() if isinstance(m, nn.BatchNorm2d))
    assert int(norm.num_batches_tracked) == 50 and norm.momentum == 0.1 and not res.ema.training


def test_random_crop_is_a_window_of_the_reflection_padded_image():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 8, 8, generator=g)
    out = random_crop(x, 2, generator=g)
    padded = nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    for i in range(6):  # each output is one of the 25 windows of its own padded image
        assert any(torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8]) for dy in range(5) for dx in range(5))
    with pytest.raises(ValueError, match="padding must lie in"):
        random_crop(x, 8)


def test_image_batches_without_crop_draw_as_before():
    images = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(20)
    a = next(image_batches(images, 5, labels=labels, generator=torch.Generator().manual_seed(0)))
    b = next(image_batches(images, 5, labels=labels, generator=torch.Generator().manual_seed(0), crop=0))
    c = next(image_batches(images, 5, labels=labels, generator=torch.Generator().manual_seed(0), crop=2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(a[1], c[1])
    assert c[0].shape == (5, 3, 8, 8) and not torch.equal(a[0], c[0])
    with pytest.raises(ValueError, match="crop must lie in"):
        next(image_batches(images, 5, crop=8))


class Threshold(nn.Module):
    """Class 1 where the first pixel is bright, class 0 elsewhere."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        bright = (x[:, 0, 0, 0] > 0).float()
        return torch.stack([1 - bright, bright], dim=1)


def test_evaluate_classifier_on_uint8_and_float_images():
    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    images[:2] = 255
    labels = torch.tensor([1, 1, 0, 1])  # three of four right
    assert evaluate_classifier(Threshold(), images, labels, batch_size=3) == 0.75
    assert evaluate_classifier(Threshold(), images.float() / 127.5 - 1, labels) == 0.75
    with pytest.raises(ValueError, match="labels must have shape"):
        evaluate_classifier(Threshold(), images, labels[:3])
