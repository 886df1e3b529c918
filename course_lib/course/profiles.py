"""Run profiles: one environment variable, ``COURSE_PROFILE``, sets sizes and step counts.

The code path is the same in every profile; only sizes change. A chapter states its own
numbers for each profile with :meth:`Profile.choose`, so a reader sees all of them side by side.

    smoke   CI and instructors: 2 CPU cores, the whole course in minutes.
    laptop  a 2-core CPU, no GPU: the rendered book. Heavy models are trained once, for hours,
            with the chapters' recipes (scripts/train.py, in resumable chunks) and published;
            each chapter loads them and reproduces its page in at most 30 minutes.
    colab   students: a free Colab T4 GPU, each chapter within the time its page states.
    full   a data-centre GPU (A100/H100 class): the numbers the book reports.
"""

from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from .device import default_device, describe_hardware

T = TypeVar("T")
ENV_VAR = "COURSE_PROFILE"


@dataclass(frozen=True)
class Profile:
    """A named run size. ``choose`` picks this profile's value from per-profile settings."""

    name: str
    description: str

    def choose(self, **per_profile: T) -> T:
        """Return ``per_profile[self.name]``; every known profile must be given a value.

        >>> Profile("smoke", "").choose(smoke=1_000, laptop=8_000, colab=20_000, full=50_000)
        1000
        """
        missing = sorted(set(PROFILES) - set(per_profile))
        unknown = sorted(set(per_profile) - set(PROFILES))
        if missing or unknown:
            raise ValueError(
                f"Profile.choose needs one value for each profile {sorted(PROFILES)}; "
                f"missing {missing}, unknown {unknown}."
            )
        return per_profile[self.name]


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", "CI and instructors: CPU, small sizes, minutes for the whole course"),
    "laptop": Profile("laptop", "a 2-core CPU: published models trained for hours, each chapter in 30 minutes"),
    "colab": Profile("colab", "students: one free Colab T4 GPU, training sized to the time each page states"),
    "full": Profile("full", "a data-centre GPU (A100/H100 class): the sizes behind the book's reported numbers"),
}
DEFAULT_PROFILE = "smoke"


def get_profile(name: str | None = None) -> Profile:
    """The profile named by ``name``, else by ``$COURSE_PROFILE``, else ``smoke``."""
    if name is None:
        name = os.environ.get(ENV_VAR, DEFAULT_PROFILE)
    key = name.strip().lower()
    if key not in PROFILES:
        raise ValueError(
            f"Unknown profile {name!r} (from {ENV_VAR} or the argument). "
            f"Expected one of: {', '.join(PROFILES)}. Example: {ENV_VAR}=smoke"
        )
    return PROFILES[key]


def show_setup(chapter: str, plan: dict[str, Any], profile: Profile | None = None,
               device: torch.device | None = None) -> None:
    """Print, at the top of a notebook, what will run, where, and at which sizes."""
    profile = profile or get_profile()
    device = device or default_device()
    lines = [
        f"Chapter:  {chapter}",
        f"Profile:  {profile.name} ({profile.description}); set {ENV_VAR} to change it",
        f"Device:   {device} · {describe_hardware(device)}",
        f"Software: torch {torch.__version__}, Python {platform.python_version()}",
        *filter(None, [t4_line(chapter)]),
        "Plan at this profile:",
    ]
    lines += [f"  - {key}: {value}" for key, value in plan.items()]
    if profile.name in GPU_PROFILES and torch.device(device).type == "cpu":
        lines += ["", _cpu_warning(profile)]
    print("\n".join(lines))


T4_MINUTES = Path(__file__).with_name("t4_minutes.json")  # scripts/estimate_t4.py (course_lib.book.t4_cost)


def t4_line(chapter: str, path: Path = T4_MINUTES) -> str | None:
    """The colab profile's time on a Colab T4 for the chapter whose title starts with its number
    ("3 · DDPM on CIFAR-10"), from ``t4_minutes.json``, saying whether it is measured or estimated;
    None for a title without a number or a chapter without an entry."""
    match = re.match(r"\s*(\d+)\b", chapter)
    try:
        entry = json.loads(path.read_text()).get(f"{int(match.group(1)):02d}") if match else None
    except (OSError, ValueError):
        return None
    if not entry:
        return None
    if entry.get("kind") == "measured":
        return f"Colab T4: {entry['minutes']:.0f} min for this chapter at the colab profile (measured on a T4)"
    return (f"Colab T4: about {entry['minutes']:.0f} min for this chapter at the colab profile (estimated "
            f"from counted FLOPs; no GPU has run it yet)")


GPU_PROFILES = ("colab", "full")  # sized for a GPU: hours or days on a CPU


def _cpu_warning(profile: Profile) -> str:
    return (f"WARNING: the {profile.name} profile is sized for a GPU, but this run is on a CPU: it will be very "
            f"slow (hours or more).\n  In Colab, pick a GPU: Runtime > Change runtime type > T4 GPU, then run "
            f"the notebook again.\n  Without a GPU, set {ENV_VAR}=laptop (or {ENV_VAR}=smoke for a quick check).")
