"""The training loop every chapter uses: EMA, mixed precision, gradient clipping, optional
torch.compile, a progress bar, periodic loss logging, and checkpoint save/resume.

Resuming is exact: a run interrupted at step k and resumed equals one uninterrupted run. The
checkpoint holds the weights, EMA, optimizer, learning-rate schedule, gradient scaler, loss
history and torch's random state (loss draws, dropout); ``batches`` is replayed from its start
and its first k batches are drawn and discarded, so a seeded stream continues where it stopped.
``time_limit(seconds)`` makes long runs stop at a checkpoint and raise ``TrainingPaused``, so a
run of many hours is trained in chunks (``scripts/train.py``).

``loss_fn(model, batch) -> scalar`` is the only chapter-specific piece (losses take the model).

The same loop runs under ``torchrun`` (DistributedDataParallel, see ``course_lib.training.distributed``):
``batches`` then yields the same global batch on every rank, each rank trains on its 1/N of
the rows, DDP averages the gradients, the weights and EMA stay identical on every rank, the
logged loss is the mean over ranks, and rank 0 alone writes checkpoints and shows progress.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..course.device import autocast_dtype
from ..training import distributed as dist
from .checkpoint import _save_on_main, _State, load_checkpoint
from .clock import ActiveClock
from .ema import EMA

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    steps: int
    lr: float = 2e-4  # DDPM's CIFAR-10 learning rate
    weight_decay: float = 0.0
    warmup_steps: int = 0  # linear learning-rate warm-up (DDPM: 5000)
    grad_clip: float | None = 1.0  # DDPM clips the gradient norm at 1
    ema_decay: float = 0.9999  # DDPM's EMA decay
    precision: str = "auto"  # auto = bf16 on GPUs that have it, fp16 + grad scaling on older ones, fp32 on CPU
    compile: bool = False  # wrap the model in torch.compile for the forward/backward passes
    log_every: int = 100  # record the mean loss of each window of this many steps
    checkpoint_path: str | os.PathLike | None = None  # resume from it if it exists; save to it
    checkpoint_every: int = 0  # also save every this many steps (0: only at the end)
    snapshot_every: int = 0  # keep the EMA weights (fp16) every this many steps, for "samples over training"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.snapshot_every < 0 or self.checkpoint_every < 0:
            raise ValueError("checkpoint_every and snapshot_every must be >= 0")
        if self.snapshot_every and self.checkpoint_path is None:
            raise ValueError("snapshot_every needs a checkpoint_path (the snapshots are kept in the checkpoint)")


class TrainingPaused(RuntimeError):
    """Raised when ``time_limit`` ran out, or on Ctrl-C / SIGTERM during a checkpointed run: the checkpoint
    holds step ``step`` of ``steps``."""

    def __init__(self, path: Path, step: int, steps: int, seconds_per_step: float):
        self.path, self.step, self.steps, self.seconds_per_step = path, step, steps, seconds_per_step
        left = (steps - step) * seconds_per_step
        super().__init__(f"paused at step {step:,} of {steps:,} (checkpoint {path}); about {left / 3600:.1f} h "
                         f"of training left at {seconds_per_step:.3f} s/step. Run the same command to go on.")


_DEADLINE: list[float] = []  # the innermost time_limit's end, as time.perf_counter()
_SIGNALLED: list[int] = []  # signals received during a checkpointed run (handled at the end of the step)


@contextmanager
def _pause_on_signals(active: bool):
    """While ``active`` (a checkpointed run, in the main thread): the first Ctrl-C or SIGTERM asks the loop to
    save and pause at the end of the step; a second one interrupts at once, as usual."""
    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return
    def ask(signum, frame):
        _SIGNALLED.append(signum)
        signal.signal(signum, previous[signum])  # a second signal acts at once
    previous = {sig: signal.signal(sig, ask) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _SIGNALLED.clear()


@contextmanager
def time_limit(seconds: float):
    """Within this block, ``train`` saves its checkpoint and raises ``TrainingPaused`` once ``seconds``
    have passed, so a long run is trained in chunks (each call resumes from the checkpoint)."""
    if not seconds > 0:
        raise ValueError(f"time_limit needs a positive number of seconds, got {seconds}")
    _DEADLINE.append(time.perf_counter() + seconds)
    try:
        yield
    finally:
        _DEADLINE.pop()


@dataclass
class TrainResult:
    model: nn.Module
    ema: nn.Module
    history: list[tuple[int, float]] = field(default_factory=list)  # (step, mean loss of the window)
    seconds: float = 0.0  # training time of this call: wall time less any stop (clock.py); not of earlier runs
    steps_run: int = 0  # optimizer steps taken in this call
    total_seconds: float = 0.0  # the same over all the calls that trained these weights (resumes included)
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # step -> fp16 EMA weights
    snapshot_seconds: dict[int, float] = field(default_factory=dict)  # step -> training seconds up to it


class _Loss(nn.Module):
    """``loss_fn(model, batch)`` as a module, so that DDP sees every use of the weights
    (a loss may call ``model.encode`` or ``model.decode`` rather than ``model(...)``)."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor]):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch) -> torch.Tensor:
        return self.loss_fn(self.model, batch)


