"""Data: toy 2-D data (chapter 1), CIFAR-10 (chapter 2 on), its synthetic captions (chapter 6), and
latents of a data set under chapter 2's VAE (chapters 6 and 9)."""

from .cifar import CIFAR10_CLASSES, ImageData, image_batches, load_cifar10, random_crop, to_float, to_uint8
from .toy import random_batches, swiss_roll

__all__ = ["CIFAR10_CLASSES", "ImageData", "image_batches", "load_cifar10", "random_batches",
           "random_crop", "swiss_roll", "to_float", "to_uint8"]
