import pytest
import torch
from torch import nn

from course_lib.training import EMA, TrainConfig, train


def _problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    w_true = torch.randn(3, 1, generator=g)
    xs = [torch.randn(32, 3, generator=g) for _ in range(40)]
    batches = [(x, x @ w_true) for x in xs]
    loss_fn = lambda model, batch: nn.functional.mse_loss(model(batch[0]), batch[1])
    return batches, loss_fn


def _model():
    torch.manual_seed(0)
    return nn.Linear(3, 1)


def test_training_reduces_the_loss_and_logs_windows():
    batches, loss_fn = _problem()
    res = train(_model(), loss_fn, iter(batches), TrainConfig(steps=40, lr=5e-2, log_every=10, progress=False))
    assert [s for s, _ in res.history] == [10, 20, 30, 40]
    assert res.history[-1][1] < 0.1 * res.history[0][1]
    assert res.steps_run == 40 and res.seconds > 0


def test_ema_is_the_exponential_average():
    model = nn.Linear(2, 2)
    ema = EMA(model, decay=0.9)
    start = ema.model.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    torch.testing.assert_close(ema.model.weight, 0.9 * start + 0.1 * model.weight)
    assert not ema.model.weight.requires_grad


def test_resume_gives_the_same_weights_as_one_run(tmp_path):
    batches, loss_fn = _problem()
    full = train(_model(), loss_fn, iter(batches), TrainConfig(steps=30, lr=1e-2, ema_decay=0.9, progress=False, warmup_steps=5, log_every=6))
    ckpt = tmp_path / "run.pt"
    first = TrainConfig(steps=12, lr=1e-2, ema_decay=0.9, progress=False, warmup_steps=5, log_every=6, checkpoint_path=ckpt)
    train(_model(), loss_fn, iter(batches), first)  # "killed" after 12 steps, checkpoint written
    second = TrainConfig(steps=30, lr=1e-2, ema_decay=0.9, progress=False, warmup_steps=5, log_every=6, checkpoint_path=ckpt)
    resumed = train(_model(), loss_fn, iter(batches[12:]), second)
    assert resumed.steps_run == 18
    torch.testing.assert_close(resumed.model.weight, full.model.weight)
    torch.testing.assert_close(resumed.ema.weight, full.ema.weight)
    assert [s for s, _ in resumed.history] == [6, 12, 18, 24, 30]
    torch.testing.assert_close(torch.tensor(resumed.history), torch.tensor(full.history))


def test_periodic_checkpoints_and_a_corrupt_checkpoint(tmp_path):
    batches, loss_fn = _problem()
    ckpt = tmp_path / "run.pt"
    train(_model(), loss_fn, iter(batches), TrainConfig(steps=10, checkpoint_path=ckpt, checkpoint_every=4, progress=False))
    assert torch.load(ckpt, weights_only=True)["step"] == 10
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="Delete it to train from scratch"):
        train(_model(), loss_fn, iter(batches), TrainConfig(steps=20, checkpoint_path=ckpt, progress=False))


def test_bf16_autocast_path_runs_on_cpu():
    batches, loss_fn = _problem()
    res = train(_model(), loss_fn, iter(batches), TrainConfig(steps=5, precision="bf16", progress=False))
    assert res.model.weight.dtype == torch.float32  # autocast leaves the master weights in fp32


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(steps=1, precision="fp8")
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(steps=1, ema_decay=1.0)