def _precision(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if config.precision == "auto":
        return autocast_dtype(device)
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[config.precision]


def train(model: nn.Module, loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
          batches: Iterator[torch.Tensor], config: TrainConfig,
          optimizer: torch.optim.Optimizer | None = None) -> TrainResult:
    """Train ``model`` for ``config.steps`` optimizer steps on batches drawn from ``batches``.

    The model's device decides where training runs; batches must already be there.
    If ``config.checkpoint_path`` exists, training resumes from it exactly (see the module
    docstring): ``batches`` must be the same stream from its start (same seed), and its first
    ``step`` batches are skipped. A changed ``lr`` or ``weight_decay`` is applied from the resumed
    step on, and said; a ``steps`` below the checkpoint's step is refused.
    Under torchrun, ``batches`` must yield the same global batches on every rank (same seed);
    rank r trains on its rows (``distributed.shard``) and, if r > 0, re-seeds torch's generator
    with its initial seed + r, so that the loss's own draws (t, noise) differ between ranks.
    """
    device = next(model.parameters()).device
    amp_dtype = _precision(config, device)
    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(config.warmup_steps, 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    forward_model = torch.compile(model) if config.compile else model
    compute_loss = _Loss(forward_model, loss_fn)
    rank, world = dist.rank(), dist.world_size()
    if world > 1:  # broadcasts rank 0's weights now, averages the gradients in each backward pass
        compute_loss = DistributedDataParallel(compute_loss, device_ids=[device] if device.type == "cuda" else None)
        if rank > 0:
            torch.manual_seed((torch.initial_seed() + rank) % 2**63)
    ema = EMA(model, config.ema_decay)
    state = _State()
    path = Path(config.checkpoint_path) if config.checkpoint_path else None
    if _DEADLINE and path is None:
        raise ValueError("time_limit needs a checkpoint_path: a paused run resumes from its checkpoint")
    if path is not None and path.exists():
        state = load_checkpoint(path, model, ema, optimizer, scheduler, scaler, config)
        for _ in range(state.step):  # the stream from its start: skip what the checkpoint has used
            next(batches)
    start, history = state.step, state.history

    model.train()
    clock = ActiveClock()  # wall seconds less any time the process was stopped (kill -STOP)
    window = [torch.tensor(v, device=device) for v in state.window]  # losses since the last log entry
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="training",
               disable=not (config.progress and dist.is_main()), mininterval=1.0)
    eta_at = start + ETA_AFTER_STEPS if config.progress and dist.is_main() else None

    def save(step: int) -> None:
        state.window = [w.item() for w in window]
        _save_on_main(path, step, model, ema, optimizer, scheduler, scaler, config, state, clock.elapsed())

    with _pause_on_signals(path is not None), clock.watching():
        for step in bar:
            batch = dist.shard(next(batches), rank, world)  # (B/N, ...): this rank's rows of the global batch
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                loss = compute_loss(batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            ema.update(model)
            window.append(loss.detach())
            clock.step_done()
            if step + 1 == eta_at:
                _say_how_long(clock.elapsed(), step + 1 - start, config.steps - step - 1, path is not None)
            at_log = (step + 1) % config.log_every == 0
            if at_log or step + 1 == config.steps:  # a run's last, partial window is logged and kept for a resume
                history.append((step + 1, dist.all_reduce_mean(torch.stack(window).float().mean()).item()))
                bar.set_postfix(loss=f"{history[-1][1]:.4f}")
                if at_log:
                    window.clear()
            if config.snapshot_every and (step + 1) % config.snapshot_every == 0:
                state.snapshots[step + 1] = {k: v.detach().to("cpu", torch.float16) if v.is_floating_point()
                                             else v.detach().cpu() for k, v in ema.model.state_dict().items()}
                state.marks[step + 1] = state.seconds + clock.elapsed()
            if path is not None and config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
                save(step + 1)
            if (_DEADLINE or path is not None) and step + 1 < config.steps and _should_pause(device):
                save(step + 1)
                bar.close()
                raise TrainingPaused(path, step + 1, config.steps, clock.elapsed() / (step + 1 - start))
    bar.close()
    if path is not None and config.steps > start:
        save(config.steps)
    model.eval()
    seconds = clock.elapsed()
    return TrainResult(model, ema.model, history, seconds, max(config.steps - start, 0),
                       state.seconds + seconds, state.snapshots, state.marks)


ETA_AFTER_STEPS = 10  # steps timed before a long run says how long the rest takes
ETA_MIN_SECONDS = 300  # runs expected to end sooner say nothing (the progress bar shows their time)


def _say_how_long(seconds: float, steps_done: int, steps_left: int, checkpointed: bool) -> None:
    """Prints, once, what the rest of a long run will take at the rate of its first steps."""
    per_step = seconds / steps_done
    left = per_step * steps_left
    if left < ETA_MIN_SECONDS:
        return
    when = f"{left / 3600:.1f} h" if left >= 3600 else f"{left / 60:.0f} minutes"
    print(f"about {when} for the {steps_left:,} steps left ({per_step:.2f} s a step over the first {steps_done} "
          f"here)" + ("; stop it any time: the checkpoint resumes it exactly" if checkpointed else ""), flush=True)


def _should_pause(device: torch.device) -> bool:
    """Whether time_limit's time is up or a signal asked to stop; under torchrun, on any rank (so that all
    ranks stop together)."""
    local = bool(_SIGNALLED) or bool(_DEADLINE and time.perf_counter() > _DEADLINE[-1])
    if dist.world_size() == 1:
        return local
    return dist.all_reduce_mean(torch.tensor(float(local), device=device)).item() > 0
