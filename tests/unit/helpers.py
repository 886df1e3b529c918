"""Helpers shared by the unit tests (import them as ``from helpers import ...``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest
import torch


def perturbed(model: torch.nn.Module, scale: float = 0.1, seed: int | None = 0) -> torch.nn.Module:
    """``model`` with every parameter moved off its init by scale * N(0, 1) noise, drawn from a generator
    seeded with ``seed`` (None: the global RNG): zero-initialised layers (adaLN-Zero, DDPM's output convs,
    LoRA's B) would hide bugs."""
    g = None if seed is None else torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device))
    return model


def load_benchmark(name: str) -> ModuleType:
    """A fresh copy of ``benchmarks/<name>.py`` (not a package: loaded from its path), so that tests check
    the very code a benchmark times; patching the copy touches nothing else."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_loads_without_training(monkeypatch, module: ModuleType, trainer: str, load: Callable[[], tuple],
                                  model: torch.nn.Module, verb: str = "trained") -> torch.nn.Module:
    """A recipe's second call loads its saved artifact: ``module.trainer`` is made to fail, ``load()`` (the
    recipe's train-or-load call, returning (model, meta)) runs, and the loaded weights equal ``model``'s.
    Returns the loaded model."""
    monkeypatch.setattr(module, trainer, lambda *a, **k: pytest.fail(f"{verb} again instead of loading"))
    again, _ = load()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    return again
