import pytest
import torch
from torch import nn

from course_lib.training.ema import EMA
from course_lib.training.loop import TrainConfig, TrainingPaused, time_limit, train


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
    resumed = train(_model(), loss_fn, iter(batches), second)  # the stream from its start: 12 are skipped
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


def _noisy_stream(seed=0):
    """A seeded endless stream (as the recipes' image_batches) and a loss that draws its own noise
    and uses dropout: both random sources must continue, not replay, after a resume."""
    g = torch.Generator().manual_seed(seed)
    w_true = torch.randn(3, 1, generator=g)

    def batches():
        while True:
            x = torch.randn(16, 3, generator=g)
            yield x, x @ w_true

    def loss_fn(model, batch):
        x, y = batch
        return nn.functional.mse_loss(model(x + 0.1 * torch.randn_like(x)), y)
    return batches, loss_fn


def _dropout_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.2), nn.Linear(8, 1))


def _cfg(steps, ckpt=None, **kw):
    return TrainConfig(steps=steps, lr=1e-2, ema_decay=0.9, warmup_steps=4, log_every=5, progress=False,
                       checkpoint_path=ckpt, **kw)


def test_interrupted_and_resumed_run_equals_one_run(tmp_path):
    """Recipes re-seed their stream and torch on every call: resuming must continue both."""
    def run(steps, ckpt=None, **kw):
        torch.manual_seed(123)  # what every recipe does on entry
        stream, loss_fn = _noisy_stream()
        return train(_dropout_model(), loss_fn, stream(), _cfg(steps, ckpt, **kw))
    full = run(20)
    ckpt = tmp_path / "run.pt"
    run(7, ckpt)
    resumed = run(20, ckpt)
    assert resumed.steps_run == 13
    for a, b in zip(resumed.model.parameters(), full.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(resumed.ema.parameters(), full.ema.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # the 7-step run logged its last, partial window at its end; every other entry is the same
    assert [h for h in resumed.history if h[0] != 7] == full.history


def test_time_limit_pauses_at_a_checkpoint_and_the_chunks_equal_one_run(tmp_path):
    def run(ckpt=None):
        torch.manual_seed(123)
        stream, loss_fn = _noisy_stream()
        return train(_dropout_model(), loss_fn, stream(), _cfg(30, ckpt, snapshot_every=10 if ckpt else 0))
    full = run()
    ckpt = tmp_path / "run.pt"
    chunks = 0
    while True:
        try:
            with time_limit(1e-9):  # pauses after every step
                result = run(ckpt)
            break
        except TrainingPaused as paused:
            chunks += 1
            assert paused.step == chunks and paused.steps == 30 and "Run the same command" in str(paused)
    assert chunks == 29 and result.steps_run == 1
    assert result.history == full.history  # the log window in progress is kept across pauses
    for a, b in zip(result.model.parameters(), full.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert sorted(result.snapshots) == [10, 20, 30] == sorted(result.snapshot_seconds)
    assert 0 < result.snapshot_seconds[10] < result.snapshot_seconds[20] < result.snapshot_seconds[30]
    assert result.snapshots[30]["0.weight"].dtype == torch.float16
    torch.testing.assert_close(result.snapshots[30]["0.weight"].float(), result.ema[0].weight, atol=1e-3, rtol=1e-3)
    assert result.total_seconds >= result.seconds


def test_time_limit_without_a_checkpoint_is_refused():
    stream, loss_fn = _noisy_stream()
    with time_limit(60), pytest.raises(ValueError, match="checkpoint_path"):
        train(_dropout_model(), loss_fn, stream(), _cfg(5))


def test_resume_applies_a_new_learning_rate_and_says_so(tmp_path, capsys):
    stream, loss_fn = _noisy_stream()
    ckpt = tmp_path / "run.pt"
    train(_dropout_model(), loss_fn, stream(), _cfg(6, ckpt))
    stream, loss_fn = _noisy_stream()
    config = TrainConfig(steps=8, lr=1e-4, warmup_steps=4, progress=False, checkpoint_path=ckpt)
    model = _dropout_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    train(model, loss_fn, stream(), config, optimizer)
    out = capsys.readouterr().out
    assert "lr: 0.01 in the checkpoint, 0.0001 now (applied from this step on)" in out
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)  # past the warm-up: the new rate


def test_resume_with_fewer_steps_than_the_checkpoint_is_refused(tmp_path):
    stream, loss_fn = _noisy_stream()
    ckpt = tmp_path / "run.pt"
    train(_dropout_model(), loss_fn, stream(), _cfg(6, ckpt))
    with pytest.raises(ValueError, match="at step 6, past the 4 steps asked for"):
        train(_dropout_model(), loss_fn, stream(), _cfg(4, ckpt))


def test_ctrl_c_during_a_checkpointed_run_saves_and_pauses(tmp_path):
    """The first SIGINT (Ctrl-C, or a notebook's interrupt) or SIGTERM ends the step, saves, and raises
    TrainingPaused; the resumed run equals one uninterrupted run."""
    import os
    import signal

    def run(ckpt=None, interrupt_at=None):
        torch.manual_seed(123)
        stream, loss_fn = _noisy_stream()
        calls = []

        def interrupting_loss(model, batch):
            calls.append(1)
            if len(calls) == interrupt_at:
                os.kill(os.getpid(), signal.SIGINT)  # delivered now; handled at the end of this step
            return loss_fn(model, batch)
        return train(_dropout_model(), interrupting_loss, stream(), _cfg(12, ckpt))
    full = run()
    ckpt = tmp_path / "run.pt"
    with pytest.raises(TrainingPaused, match="paused at step 5 of 12"):
        run(ckpt, interrupt_at=5)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    resumed = run(ckpt)
    assert resumed.steps_run == 7
    for a, b in zip(resumed.model.parameters(), full.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_long_run_says_how_long_the_rest_takes(tmp_path, capsys, monkeypatch):
    """After its first ETA_AFTER_STEPS steps, a run expected to take longer than ETA_MIN_SECONDS prints the time
    left at that rate (what a laptop user sees before hours of training); a short one says nothing."""
    from course_lib.training import loop
    batches, loss_fn = _problem()
    train(_model(), loss_fn, iter(batches), TrainConfig(steps=40, lr=5e-2, progress=True))
    assert "steps left" not in capsys.readouterr().out  # seconds, not minutes: the bar is enough
    monkeypatch.setattr(loop, "ETA_MIN_SECONDS", 0.0)
    train(_model(), loss_fn, iter(batches), TrainConfig(steps=40, lr=5e-2, progress=True,
                                                          checkpoint_path=tmp_path / "run.pt"))
    out = capsys.readouterr().out
    assert out.count("steps left") == 1 and "for the 30 steps left" in out and "over the first 10 here" in out
    assert "the checkpoint resumes it exactly" in out
