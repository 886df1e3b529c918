"""Data sets. Toy 2-D data here; image data (CIFAR-10) arrives with chapter 2."""

from .toy import random_batches, swiss_roll

__all__ = ["random_batches", "swiss_roll"]
