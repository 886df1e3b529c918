"""Figures: 2-D scatter plots, small multiples, image grids, and animations that play in the
static book (``to_jshtml``) as well as sliders for live exploration in Jupyter and Colab."""

from __future__ import annotations

import io
import re
from typing import Callable, Sequence

import matplotlib
import matplotlib.pyplot as plt
import torch
from matplotlib import animation

matplotlib.rcParams["animation.embed_limit"] = 64  # MB of frames a jshtml animation may embed


def scatter2d(ax: plt.Axes, points: torch.Tensor, title: str | None = None, lim: float = 2.5,
              **kwargs) -> plt.Axes:
    """Scatter (N, 2) points on ``ax`` with equal, fixed axes so frames compare."""
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {tuple(points.shape)}")
    p = points.detach().float().cpu()
    style = dict(s=2, alpha=0.5, color="C0", linewidths=0) | kwargs
    ax.scatter(p[:, 0], p[:, 1], **style)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="$x_1$", ylabel="$x_2$")
    if title:
        ax.set_title(title)
    return ax


def small_multiples(clouds: Sequence[torch.Tensor], titles: Sequence[str], suptitle: str | None = None,
                    lim: float = 2.5, size: float = 2.4) -> plt.Figure:
    """One row of 2-D scatter panels, e.g. x_t at several steps t."""
    if len(clouds) != len(titles):
        raise ValueError(f"need one title per panel: {len(clouds)} clouds, {len(titles)} titles")
    fig, axes = plt.subplots(1, len(clouds), figsize=(size * len(clouds), size + 0.4), squeeze=False)
    for ax, cloud, title in zip(axes[0], clouds, titles):
        scatter2d(ax, cloud, title, lim=lim)
        ax.label_outer()
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def image_grid(images: torch.Tensor, nrow: int = 8, title: str | None = None,
               value_range: tuple[float, float] = (-1.0, 1.0), ax: plt.Axes | None = None,
               figsize: tuple[float, float] | None = None) -> plt.Axes:
    """Show a (B, C, H, W) batch as one grid (torchvision's make_grid), mapping value_range to [0, 1].
    Draws on ``ax`` if given, else on a new figure (of ``figsize``, default one inch per column)."""
    from torchvision.utils import make_grid

    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (B, 1 or 3, H, W), got {tuple(images.shape)}")
    lo, hi = value_range
    grid = make_grid(((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1), nrow=nrow, padding=1)
    if ax is None:
        _, ax = plt.subplots(figsize=figsize or (nrow, grid.shape[1] / grid.shape[2] * nrow))
    ax.imshow(grid.permute(1, 2, 0).numpy())
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def animate(draw: Callable[[plt.Axes, int], None], num_frames: int, figsize=(4.2, 4.2),
            interval: int = 120, title: str | None = None, frame_format: str = "png", dpi: int | None = None):
    """An animation with its own play/step/slider controls that works in the static book.

    ``draw(ax, i)`` draws frame i on a cleared axis. Returns an ``IPython.display.HTML`` object
    made by matplotlib's ``to_jshtml`` (frames embedded as ``frame_format``: "png" for plots,
    "jpeg" for noisy images, which PNG cannot compress; ``dpi``, default the figure's, sets their
    size); display it as a cell's result.
    """
    from IPython.display import HTML

    fig, ax = plt.subplots(figsize=figsize)

    def update(i: int):
        ax.clear()
        draw(ax, i)
        if title:
            fig.suptitle(title)
        return []

    anim = animation.FuncAnimation(fig, update, frames=num_frames, interval=interval, blit=False)
    if frame_format not in ("png", "jpeg"):
        raise ValueError(f"frame_format must be 'png' or 'jpeg', got {frame_format!r}")
    with matplotlib.rc_context({"animation.frame_format": frame_format, "savefig.dpi": dpi or "figure"}):
        html = HTML(offline_jshtml(anim.to_jshtml(default_mode="once")))
    plt.close(fig)
    return html


# matplotlib's to_jshtml() draws its buttons with Font Awesome 4 icons from a CDN stylesheet,
# which an offline book cannot load (empty buttons, a failed request). Unicode symbols need nothing.
_FA_CDN = re.compile(r'<link rel="stylesheet"\s+href="https://maxcdn\.bootstrapcdn\.com/font-awesome/[^"]*">\s*')
_FA_ICONS = {  # Font Awesome 4 class -> symbols found in every common font
    "fa-minus": "&#x2212;", "fa-fast-backward": "|&#x25C0;", "fa-step-backward": "&#x25C1;",
    "fa-play fa-flip-horizontal": "&#x25C0;", "fa-pause": "&#x275A;&#x275A;", "fa-play": "&#x25B6;",
    "fa-step-forward": "&#x25B7;", "fa-fast-forward": "&#x25B6;|", "fa-plus": "+",
}


def offline_jshtml(html: str) -> str:
    """``to_jshtml()`` output with no CDN stylesheet: Font Awesome icons become Unicode symbols."""
    html = _FA_CDN.sub("", html)
    for icon, symbol in _FA_ICONS.items():
        html = html.replace(f'<i class="fa {icon}"></i>', symbol)
    return html


def figure_png(fig: plt.Figure, dpi: int = 80) -> bytes:
    """A figure rendered to PNG bytes (then closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def figure_jpeg(fig: plt.Figure, dpi: int = 80, quality: int = 85) -> bytes:
    """A figure rendered to JPEG bytes (then closed): for grids of noisy images, several times
    smaller than PNG at no visible cost."""
    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=dpi, bbox_inches="tight", pil_kwargs={"quality": quality})
    plt.close(fig)
    return buf.getvalue()


def show_jpeg(fig: plt.Figure | None = None, dpi: int = 80, quality: int = 85):
    """Display a figure (default: the current one) as a JPEG image output, and close it."""
    from IPython.display import Image, display

    display(Image(data=figure_jpeg(fig or plt.gcf(), dpi=dpi, quality=quality), format="jpeg"))


def _image_format(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    raise ValueError("frames must be PNG or JPEG bytes (from figure_png or figure_jpeg)")


def frame_slider(frames: Sequence[bytes], labels: Sequence[str], description: str = "frame"):
    """An ipywidgets slider (with a play button) over pre-rendered PNG or JPEG frames.

    The slider and the shown frame are linked in the browser (``jslink``), so the widget keeps
    working in the static book from its embedded state, as well as live in Jupyter and Colab.
    """
    import ipywidgets as w

    if len(frames) != len(labels) or not frames:
        raise ValueError(f"need one label per frame and at least one frame: {len(frames)} frames, {len(labels)} labels")
    images = [w.Image(value=data, format=_image_format(data), layout=w.Layout(max_width="420px")) for data in frames]
    captions = [w.HTML(f"<b>{label}</b>") for label in labels]
    shown = w.Stack([w.VBox([c, im]) for c, im in zip(captions, images)], selected_index=0)
    slider = w.IntSlider(0, 0, len(frames) - 1, description=description, continuous_update=True)
    play = w.Play(value=0, min=0, max=len(frames) - 1, interval=400)
    w.jslink((play, "value"), (slider, "value"))
    w.jslink((slider, "value"), (shown, "selected_index"))
    return w.VBox([w.HBox([play, slider]), shown])
