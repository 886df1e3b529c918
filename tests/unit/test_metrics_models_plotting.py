import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from course_lib.data import swiss_roll
from course_lib.evaluation.metrics import sliced_wasserstein
from course_lib.models import MLPConfig, MLPDenoiser, sinusoidal_embedding
from course_lib.book.plotting import animate, figure_png, frame_slider, small_multiples


def test_sliced_wasserstein_zero_for_identical_and_closed_form_for_a_shift():
    x = torch.randn(2000, 2, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    assert sliced_wasserstein(x, x, generator=g).item() == 0.0
    # shifting by c: every 1-D projection shifts by <c, theta>; E[<c, theta>^2] = |c|^2 / D
    c = torch.tensor([0.6, -0.8], dtype=torch.float64)
    sw = sliced_wasserstein(x, x + c, num_projections=4_000, generator=g).item()
    assert sw == pytest.approx((c.norm() ** 2 / 2).sqrt().item(), rel=0.02)


def test_sliced_wasserstein_rejects_mismatched_clouds():
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        sliced_wasserstein(torch.randn(10, 2), torch.randn(11, 2))


def test_swiss_roll_is_standardised_and_seeded():
    a = swiss_roll(20_000, generator=torch.Generator().manual_seed(1))
    b = swiss_roll(20_000, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    assert a.shape == (20_000, 2) and 0.6 < a.std().item() < 1.3 and a.abs().max() < 3


@pytest.mark.parametrize("batch", [1, 7])
def test_mlp_denoiser_shapes_and_errors(batch):
    model = MLPDenoiser(MLPConfig(hidden=32))
    out = model(torch.randn(batch, 2), torch.randint(0, 1000, (batch,)))
    assert out.shape == (batch, 2)
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 2\)"):
        model(torch.randn(batch, 3), torch.zeros(batch, dtype=torch.long))
    with pytest.raises(ValueError, match=r"t must have shape"):
        model(torch.randn(batch, 2), torch.zeros(batch + 1, dtype=torch.long))


def test_sinusoidal_embedding_closed_form():
    t = torch.tensor([0, 1, 500])
    emb = sinusoidal_embedding(t, 8)
    assert emb.shape == (3, 8)
    torch.testing.assert_close(emb[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    torch.testing.assert_close(emb[2, 0], torch.cos(torch.tensor(500.0)))
    torch.testing.assert_close(emb[2, 5], torch.sin(torch.tensor(500.0 * 10_000 ** (-1 / 4))))


def test_animation_is_self_contained_html():
    html = animate(lambda ax, i: ax.plot([0, i], [0, 1]), num_frames=3).data
    assert "<script" in html and html.count("data:image/png;base64") == 3, "3 frames embedded as PNG"
    assert 'title="Next frame"' in html and 'type="range"' in html, "controls: buttons and a slider"
    # offline: no CDN stylesheet, and every Font Awesome icon replaced (matplotlib's template changed?)
    assert "https://" not in html and "http://" not in html
    assert '<i class="fa' not in html


def test_small_multiples_and_frame_slider():
    clouds = [torch.randn(50, 2) for _ in range(3)]
    fig = small_multiples(clouds, ["a", "b", "c"], suptitle="x")
    assert len(fig.axes) == 3
    png = figure_png(fig)
    assert png[:4] == b"\x89PNG"
    widget = frame_slider([png, png], ["t=0", "t=1"])
    assert widget.children[1].selected_index == 0
    with pytest.raises(ValueError, match="one label per frame"):
        frame_slider([png], ["a", "b"])
    with pytest.raises(ValueError, match="one title per panel"):
        small_multiples(clouds, ["a"])


def test_jpeg_frames_and_animations_for_noisy_images():
    import matplotlib.pyplot as plt

    from course_lib.book.plotting import figure_jpeg

    noise = torch.rand(16, 16, 3)
    fig, ax = plt.subplots()
    ax.imshow(noise.numpy())
    jpeg = figure_jpeg(fig)
    assert jpeg.startswith(b"\xff\xd8")
    widget = frame_slider([jpeg, jpeg], ["a", "b"])
    assert widget.children[1].children[0].children[1].format == "jpeg"
    with pytest.raises(ValueError, match="PNG or JPEG"):
        frame_slider([b"GIF89a"], ["a"])
    html = animate(lambda ax, i: ax.imshow(noise.numpy()), num_frames=2, frame_format="jpeg").data
    assert "data:image/jpeg;base64" in html and "data:image/png" not in html
    with pytest.raises(ValueError, match="frame_format"):
        animate(lambda ax, i: None, num_frames=1, frame_format="gif")


def test_show_run_prints_the_record_and_plots_both_curves(capsys):
    from torch import nn

    from course_lib.book.runs import run_record, show_run
    from course_lib.training.loop import TrainResult

    meta = {"profile": "laptop", "hardware": "2-core CPU", "produced_by": "scripts/train.py ch05_unet",
            "train_seconds": 7200.0, "history": [(100, 0.5), (200, 0.3)],
            "config": {"recipe": {"steps": 10_000, "batch": 64, "init": "ch03_unet-laptop"}}}
    live = TrainResult(nn.Linear(1, 1), nn.Linear(1, 1), history=[(10, 0.9), (20, 0.7)], steps_run=20)
    ax = show_run(meta, live, what="U-Net")
    out = capsys.readouterr().out
    assert out.startswith("the laptop U-Net: 10,000 steps of batch 64, fine-tuned from ch03_unet-laptop in "
                          "2.00 h on 2-core CPU\nmade by: scripts/train.py ch05_unet")
    assert [line.get_label() for line in ax.get_lines()] == ["full run", "live, first 20 steps"]
    assert list(ax.get_lines()[1].get_xdata()) == [10, 20]
    assert "fine-tuned" not in run_record({**meta, "config": {"recipe": {"steps": 5, "batch": 2}}})
    with pytest.raises(ValueError, match="no 'hardware'"):
        run_record({k: v for k, v in meta.items() if k != "hardware"})
