"""Synthetic captions for CIFAR-10 and their word-level tokenizer (chapter 6's text-to-image data).

CIFAR-10 has no captions, so each image gets one from its label and two attributes measured from
its pixels: "a dark photo of a red truck", "a photo of an orange cat", "a bright photo of a white ship".

Names -> symbols (per pixel of the image average-pooled to 8 x 8, r, g, b in [0, 1]; HSV as in Smith 1978):
    value       V = max(r, g, b)
    saturation  S = (max - min) / max   (0 where max = 0)
    hue         H in [0, 360) degrees, the angle on the colour wheel
Attributes of an image:
    colour      the hue bin holding most of the saturated pixels (S > SATURATED and V > VISIBLE);
                with fewer than MIN_COLOUR_FRACTION of them: black, gray or white by the mean V
    brightness  "dark" if the mean V < DARK_BELOW, "bright" if > BRIGHT_ABOVE, else no word

Tokens: a fixed vocabulary, ``VOCAB``; pad = 0, BOS = 1. Every caption starts with BOS, so the empty
caption "" is [BOS, pad, ..., pad], the null condition of classifier-free guidance.
"""

from __future__ import annotations

import torch

from .cifar import CIFAR10_CLASSES

# ---- the attribute thresholds ------------------------------------------------------------------
SATURATED = 0.25  # a pixel with S above this has a hue worth counting ...
VISIBLE = 0.2  # ... if it is not near-black (V above this)
MIN_COLOUR_FRACTION = 0.1  # fewer saturated pixels than this: the image is achromatic
BLACK_BELOW, WHITE_ABOVE = 0.3, 0.7  # achromatic images by their mean V
DARK_BELOW, BRIGHT_ABOVE = 0.4, 0.7  # the brightness word by the mean V (about 10% and 20% of CIFAR-10)
ANALYSIS_SIZE = 8  # images are measured after average pooling to 8 x 8 (16x fewer pixels; the same colour for 94%)
# Hue bins (degrees): each colour runs from its start to the next one's; red wraps around 360.
HUE_BINS = (("red", 345.0), ("orange", 15.0), ("yellow", 45.0), ("green", 70.0), ("blue", 170.0), ("purple", 260.0))
HUES = tuple(name for name, _ in HUE_BINS)
ACHROMATIC = ("black", "gray", "white")
COLOURS = HUES + ACHROMATIC
BRIGHTNESS = ("dark", "", "bright")  # "" = no word
CHUNK = 4096  # images per vectorised pass (bounds the memory)

# ---- the vocabulary ----------------------------------------------------------------------------
PAD, BOS = "<pad>", "<bos>"
VOCAB = (PAD, BOS, "a", "an", "photo", "of", "dark", "bright") + COLOURS + CIFAR10_CLASSES
TOKEN_ID = {word: i for i, word in enumerate(VOCAB)}
PAD_ID, BOS_ID = TOKEN_ID[PAD], TOKEN_ID[BOS]
MAX_TOKENS = 8  # BOS + "a dark photo of an orange automobile"


def _hsv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(hue in degrees, saturation, value), each (B, H, W), of float RGB images (B, 3, H, W) in [0, 1]."""
    r, g, b = x.unbind(1)
    v, hi = x.max(1)  # V and which channel is the largest
    delta = v - x.min(1).values
    s = torch.where(v > 0, delta / v.clamp(min=1e-12), torch.zeros_like(v))
    d = delta.clamp(min=1e-12)
    h = torch.where(hi == 0, ((g - b) / d) % 6, torch.where(hi == 1, (b - r) / d + 2, (r - g) / d + 4))
    return 60.0 * h, s, v  # the hexcone model: 60 degrees per sector


def _hue_bin(hue: torch.Tensor) -> torch.Tensor:
    """Index into HUES of each hue (degrees)."""
    starts = torch.tensor([start for _, start in HUE_BINS[1:]], device=hue.device)  # orange .. purple
    idx = torch.bucketize(hue, starts, right=True)  # 0 below orange's start, ..., 5 from purple's
    return torch.where(hue >= HUE_BINS[0][1], torch.zeros_like(idx), idx)  # 345..360 is red again


def image_attributes(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(colour, brightness) of uint8 images (N, 3, H, W): (N,) indices into COLOURS and BRIGHTNESS."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise TypeError(f"expected uint8 RGB images (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
    colours, brightness = [], []
    for chunk in images.split(CHUNK):
        x = chunk.float() / 255.0
        if min(x.shape[2:]) > ANALYSIS_SIZE:
            x = torch.nn.functional.adaptive_avg_pool2d(x, ANALYSIS_SIZE)  # (n, 3, 8, 8)
        hue, s, v = _hsv(x)  # each (n, h, w)
        mean_v = v.flatten(1).mean(1)  # (n,)
        saturated = ((s > SATURATED) & (v > VISIBLE)).flatten(1)  # (n, H*W)
        counts = torch.zeros(len(chunk), len(HUES), device=v.device)
        counts.scatter_add_(1, _hue_bin(hue).flatten(1), saturated.float())  # (n, 6) saturated pixels per hue bin
        grey = torch.bucketize(mean_v, torch.tensor([BLACK_BELOW, WHITE_ABOVE], device=v.device))  # 0, 1, 2
        chromatic = saturated.float().mean(1) >= MIN_COLOUR_FRACTION
        colours.append(torch.where(chromatic, counts.argmax(1), len(HUES) + grey))
        brightness.append(torch.bucketize(mean_v, torch.tensor([DARK_BELOW, BRIGHT_ABOVE], device=v.device)))
    return torch.cat(colours), torch.cat(brightness)


def caption_images(images: torch.Tensor, labels: torch.Tensor) -> list[str]:
    """One caption per image, from its label (N,) and its pixels (N, 3, H, W) uint8:
    "a [dark|bright] photo of a|an <colour> <class>"."""
    if labels.shape != images.shape[:1]:
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    colour, bright = image_attributes(images)
    out = []
    for c, b, y in zip(colour.tolist(), bright.tolist(), labels.tolist()):
        article = "an" if COLOURS[c][0] in "aeiou" else "a"
        photo = f"a {BRIGHTNESS[b]} photo" if BRIGHTNESS[b] else "a photo"
        out.append(f"{photo} of {article} {COLOURS[c]} {CIFAR10_CLASSES[y]}")
    return out


def tokenize(captions: list[str] | str, max_len: int = MAX_TOKENS) -> torch.Tensor:
    """Token ids (B, max_len) long on the CPU: BOS, one id per word (split on spaces), then padding.
    An unknown word or a caption of more than max_len - 1 words is a ValueError."""
    captions = [captions] if isinstance(captions, str) else list(captions)
    tokens = torch.full((len(captions), max_len), PAD_ID, dtype=torch.long)
    rows = []
    for caption in captions:
        words = caption.lower().split()
        unknown = [w for w in words if w not in TOKEN_ID or w in (PAD, BOS)]
        if unknown:
            raise ValueError(f"unknown word(s) {unknown} in caption {caption!r}; the vocabulary is "
                             f"{' '.join(VOCAB[2:])}")
        if len(words) > max_len - 1:
            raise ValueError(f"caption {caption!r} has {len(words)} words; at most {max_len - 1} fit with BOS")
        rows.append([BOS_ID] + [TOKEN_ID[w] for w in words])
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = torch.tensor(row)
    return tokens


def detokenize(tokens: torch.Tensor) -> list[str]:
    """The captions back from token ids (B, L): BOS and padding dropped."""
    return [" ".join(VOCAB[i] for i in row if i not in (PAD_ID, BOS_ID)) for row in tokens.tolist()]
