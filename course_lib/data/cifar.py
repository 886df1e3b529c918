"""CIFAR-10 as a uint8 tensor, decoded once and cached, and batches drawn where the data lies.

Sources, in this order:
  1. ``root`` (argument) or ``$COURSE_DATA``: a folder in image-folder layout
     (``train/<class>/*.jpg``, ``test/<class>/*.jpg``; read with torchvision's ``ImageFolder``),
     a folder holding such a copy as ``cifar10-jpeg/``, or a folder with torchvision's
     ``cifar-10-batches-py``.
  2. torchvision's ``CIFAR10`` with download, into ``<cache>/cifar10`` (needs internet once).
Labels are CIFAR-10's 0..9 (folder names sorted alphabetically give the same order). An image folder's
test split comes with its classes interleaved (the k-th image of every class before the (k+1)-th of any),
so that its first N images hold every class, as in CIFAR-10's own test set, which is not sorted by class;
its training split keeps the folder's order (training draws random indices, and the published models
were trained on that order).

Images: (N, 3, 32, 32) uint8 in 0..255; models see floats in [-1, 1] (``to_float``).
"""

from __future__ import annotations
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..course.paths import cache_dir, expand_path


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


DATA_ENV = "COURSE_DATA"


SPLITS = ("train", "test")


@dataclass
class ImageData:
    images: torch.Tensor  # (N, 3, 32, 32) uint8
    labels: torch.Tensor  # (N,) int64, CIFAR-10's 0..9
    split: str
    source: str  # where the pixels came from, by name (never a path of the machine), for the reader
    source_id: str  # short name for caches and FID references: "cifar10-jpeg" or "cifar10"

    def __len__(self) -> int:
        return self.images.shape[0]

    def __str__(self) -> str:
        return f"CIFAR-10 {self.split}: {len(self):,} images from {self.source}"


def _missing_data_error(split: str, tried: str) -> RuntimeError:
    return RuntimeError(
        f"CIFAR-10 ({split}) is not available: {tried}.\nProvide it in one of two ways:\n"
        f"  1. with internet: load_cifar10(..., download=True) lets torchvision download it into "
        f"{cache_dir() / 'cifar10'} (about 170 MB, once);\n"
        f"  2. offline: set {DATA_ENV} to a folder in image-folder layout (train/<class>/*.jpg and "
        f"test/<class>/*.jpg, e.g. the course's shared/data/cifar10-jpeg), or to a folder with "
        f"torchvision's cifar-10-batches-py."
    )


def _image_folder(root: Path, split: str) -> tuple[Path | None, str]:
    """The ``split`` folder with all ten class folders under ``root`` (or None), and a description of any
    ``split`` folder found with class folders missing (or "")."""
    incomplete = []
    for cand in (root / split, root / "cifar10-jpeg" / split):
        if cand.is_dir():
            missing = [c for c in CIFAR10_CLASSES if not (cand / c).is_dir()]
            if not missing:
                return cand, ""
            incomplete.append(f"{cand} (the {split} split) is missing the class folders {missing}")
    return None, "; ".join(incomplete)


