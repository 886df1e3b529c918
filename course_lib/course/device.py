"""Device, dtype and seeding helpers. Device and dtype elsewhere follow the inputs."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import re

import numpy as np
import torch


DEVICE_ENV = "COURSE_DEVICE"
DEVICE_CHOICES = "cpu, cuda, cuda:N (N = 0, 1, ...), mps"


def default_device() -> torch.device:
    """CUDA if present, else Apple's MPS, else CPU. ``COURSE_DEVICE`` overrides (e.g. ``cpu``)."""
    override = os.environ.get(DEVICE_ENV)
    if override and override.strip():
        return _device_from_env(override)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _device_from_env(value: str) -> torch.device:
    """The device ``COURSE_DEVICE`` names, with an error naming the variable if it is not a valid choice
    or that device is not available here."""
    name = value.strip().lower()
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", name):
        raise ValueError(f"{DEVICE_ENV}={value!r} is not a device; expected one of {DEVICE_CHOICES}. "
                         f"Example: {DEVICE_ENV}=cpu (or unset it to pick the best device present)")
    fix = f"set {DEVICE_ENV}=cpu, or unset {DEVICE_ENV} to pick the best device present"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"{DEVICE_ENV}={name} but CUDA is not available here (no NVIDIA GPU visible, "
                               f"or this torch build has no CUDA: torch {torch.__version__}); {fix}")
        index, count = int(name.partition(":")[2] or 0), torch.cuda.device_count()
        if index >= count:
            valid = "cuda:0" if count == 1 else f"one of cuda:0 to cuda:{count - 1}"
            raise RuntimeError(f"{DEVICE_ENV}={name} but this machine has {count} CUDA device(s): "
                               f"use {valid}, or {fix}")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise RuntimeError(f"{DEVICE_ENV}=mps but Apple's MPS is not available here (it needs an Apple-silicon "
                           f"Mac and a torch build with MPS); {fix}")
    return torch.device(name)


def describe_hardware(device: torch.device | str) -> str:
    """A one-line description of the hardware behind ``device``, for provenance lines."""
    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name}, {props.total_memory / 2**30:.0f} GiB"
    cpu = _cpu_model() or platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads"


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The mixed-precision dtype for ``device``: bf16 on GPUs that have it natively (compute capability 8.0
    and up: A100, H100, RTX 30xx on), fp16 with gradient scaling below (a Colab T4 is 7.5: there
    ``torch.cuda.is_bf16_supported()`` says yes by counting emulation, and bf16 convolutions leave cuDNN's
    fast path); None (full fp32) on CPU and MPS, where autocast brings no speed-up for our models."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def sampling_autocast(device: torch.device | str) -> contextlib.AbstractContextManager:
    """A context manager for sampling and evaluating on ``device``: ``torch.autocast`` in ``autocast_dtype``'s
    dtype on a GPU (fp16 on a T4, bf16 from compute capability 8.0 on), nothing at all on CPU and MPS, where
    everything stays float32. Under it a network's convolutions and matmuls run in the low-precision dtype;
    the samplers' own arithmetic stays float32 (a float16 prediction times a float32 x_t promotes)."""
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
