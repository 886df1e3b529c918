"""Data sets: toy 2-D data (chapter 1) and CIFAR-10 (chapter 2 on)."""

from .cifar import (CIFAR10_CLASSES, ImageData, cache_dir, image_batches, load_cifar10, random_crop, to_float,
                    to_uint8)
from .toy import random_batches, swiss_roll

__all__ = ["CIFAR10_CLASSES", "ImageData", "cache_dir", "image_batches", "load_cifar10", "random_batches",
           "random_crop", "swiss_roll", "to_float", "to_uint8"]
