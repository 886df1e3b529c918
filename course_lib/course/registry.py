"""Published artifacts: where a trained model comes from when the local cache lacks it.

``resolve_artifact(name, build)`` finds artifact NAME (e.g. "ch02_vae-colab") in this order:
  1. the local cache, ``<cache>/artifacts/NAME.pt`` and ``NAME.json`` (``artifacts.load_artifact``);
  2. the copy published in this repository's ``results/models/NAME.pt`` (a source checkout, which
     editable installs and CI use), checked against the registry's size and SHA-256 and copied
     into the cache;
  3. the registry, ``course_lib/course/registry.json`` (shipped with the package): the file at the entry's
     URL is downloaded with a progress bar and checked against the entry's size and SHA-256 (a
     mismatch is an error and the bad file is deleted), NAME.json is written from the entry, and
     the artifact loads as in 1. A NAME.pt put into the cache by hand (an offline machine) is
     checked against the entry the same way and used;
  4. otherwise ``ArtifactMissingError``; ``course_lib.recipes.common`` then trains it with the
     chapter's own function. A failed download is ``ArtifactDownloadError`` (a kind of missing
     artifact) whose message names the URL and where to put the file by hand.

registry.json (``schema_version`` 1; may list no artifacts)::

    {"schema_version": 1,
     "artifacts": {
       "ch02_vae-colab": {
         "url": "https://.../ch02_vae-colab.pt",   where NAME.pt can be downloaded (https://, file://)
         "sha256": "<64 hex digits>",              SHA-256 of that file
         "size": 12345678,                         its size in bytes
         "profile": "colab",                       the profile it was trained in
         "config": {"model": {...}, ...},          the config saved with it (what ``build`` receives)
         "command": "python book/execute_chapters.py --profile colab chapters/02_vae/02_vae.py",
         "hardware": "Tesla T4, 15 GiB",           what trained it (device.describe_hardware)
         "torch": "2.5.1", "metrics": {...}, "train_seconds": 1234.5      (optional)
       }}}

``registry_entry(name, url, command)`` makes an entry from an artifact in the local cache, to
paste into registry.json when its file is published.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .artifacts import (ArtifactError, ArtifactIncompleteError, ArtifactMissingError, artifact_dir, load_artifact,
                        read_meta, sha256_file, write_json_atomic)

REGISTRY_PATH = Path(__file__).with_name("registry.json")
PUBLISHED_DIR = Path(__file__).resolve().parents[2] / "results" / "models"  # in a source checkout
SCHEMA_VERSION = 1
REQUIRED = ("url", "sha256", "size", "profile", "config", "command", "hardware")
OPTIONAL = ("torch", "metrics", "train_seconds", "history", "storage")


class ArtifactDownloadError(ArtifactMissingError):
    """The artifact is published but could not be downloaded (offline, server error, missing file)."""


def load_registry(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The registry's entries by artifact name, each checked against the schema above."""
    path = Path(path or REGISTRY_PATH)
    data = json.loads(path.read_text())
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version must be {SCHEMA_VERSION}, got {data.get('schema_version')!r}")
    entries = data.get("artifacts", {})
    for name, entry in entries.items():
        problems = [f"missing {k!r}" for k in REQUIRED if k not in entry]
        problems += [f"unknown key {k!r}" for k in entry if k not in REQUIRED + OPTIONAL]
        if not re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256", ""))):
            problems.append("sha256 must be 64 lowercase hex digits")
        if not isinstance(entry.get("size"), int) or entry["size"] <= 0:
            problems.append("size must be a positive integer (bytes)")
        if problems:
            raise ValueError(f"{path}: entry {name!r}: " + "; ".join(problems))
    return entries


def download_file(url: str, dest: Path, sha256: str, size: int, *, desc: str = "", progress: bool = True,
                  timeout: float = 60.0) -> Path:
    """Downloads ``url`` to ``dest`` through a temporary file beside it, checking ``size`` and ``sha256``.

    Raises ArtifactError on a size or checksum mismatch (the partial file is deleted), and the
    urllib/OS error when the URL cannot be read.
    """
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f"{dest.name}.{os.getpid()}.part")  # one per process: ranks may download at once
    h, got = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as f, \
                tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=desc or dest.name,
                     disable=not progress) as bar:
            while chunk := response.read(1 << 20):
                got += len(chunk)
                if got > size:
                    break  # more bytes than the registry says: the wrong file
                h.update(chunk)
                f.write(chunk)
                bar.update(len(chunk))
        if got != size:
            raise ArtifactError(f"{url} is not the registered file: expected {size:,} bytes, got "
                                f"{f'more than {size:,}' if got > size else f'{got:,}'}. Nothing was kept.")
        if h.hexdigest() != sha256:
            raise ArtifactError(f"{url} failed its checksum: SHA-256 {h.hexdigest()}, the registry records "
                                f"{sha256}. The download was deleted; nothing was kept.")
        part.replace(dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def _write_meta(name: str, entry: dict[str, Any], directory: Path) -> None:
    meta = {"name": name, "sha256": entry["sha256"], "config": entry["config"], "profile": entry["profile"],
            "hardware": entry["hardware"], "torch": entry.get("torch"), "produced_by": entry["command"],
            "train_seconds": entry.get("train_seconds"), "metrics": entry.get("metrics", {}),
            "history": entry.get("history", []), "source": entry["url"], "created": _dt.date.today().isoformat()}
    write_json_atomic(directory / f"{name}.json", meta)


def _copy_checked(source: Path, dest: Path, entry: dict[str, Any]) -> None:
    """Copies a published file into the cache through a temporary file, after checking size and SHA-256."""
    if source.stat().st_size != entry["size"] or sha256_file(source) != entry["sha256"]:
        raise ArtifactError(f"{source} is not the file the registry records ({entry['size']:,} bytes, SHA-256 "
                            f"{entry['sha256']}): the published copy and course_lib/course/registry.json disagree. "
                            f"Restore the file (git checkout), or publish it again with scripts/publish_model.py.")
    part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, part)
    part.replace(dest)


