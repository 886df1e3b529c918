"""Bad inputs to the data layer, the paths and device helpers, the models and FID give clear errors
(what was expected, how to fix it) instead of stale data, raw library errors or silently wrong numbers."""

import os

import pytest
import torch
from PIL import Image

from course_lib import PROFILES, show_setup
from course_lib.course import device as device_mod
from course_lib.course.paths import cache_dir
from course_lib.data import CIFAR10_CLASSES, load_cifar10
from course_lib.evaluation.fid import fid, reference_stats
from course_lib.models.dit import DiT, DiTConfig
from course_lib.models.mmdit import MMDiT, MMDiTConfig
from course_lib.models.unet import UNet, UNetConfig
from course_lib.models.vae import VAE, VAEConfig


# ---- CIFAR-10 image folders -----------------------------------------------------------------------

def _save(path, grey: int) -> None:
    Image.new("RGB", (32, 32), (grey,) * 3).save(path, quality=100)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A CIFAR-10-shaped image folder with one train image per class, each class a flat grey."""
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_DATA", raising=False)
    root = tmp_path / "cifar10-jpeg"
    for label, name in enumerate(CIFAR10_CLASSES):
        (root / "train" / name).mkdir(parents=True)
        _save(root / "train" / name / "0000.jpg", 20 * label)
    return root


def test_cifar_cache_follows_added_replaced_and_removed_images(folder):
    assert len(load_cifar10("train", root=folder)) == 10
    _save(folder / "train" / "cat" / "0001.jpg", 200)  # added
    data = load_cifar10("train", root=folder)
    assert len(data) == 11 and data.labels.tolist().count(3) == 2
    replaced = folder / "train" / "airplane" / "0000.jpg"
    _save(replaced, 250)
    st = replaced.stat()
    os.utime(replaced, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later mtime, whatever the clock's resolution
    data = load_cifar10("train", root=folder)
    assert abs(int(data.images[0, 0, 16, 16]) - 250) <= 2, "the replaced image is read again"
    (folder / "train" / "cat" / "0001.jpg").unlink()  # removed
    assert len(load_cifar10("train", root=folder)) == 10


def test_damaged_jpeg_error_names_the_file(folder):
    bad = folder / "train" / "dog" / "0000.jpg"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated
    with pytest.raises(RuntimeError) as info:
        load_cifar10("train", root=folder)
    msg = str(info.value)
    assert str(bad) in msg and "damaged" in msg and "delete" in msg


def test_missing_class_folder_is_named_with_the_split(folder):
    for name in ("cat", "truck"):
        for f in (folder / "train" / name).iterdir():
            f.unlink()
        (folder / "train" / name).rmdir()
    with pytest.raises(RuntimeError, match=r"train.*missing the class folders \['cat', 'truck'\]"):
        load_cifar10("train", root=folder)


# ---- environment variables: paths and device --------------------------------------------------------

def test_course_cache_expands_user_and_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("COURSE_CACHE", "~/x")
    assert cache_dir() == tmp_path / "x"
    monkeypatch.setenv("MY_SCRATCH", str(tmp_path / "scratch"))
    monkeypatch.setenv("COURSE_CACHE", "$MY_SCRATCH/cache")
    assert cache_dir() == tmp_path / "scratch" / "cache"
    monkeypatch.delenv("MY_SCRATCH")
    with pytest.raises(ValueError, match=r"COURSE_CACHE.*\$MY_SCRATCH/cache.*not set"):
        cache_dir()


def test_course_data_expands_user_and_variables(folder, monkeypatch):
    monkeypatch.setenv("HOME", str(folder.parent))
    monkeypatch.setenv("COURSE_DATA", "~/cifar10-jpeg")
    assert len(load_cifar10("train")) == 10
    monkeypatch.setenv("MY_DATA", str(folder.parent))
    monkeypatch.setenv("COURSE_DATA", "${MY_DATA}/cifar10-jpeg")
    assert len(load_cifar10("train")) == 10


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "CPU0", "tpu"])
def test_course_device_bad_value_names_the_variable_and_choices(monkeypatch, value):
    monkeypatch.setenv("COURSE_DEVICE", value)
    with pytest.raises(ValueError) as info:
        device_mod.default_device()
    msg = str(info.value)
    assert "COURSE_DEVICE" in msg and repr(value) in msg and all(c in msg for c in ("cpu", "cuda", "cuda:N", "mps"))


def test_course_device_names_a_device_that_is_not_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for value in ("cuda", "cuda:1", "mps"):
        monkeypatch.setenv("COURSE_DEVICE", value)
        with pytest.raises(RuntimeError, match=f"COURSE_DEVICE={value}.*not available.*COURSE_DEVICE=cpu"):
            device_mod.default_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("COURSE_DEVICE", "cuda:1")
    with pytest.raises(RuntimeError, match=r"COURSE_DEVICE=cuda:1.*1 CUDA device.*cuda:0"):
        device_mod.default_device()
    monkeypatch.setenv("COURSE_DEVICE", " CPU ")
    assert device_mod.default_device() == torch.device("cpu")


# ---- denoisers: dtypes and labels ------------------------------------------------------------------

def _unet():
    return UNet(UNetConfig.tiny(image_size=8, channel_mult=(1, 2), attention_resolutions=(4,), num_classes=10))


def _dit():
    return DiT(DiTConfig(input_size=8, patch_size=2, in_channels=3, hidden_size=32, depth=1, num_heads=2,
                         num_classes=10))


@pytest.mark.parametrize("make", [_unet, _dit], ids=["unet", "dit"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float64, torch.uint8, torch.int64])
def test_denoisers_name_the_fix_for_a_wrong_input_dtype(make, dtype):
    model, t = make(), torch.tensor([1, 2])
    x = torch.randn(2, 3, 8, 8) if dtype.is_floating_point else torch.randint(0, 256, (2, 3, 8, 8))
    with pytest.raises(TypeError) as info:
        model(x.to(dtype), t)
    msg = str(info.value)
    assert str(dtype) in msg and "torch.float32" in msg
    assert ("to_float" in msg) if not dtype.is_floating_point else ("x_t.to(" in msg and "autocast" in msg)


@pytest.mark.parametrize("make", [_unet, _dit], ids=["unet", "dit"])
def test_denoisers_accept_float32_input_under_autocast(make):
    model, x, t = make(), torch.randn(2, 3, 8, 8), torch.tensor([1, 2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(x, t, torch.tensor([0, 10])).shape == x.shape  # fp32 input, fp32 weights: fine
        assert model(x.bfloat16(), t).shape == x.shape  # autocast casts every layer's input itself


@pytest.mark.parametrize("make", [_unet, _dit], ids=["unet", "dit"])
def test_denoisers_refuse_labels_outside_0_to_num_classes(make):
    model, x, t = make(), torch.randn(2, 3, 8, 8), torch.tensor([1, 2])
    assert model(x, t, torch.tensor([0, 10])).shape == x.shape  # 10 = num_classes: the null class
    for y in ([0, 11], [-1, 3]):
        with pytest.raises(ValueError, match=r"labels in \[0, 10\] \(10 = null class\).*got .*(11|-1)"):
            model(x, t, torch.tensor(y))


def test_mmdit_checks_input_and_context_dtypes():
    model = MMDiT(MMDiTConfig(input_size=8, patch_size=2, in_channels=3, hidden_size=32, depth=1, num_heads=2,
                              context_dim=12))
    x, t, ctx = torch.randn(2, 3, 8, 8), torch.tensor([1, 2]), torch.randn(2, 5, 12)
    assert model(x, t, ctx).shape == x.shape
    with pytest.raises(TypeError, match=r"x_t is torch.float16.*torch.float32"):
        model(x.half(), t, ctx)
    with pytest.raises(TypeError, match=r"context is torch.float64.*torch.float32"):
        model(x, t, ctx.double())


# ---- VAE -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [31, 33, 30])
def test_vae_refuses_sizes_not_divisible_by_its_downsampling(size):
    vae = VAE(VAEConfig(base_channels=8, channel_mult=(1, 2, 2)))
    with pytest.raises(ValueError, match=rf"divisible by its downsampling factor 4.*got {size} x {size}"):
        vae(torch.randn(1, 3, size, size))
    assert vae(torch.randn(1, 3, 32, 28)).shape == (1, 3, 32, 28)


# ---- FID -------------------------------------------------------------------------------------------

def _features(images, batch_size=250):
    x = images.double()
    return torch.cat([x.mean((2, 3)), x[:, 0, 0, :2]], dim=1)


def test_fid_refuses_or_warns_about_uint8_images_from_the_wrong_range(tmp_path):
    g = torch.Generator().manual_seed(0)
    x01 = torch.rand(32, 3, 8, 8, generator=g)  # floats in [0, 1], the wrong range for to_uint8
    ref = reference_stats(torch.randint(0, 256, (32, 3, 8, 8), generator=g, dtype=torch.uint8), "toy",
                          tmp_path, features=_features)
    args = (ref.mu, ref.sigma, ref.name)
    with pytest.raises(ValueError, match=r"0/1 values.*0\.\.255.*to_uint8"):
        fid(x01.round().to(torch.uint8), *args, features=_features)
    with pytest.warns(UserWarning, match=r"128\.\.255.*\[0, 1\].*to_uint8"):  # a poor model's samples may do it
        fid(((x01 + 1) * 127.5).round().to(torch.uint8), *args, features=_features)
    with pytest.warns(UserWarning, match=r"are black"):
        fid(torch.zeros(32, 3, 8, 8, dtype=torch.uint8), *args, features=_features)
    with pytest.raises(ValueError, match=r"0/1 values"):
        reference_stats(x01.round().to(torch.uint8), "bad", tmp_path, features=_features)
    dark = (x01 * 40).round().to(torch.uint8)  # a dark batch is a real batch
    assert fid(dark, *args, features=_features).num_samples == 32
    bright = (x01[:8] * 20 + 230).round().to(torch.uint8)  # too few images to judge the range
    assert fid(bright, *args, features=_features).num_samples == 8


# ---- profiles --------------------------------------------------------------------------------------

def test_show_setup_warns_when_a_gpu_profile_runs_on_a_cpu(capsys):
    for name in ("colab", "full"):
        show_setup("1 · test", {}, profile=PROFILES[name], device=torch.device("cpu"))
        out = capsys.readouterr().out
        assert "WARNING" in out and "slow" in out and "Runtime > Change runtime type > T4 GPU" in out
        assert "COURSE_PROFILE=laptop" in out and "smoke" in out
    show_setup("1 · test", {}, profile=PROFILES["laptop"], device=torch.device("cpu"))
    assert "WARNING" not in capsys.readouterr().out


# ---- mixed precision on GPUs -----------------------------------------------------------------------

@pytest.mark.parametrize("capability, dtype", [((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                               ((9, 0), torch.bfloat16), ((6, 1), torch.float16)])
def test_bf16_only_where_the_gpu_has_it_natively(monkeypatch, capability, dtype):
    """A T4 (7.5) counts as bf16-capable for torch.cuda.is_bf16_supported() through emulation, which is
    slow: the course picks fp16 with gradient scaling there, bf16 from Ampere (8.0) on."""
    from course_lib.course.device import autocast_dtype
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert autocast_dtype("cuda") is dtype
    assert autocast_dtype("cpu") is None
