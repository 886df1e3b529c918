"""The training clock leaves out the time a process was stopped (kill -STOP ... kill -CONT), so that a paused
CPU training records its real training time."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from course_lib.training import clock as clock_module
from course_lib.training.clock import ActiveClock

ROOT = Path(__file__).resolve().parents[2]


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


@pytest.fixture
def fake_time(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(clock_module.time, "perf_counter", fake.perf_counter)
    return fake


def run_steps(clock, fake, durations, continued_after=None):
    for i, d in enumerate(durations):
        fake.now += d
        if i == continued_after:
            clock.continued = True  # what the SIGCONT handler does
        clock.step_done()


@pytest.mark.parametrize("flag_in_next_step", [False, True])
def test_a_stop_counts_as_one_ordinary_step(fake_time, flag_in_next_step):
    clock = ActiveClock()
    # ten 1-s steps; the fifth holds a 100-s stop, and the SIGCONT reaches Python in that step or the next
    durations = [1.0] * 4 + [101.0] + [1.0] * 5
    run_steps(clock, fake_time, durations, continued_after=5 if flag_in_next_step else 4)
    assert clock.elapsed() == pytest.approx(10.0)


def test_without_a_stop_the_clock_is_wall_time(fake_time):
    clock = ActiveClock()
    run_steps(clock, fake_time, [1.0, 3.0, 2.0])  # uneven steps (a second job on the cores) stay counted
    assert clock.elapsed() == pytest.approx(6.0)


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals")
def test_a_training_stopped_for_two_seconds_does_not_count_them(tmp_path):
    """A real run of course_lib's train(), stopped with SIGSTOP for 2 s and continued."""
    script = textwrap.dedent("""
        import sys, time, torch
        from torch import nn
        from course_lib.training.loop import TrainConfig, train
        model = nn.Linear(2, 1)
        calls = []
        def loss_fn(m, x):
            if not calls:
                t0.append(time.perf_counter())
                print("training", flush=True)  # the loop has begun: the parent stops us now
            calls.append(1)
            time.sleep(0.05)
            return m(x).pow(2).mean()
        batches = iter(lambda: torch.ones(4, 2), None)
        t0 = []
        result = train(model, loss_fn, batches, TrainConfig(steps=60, progress=False, ema_decay=0.5))
        print(f"{time.perf_counter() - t0[0]:.3f} {result.seconds:.3f}", flush=True)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "training"
    time.sleep(0.5)
    proc.send_signal(signal.SIGSTOP)
    time.sleep(2.0)
    proc.send_signal(signal.SIGCONT)
    out, _ = proc.communicate(timeout=60)
    wall, counted = map(float, out.split())
    assert wall > 4.8  # 60 steps of 50 ms, and the 2-s stop
    assert 2.9 < counted < wall - 1.8