def _fetch(name: str, entry: dict[str, Any], directory: Path, progress: bool) -> None:
    """Puts a checked NAME.pt and its NAME.json into ``directory`` (downloading it unless it is already there)."""
    weights = directory / f"{name}.pt"
    if weights.exists():  # copied in by hand: check it like a download
        actual = sha256_file(weights)
        if actual != entry["sha256"]:
            raise ArtifactError(f"{weights} is not the registered {name!r}: SHA-256 {actual}, the registry records "
                                f"{entry['sha256']} ({entry['url']}). Delete it, then download it again.")
    elif (published := PUBLISHED_DIR / f"{name}.pt").exists():  # the checkout's copy, checked like a download
        _copy_checked(published, weights, entry)
    else:
        try:
            download_file(entry["url"], weights, entry["sha256"], entry["size"], desc=f"downloading {name}",
                          progress=progress)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", None) or err
            raise ArtifactDownloadError(
                f"artifact {name!r} is not in the local cache and could not be downloaded from {entry['url']} "
                f"({type(err).__name__}: {reason}).\nTo provide it by hand: download that file "
                f"({entry['size'] / 1e6:.1f} MB) on a machine with internet and copy it to {weights} "
                f"(or set COURSE_CACHE to a folder whose artifacts/ holds it); it is checked against the "
                f"registry's SHA-256 on first use. Or train it with the chapter that produces it."
            ) from err
    _write_meta(name, entry, directory)


def resolve_artifact(name: str, build: Callable[[dict[str, Any]], nn.Module],
                     map_location: str | torch.device = "cpu", allow_download: bool = True, *,
                     directory: Path | None = None, registry: str | Path | dict | None = None,
                     progress: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Returns (model, metadata) for artifact ``name``: from the local cache, else the copy published in the
    checkout, else downloaded from the registry (if ``allow_download``). Raises ArtifactMissingError when neither has it (ArtifactDownloadError
    when the download failed), ArtifactError when a file fails its checksum."""
    directory = Path(directory or artifact_dir())
    try:
        return load_artifact(name, build, directory=directory, map_location=map_location)
    except ArtifactIncompleteError:  # a NAME.pt copied in by hand: the registry's checksum vouches for it
        entries = registry if isinstance(registry, dict) else load_registry(registry)
        if name not in entries:
            raise
    except ArtifactMissingError as missing:
        entries = registry if isinstance(registry, dict) else load_registry(registry)
        if name not in entries:
            raise ArtifactMissingError(f"{missing} No download is published for it "
                                       f"(course_lib/course/registry.json has no entry {name!r}).") from None
        if not allow_download and not (PUBLISHED_DIR / f"{name}.pt").exists():
            raise ArtifactMissingError(f"{missing} It is published at {entries[name]['url']}, "
                                       f"but downloads were not allowed (allow_download=False).") from None
    _fetch(name, entries[name], directory, progress)
    return load_artifact(name, build, directory=directory, map_location=map_location)


def registry_entry(name: str, url: str, command: str, *, directory: Path | None = None) -> dict[str, Any]:
    """The registry entry for artifact ``name`` of the local cache, once its NAME.pt is published at ``url``."""
    directory = Path(directory or artifact_dir())
    weights, meta = directory / f"{name}.pt", read_meta(directory / f"{name}.json")
    entry = {"url": url, "sha256": sha256_file(weights), "size": weights.stat().st_size, "profile": meta["profile"],
             "config": meta["config"], "command": command, "hardware": meta["hardware"], "torch": meta.get("torch"),
             "metrics": meta.get("metrics", {}), "train_seconds": meta.get("train_seconds"),
             "history": meta.get("history", []), "storage": meta.get("storage", "as trained")}
    if entry["sha256"] != meta["sha256"]:
        raise ArtifactError(f"{weights} no longer matches the SHA-256 in {name}.json")
    return entry
