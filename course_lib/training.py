"""The training loop every chapter uses: EMA, mixed precision, gradient clipping, optional
torch.compile, a progress bar, periodic loss logging, and checkpoint save/resume.

``loss_fn(model, batch) -> scalar`` is the only chapter-specific piece (losses take the model).

The same loop runs under ``torchrun`` (DistributedDataParallel, see ``course_lib.distributed``):
``batches`` then yields the same global batch on every rank, each rank trains on its 1/N of
the rows, DDP averages the gradients, the weights and EMA stay identical on every rank, the
logged loss is the mean over ranks, and rank 0 alone writes checkpoints and shows progress.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from . import distributed as dist
from .device import autocast_dtype

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
    progress: bool = True

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")


class EMA:
    """An exponential moving average of a model's weights: ema <- decay * ema + (1 - decay) * w."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - self.decay)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)


@dataclass
class TrainResult:
    model: nn.Module
    ema: nn.Module
    history: list[tuple[int, float]] = field(default_factory=list)  # (step, mean loss of the window)
    seconds: float = 0.0  # wall time of this call (not of earlier, resumed-from runs)
    steps_run: int = 0  # optimizer steps taken in this call


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
    If ``config.checkpoint_path`` exists, training resumes from it (weights, EMA, optimizer,
    step count and loss history) and runs only the remaining steps.
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
    history: list[tuple[int, float]] = []
    start = 0
    path = Path(config.checkpoint_path) if config.checkpoint_path else None
    if path is not None and path.exists():
        start, history = load_checkpoint(path, model, ema, optimizer, scheduler, scaler)

    model.train()
    t0 = time.perf_counter()
    window: list[torch.Tensor] = []
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="training",
               disable=not (config.progress and dist.is_main()), mininterval=1.0)
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
        if len(window) == config.log_every or step + 1 == config.steps:
            history.append((step + 1, dist.all_reduce_mean(torch.stack(window).float().mean()).item()))
            window.clear()
            bar.set_postfix(loss=f"{history[-1][1]:.4f}")
        if path is not None and config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
            _save_on_main(path, step + 1, model, ema, optimizer, scheduler, scaler, history, config)
    bar.close()
    if path is not None and config.steps > start:
        _save_on_main(path, config.steps, model, ema, optimizer, scheduler, scaler, history, config)
    model.eval()
    return TrainResult(model, ema.model, history, time.perf_counter() - t0, max(config.steps - start, 0))


def _save_on_main(path: Path, *state) -> None:
    """Rank 0 writes the checkpoint (every rank holds the same state); the others wait for it."""
    if dist.is_main():
        save_checkpoint(path, *state)
    dist.barrier()


def save_checkpoint(path: Path, step: int, model: nn.Module, ema: EMA, optimizer, scheduler, scaler,
                    history: list[tuple[int, float]], config: TrainConfig) -> None:
    """Write everything needed to resume, atomically (a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step, "model": model.state_dict(), "ema": ema.model.state_dict(),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(), "history": history,
        "config": {k: str(v) if isinstance(v, os.PathLike) else v for k, v in asdict(config).items()},
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model: nn.Module, ema: EMA, optimizer, scheduler, scaler):
    """Restore a checkpoint written by save_checkpoint; return (step, history)."""
    try:
        state = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which and what to do
        raise RuntimeError(f"Could not read checkpoint {path} ({err}). Delete it to train from scratch.") from err
    model.load_state_dict(state["model"])
    ema.model.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    if dist.is_main():
        print(f"Resumed from {path} at step {state['step']}.")
    return state["step"], [tuple(h) for h in state["history"]]
