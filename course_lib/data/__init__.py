"""Data sets. Toy 2-D data here; image data (CIFAR-10) arrives with chapter 2."""

from .toy import swiss_roll

__all__ = ["swiss_roll"]
