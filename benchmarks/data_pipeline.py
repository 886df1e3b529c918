"""Data pipeline throughput: course_lib.data.image_batches on a device-resident uint8 tensor against
torchvision DataLoaders over the same CIFAR-10 training images, batch 128, random horizontal flips.

Pipelines, each yielding float32 (B, 3, 32, 32) images in [-1, 1] and labels on --device:
  - image_batches: the uint8 tensor moved to the device once; indexing, flips and the conversion
    to float happen there (what the chapters use);
  - DataLoader over the same in-memory tensor (a TensorDataset with a per-sample
    RandomHorizontalFlip and conversion), num_workers 0 and 2;
  - DataLoader over torchvision's ImageFolder of the JPEG copy (decoding every image each epoch,
    as a textbook pipeline does), num_workers 0 and 2; needs COURSE_DATA (an image folder).
DataLoader batches are moved to the device (pinned memory, non_blocking) inside the timed loop.
Each pipeline is timed over as many batches as fill --seconds, after warm-up batches (worker start-up
excluded); the table gives images/s and how many times faster image_batches is.

    COURSE_DATA=/path/to/cifar10-jpeg python benchmarks/data_pipeline.py --device cpu --quick
    python benchmarks/data_pipeline.py --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for benchmarks/_table.py, when imported from a file path
from _table import print_markdown_table  # noqa: E402
from course_lib.data import image_batches, load_cifar10  # noqa: E402
from course_lib.course.device import describe_hardware  # noqa: E402

BATCH = 128


class FlippedTensors(Dataset):
    """CIFAR-10 in memory as uint8, one image at a time: RandomHorizontalFlip, then [-1, 1] floats."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        from torchvision import transforms

        self.images, self.labels, self.flip = images, labels, transforms.RandomHorizontalFlip()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.flip(self.images[i]).float() / 127.5 - 1.0, self.labels[i]


def image_folder(folder: Path) -> Dataset:
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.PILToTensor(),
                             transforms.Lambda(lambda x: x.float() / 127.5 - 1.0)])
    return datasets.ImageFolder(str(folder), transform=tf)


def jpeg_train_folder() -> Path | None:
    """$COURSE_DATA/train or $COURSE_DATA/cifar10-jpeg/train, as course_lib.data.load_cifar10 finds it."""
    root = os.environ.get("COURSE_DATA")
    if not root:
        return None
    return next((c for c in (Path(root) / "train", Path(root) / "cifar10-jpeg" / "train") if c.is_dir()), None)


def loader_batches(dataset: Dataset, workers: int, device: torch.device):
    pin = device.type == "cuda"
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers, pin_memory=pin,
                        drop_last=True, persistent_workers=workers > 0)
    while True:
        for x, y in loader:
            yield x.to(device, non_blocking=pin), y.to(device, non_blocking=pin)


def images_per_second(batches, device: torch.device, seconds: float, warmup: int) -> float:
    for _ in range(warmup):
        next(batches)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        x, _ = next(batches)
        n += x.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n / (time.perf_counter() - t0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true", help="10,000 training images and 3 s per pipeline")
    p.add_argument("--seconds", type=float, default=None, help="timed seconds per pipeline (default 10; 3 with --quick)")
    p.add_argument("--workers", default="0,2", help="comma-separated DataLoader num_workers values")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of the main process (default on cpu: 1, steady on a shared machine)")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda, but torch.cuda.is_available() is False")
    if args.threads or args.device == "cpu":
        torch.set_num_threads(args.threads or 1)
    device, seconds = torch.device(args.device), args.seconds or (3.0 if args.quick else 10.0)
    data = load_cifar10("train", subset=10_000 if args.quick else None)
    import torchvision

    print(f"{describe_hardware(device)} · torch {torch.__version__} · torchvision {torchvision.__version__} · "
          f"Python {platform.python_version()}")
    print(f"{data}; batch {BATCH}; {seconds:g} s per pipeline; command: python benchmarks/data_pipeline.py "
          f"{' '.join(sys.argv[1:] if argv is None else argv)}")
    g = torch.Generator(device).manual_seed(0)
    rows = [("image_batches, uint8 tensor on " + device.type, "-", images_per_second(
        image_batches(data.images.to(device), BATCH, labels=data.labels.to(device), generator=g), device, seconds, 5))]
    folder = jpeg_train_folder()
    for workers in (int(w) for w in args.workers.split(",")):
        rows.append(("DataLoader(TensorDataset + RandomHorizontalFlip)", str(workers), images_per_second(
            loader_batches(FlippedTensors(data.images, data.labels), workers, device), device, seconds, 3)))
        if folder is None:
            print("NOTE: COURSE_DATA is not an image folder: the ImageFolder rows are skipped")
            continue
        rows.append((f"DataLoader(ImageFolder of JPEGs, {folder.parent.name})", str(workers), images_per_second(
            loader_batches(image_folder(folder), workers, device), device, seconds, 3)))
        print(f"  num_workers {workers}: done", flush=True)
    lines = [["pipeline", "num_workers", "images/s", "image_batches is x faster"]]
    lines += [[name, w, f"{ips:,.0f}", f"{rows[0][2] / ips:.1f}"] for name, w, ips in rows]
    print()
    print_markdown_table(lines, left_align_first=True)


if __name__ == "__main__":
    main()