def _files_fingerprint(folder: Path, subfolders: tuple[str, ...] = ("",)) -> str:
    """A hash of the listing of ``folder``'s ``subfolders``: every file's relative path, size and modification
    time (one stat per file, no contents read), so adding, removing or replacing a file changes it."""
    h = hashlib.sha256()
    for sub in subfolders:
        for dirpath, dirnames, filenames in os.walk(folder / sub, followlinks=True):  # as ImageFolder walks
            dirnames.sort()
            rel = os.path.relpath(dirpath, folder)
            for name in sorted(filenames):
                st = os.stat(os.path.join(dirpath, name))
                h.update(f"{rel}/{name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _subset_indices(n: int, subset: int | None) -> torch.Tensor:
    """Evenly spaced indices: the files are sorted by class, so every class keeps its share."""
    if subset is None:
        return torch.arange(n)
    if not 1 <= subset <= n:
        raise ValueError(f"subset must be between 1 and {n:,} for this split, got {subset}")
    return torch.linspace(0, n - 1, subset, dtype=torch.float64).round().long()


def _interleaved(labels: list[int]) -> list[int]:
    """Positions of ``labels`` reordered so that the k-th item of every class comes before the (k+1)-th of
    any, classes in label order within each round: every prefix keeps every class (as far as it can)."""
    rank, seen = [], {}  # rank[i] = k: item i is the k-th of its class
    for y in labels:
        rank.append(seen.get(y, 0))
        seen[y] = rank[-1] + 1
    return sorted(range(len(labels)), key=lambda i: (rank[i], labels[i]))


def _decode_folder(folder: Path, subset: int | None, interleave: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    from torchvision.datasets import ImageFolder

    ds = ImageFolder(str(folder))
    if tuple(ds.classes) != CIFAR10_CLASSES:
        raise RuntimeError(f"{folder} has classes {ds.classes}, expected CIFAR-10's {list(CIFAR10_CLASSES)}")
    samples = [ds.samples[j] for j in _subset_indices(len(ds.samples), subset).tolist()]
    if interleave:  # the same images, an order whose every prefix has every class
        samples = [samples[j] for j in _interleaved([label for _, label in samples])]

    def decode(path: str) -> torch.Tensor:
        try:
            pixels = np.array(ds.loader(path))  # PIL RGB (H, W, 3)
        except (OSError, ValueError, SyntaxError) as exc:  # PIL: truncated file, broken stream, not an image
            raise RuntimeError(f"{path} could not be decoded ({type(exc).__name__}: {exc}): the file is damaged "
                               f"(truncated or not an image); copy it again from the source, or delete it") from exc
        img = torch.from_numpy(pixels).permute(2, 0, 1)  # (3, H, W) uint8
        if img.shape != (3, 32, 32):
            raise RuntimeError(f"{path} decodes to shape {tuple(img.shape)}, expected (3, 32, 32)")
        return img

    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:  # file reads and decodes overlap
        images = list(tqdm(pool.map(decode, [p for p, _ in samples], chunksize=256), total=len(samples),
                           desc=f"decoding {folder.name}", mininterval=2.0, disable=len(samples) < 5000))
    return torch.stack(images), torch.tensor([label for _, label in samples], dtype=torch.int64)


def _torchvision(root: Path, split: str, subset: int | None, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import CIFAR10

    ds = CIFAR10(str(root), train=split == "train", download=download)
    idx = _subset_indices(len(ds.data), subset)
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2)[idx].contiguous()  # (N, 32, 32, 3) -> (N, 3, 32, 32)
    return images, torch.tensor(ds.targets, dtype=torch.int64)[idx]


def load_cifar10(split: str = "train", subset: int | None = None, root: str | os.PathLike | None = None,
                 download: bool = True) -> ImageData:
    """CIFAR-10 ``split`` ("train" or "test") as uint8 tensors on the CPU, cached after the first call.

    ``subset``: keep this many images, evenly spread over the split (class-balanced).
    ``root`` (else ``$COURSE_DATA``; ``~`` and ``$VAR`` expanded): a local copy; without one, torchvision
    downloads CIFAR-10. The cache of a local copy is keyed on its files' paths, sizes and modification
    times: adding, removing or replacing a file decodes the folder again.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    what, root = ("root", root) if root else (DATA_ENV, os.environ.get(DATA_ENV) or None)
    files = ""  # a fingerprint of the local files, so that the cache follows changes to them
    order = ""  # how the images are ordered, where it is not the source's own order
    if root is not None:
        root = expand_path(root, what)  # ~ and $VAR, as a shell would
        by = f"named by {DATA_ENV}" if what == DATA_ENV else "given as the root argument"  # never the path
        folder, incomplete = _image_folder(root, split)
        if folder is not None:
            source, source_id = f"a JPEG image folder {by} (lossy, see its README)", "cifar10-jpeg"
            location = folder
            interleave = split == "test"  # see the module's docstring
            order = "classes interleaved" if interleave else ""
            loader = lambda: _decode_folder(folder, subset, interleave=interleave)  # noqa: E731
            files = _files_fingerprint(folder, CIFAR10_CLASSES)
        elif (root / "cifar-10-batches-py").is_dir():
            source, source_id = f"torchvision's files in the folder {by}", "cifar10"
            location = root
            loader = lambda: _torchvision(root, split, subset, download=False)  # noqa: E731
            files = _files_fingerprint(root / "cifar-10-batches-py")
        elif incomplete:
            raise _missing_data_error(split, f"{incomplete}, and {root} has no cifar-10-batches-py")
        else:
            raise _missing_data_error(split, f"{root} has neither {split}/<class>/ folders nor cifar-10-batches-py")
    else:
        tv_root = cache_dir() / "cifar10"
        source, source_id, location = "torchvision's download into COURSE_CACHE", "cifar10", tv_root

        def loader():
            try:
                return _torchvision(tv_root, split, subset, download=download)
            except (RuntimeError, OSError) as exc:  # no internet, or download=False with nothing there
                raise _missing_data_error(split, f"torchvision could not load or download it ({exc})") from exc

    key = hashlib.sha256(f"{source}|{location}|{split}|{subset}|{files}|{order}".encode()).hexdigest()[:12]
    cache = cache_dir() / "data" / f"{source_id}-{split}-{subset or 'all'}-{key}.pt"
    if cache.exists():
        images, labels = torch.load(cache, weights_only=True).values()
    else:
        images, labels = loader()
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")  # one per process
        torch.save({"images": images, "labels": labels}, tmp)
        tmp.replace(cache)
    return ImageData(images, labels, split, source, source_id)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in 0..255 -> float32 in [-1, 1]."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images (0..255), got {images.dtype}")
    return images.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 (rounded; values outside [-1, 1] saturate at 0 and 255, as any
    8-bit image format would store them)."""
    if not x.is_floating_point():
        raise TypeError(f"expected float images in [-1, 1], got {x.dtype}")
    return ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random translations by up to ``padding`` pixels: each image of (B, C, H, W) padded by reflection,
    then cropped back to (H, W) at its own random offset (the CIFAR-10 classifiers' augmentation)."""
    B, C, H, W = x.shape
    if not 0 <= padding < min(H, W):
        raise ValueError(f"padding must lie in [0, {min(H, W) - 1}] for {H}x{W} images, got {padding}")
    padded = F.pad(x, (padding,) * 4, mode="reflect")  # (B, C, H + 2p, W + 2p)
    dy, dx = torch.randint(0, 2 * padding + 1, (2, B, 1), device=x.device, generator=generator)  # each (B, 1)
    rows, cols = dy + torch.arange(H, device=x.device), dx + torch.arange(W, device=x.device)  # (B, H), (B, W)
    b, c = torch.arange(B, device=x.device)[:, None, None, None], torch.arange(C, device=x.device)[None, :, None, None]
    return padded[b, c, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)


def image_batches(images: torch.Tensor, batch_size: int, labels: torch.Tensor | None = None,
                  flip: bool = True, generator: torch.Generator | None = None, crop: int = 0):
    """Endless random batches drawn where ``images`` lie (put them on the GPU: no DataLoader).

    Yields float32 (B, 3, H, W) in [-1, 1], horizontally flipped at random when ``flip`` and
    translated by up to ``crop`` pixels (``random_crop``) when ``crop`` > 0; with ``labels`` (on the
    images' device), yields (images, labels). ``generator`` must live on the images' device.
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise TypeError(f"expected (N, C, H, W) uint8 images, got {tuple(images.shape)} {images.dtype}")
    if labels is not None and labels.shape != images.shape[:1]:
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    if not 1 <= batch_size:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0 <= crop < min(images.shape[2:]):
        raise ValueError(f"crop must lie in [0, {min(images.shape[2:]) - 1}], got {crop}")
    n, dev = images.shape[0], images.device
    while True:
        idx = torch.randint(0, n, (batch_size,), device=dev, generator=generator)
        x = to_float(images[idx])
        if flip:
            mirror = torch.rand(batch_size, device=dev, generator=generator) < 0.5
            x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
        if crop:
            x = random_crop(x, crop, generator)
        yield x if labels is None else (x, labels[idx])
