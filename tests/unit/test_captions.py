"""Synthetic captions (course_lib.data.captions): the attributes of constructed images, the caption text,
the tokenizer's round trip, the empty caption, clear errors, and speed on a CIFAR-10-sized set."""

import time

import pytest
import torch

from course_lib.data import captions as C
from course_lib.data import CIFAR10_CLASSES


def solid(rgb, n=1, size=32):
    """n uint8 images (n, 3, size, size) of one colour."""
    return torch.tensor(rgb, dtype=torch.uint8).view(1, 3, 1, 1).expand(n, 3, size, size).contiguous()


@pytest.mark.parametrize("rgb, colour", [
    ((200, 20, 20), "red"), ((230, 120, 10), "orange"), ((220, 210, 30), "yellow"), ((30, 180, 40), "green"),
    ((30, 60, 200), "blue"), ((140, 40, 190), "purple"), ((240, 20, 60), "red"),  # hue 345..360 wraps to red
    ((10, 10, 10), "black"), ((128, 128, 128), "gray"), ((245, 245, 245), "white"),
])
def test_colour_of_solid_images(rgb, colour):
    c, _ = C.image_attributes(solid(rgb))
    assert C.COLOURS[c.item()] == colour


@pytest.mark.parametrize("rgb, word", [((20, 20, 20), "dark"), ((120, 120, 120), ""), ((240, 240, 240), "bright")])
def test_brightness_of_solid_images(rgb, word):
    _, b = C.image_attributes(solid(rgb))
    assert C.BRIGHTNESS[b.item()] == word


def test_the_colour_is_the_majority_of_saturated_pixels():
    x = solid((128, 128, 128))  # gray background: not saturated, does not count
    x[:, :, :12] = torch.tensor([30, 60, 200], dtype=torch.uint8).view(1, 3, 1, 1)  # 12 rows blue
    x[:, :, 12:20] = torch.tensor([200, 20, 20], dtype=torch.uint8).view(1, 3, 1, 1)  # 8 rows red
    assert C.COLOURS[C.image_attributes(x)[0].item()] == "blue"


def test_captions_read_as_sentences():
    images = torch.cat([solid((150, 15, 15)), solid((170, 90, 10)), solid((20, 20, 20)), solid((245, 245, 245))])
    labels = torch.tensor([9, 3, 0, 8])
    assert C.caption_images(images, labels) == ["a photo of a red truck", "a photo of an orange cat",
                                                "a dark photo of a black airplane", "a bright photo of a white ship"]


def test_tokenize_round_trip_and_layout():
    caps = ["a dark photo of an orange automobile", "a photo of a green frog", ""]
    tokens = C.tokenize(caps)
    assert tokens.shape == (3, C.MAX_TOKENS) and tokens.dtype == torch.long
    assert (tokens[:, 0] == C.BOS_ID).all() and C.PAD_ID == 0
    assert C.detokenize(tokens) == caps
    assert tokens[2].tolist() == [C.BOS_ID] + [C.PAD_ID] * (C.MAX_TOKENS - 1)  # the empty caption: the null condition
    every = [f"a {b} photo of a {c} {k}" for b in ("dark", "bright") for c in C.COLOURS for k in CIFAR10_CLASSES]
    assert C.detokenize(C.tokenize(every)) == every


def test_tokenize_errors():
    with pytest.raises(ValueError, match=r"unknown word\(s\) \['zebra'\]"):
        C.tokenize(["a photo of a zebra"])
    with pytest.raises(ValueError, match="unknown word"):
        C.tokenize(["<bos> a photo"])  # special tokens are not words
    with pytest.raises(ValueError, match="at most 3 fit"):
        C.tokenize(["a photo of a cat"], max_len=4)
    with pytest.raises(TypeError, match="uint8"):
        C.image_attributes(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="labels"):
        C.caption_images(solid((1, 2, 3), n=2), torch.tensor([1]))


def test_captioning_is_vectorised():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (10_000, 3, 32, 32), dtype=torch.uint8, generator=g)
    t0 = time.perf_counter()
    caps = C.caption_images(images, torch.randint(0, 10, (10_000,), generator=g))
    C.tokenize(caps)
    assert time.perf_counter() - t0 < 3.0  # 50k CIFAR-10 images take about a second on 2 cores
