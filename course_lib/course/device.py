"""Device, dtype and seeding helpers. Device and dtype elsewhere follow the inputs."""

from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch


def default_device() -> torch.device:
    """CUDA if present, else Apple's MPS, else CPU. ``COURSE_DEVICE`` overrides (e.g. ``cpu``)."""
    override = os.environ.get("COURSE_DEVICE")
    if override:
        return torch.device(override)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


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
    """The mixed-precision dtype for ``device``: bf16 where supported, fp16 on older GPUs,
    None (full fp32) on CPU and MPS, where autocast brings no speed-up for our models."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
