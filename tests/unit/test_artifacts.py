"""Artifacts: saved with a checksum; a corrupted or missing file is a clear error."""

import json
from functools import partial
import multiprocessing
import time

import pytest
import torch
from torch import nn

from course_lib.recipes import ch02_vae, ch03_ddpm
from course_lib.course.artifacts import ArtifactError, ArtifactMissingError, load_artifact, save_artifact
from course_lib.course import registry
from course_lib.data import CIFAR10_CLASSES
from course_lib.course.profiles import get_profile

from helpers import assert_loads_without_training


def test_round_trip_and_checksum(tmp_path):
    model = nn.Linear(3, 2)
    save_artifact("lin", model, {"n_in": 3}, profile="smoke", produced_by="test", directory=tmp_path, metrics={"x": 1.0})
    loaded, meta = load_artifact("lin", lambda cfg: nn.Linear(cfg["n_in"], 2), directory=tmp_path)
    assert torch.equal(loaded.weight, model.weight) and meta["profile"] == "smoke" and len(meta["sha256"]) == 64
    raw = bytearray((tmp_path / "lin.pt").read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip one byte
    (tmp_path / "lin.pt").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="corrupted"):
        load_artifact("lin", lambda cfg: nn.Linear(3, 2), directory=tmp_path)


def test_missing_artifact_says_what_to_do(tmp_path):
    with pytest.raises(ArtifactMissingError, match="not found.*Run the chapter"):
        load_artifact("nothing", lambda cfg: nn.Linear(1, 1), directory=tmp_path)


@pytest.fixture
def one_image_per_class(tmp_path, monkeypatch):
    """A CIFAR-10-shaped training folder with one flat image per class, and an empty cache."""
    from PIL import Image

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    for name in CIFAR10_CLASSES:
        (tmp_path / "data/train" / name).mkdir(parents=True)
        Image.new("RGB", (32, 32), (100, 50, 0)).save(tmp_path / "data/train" / name / "0000.jpg")
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "data"))
    return tmp_path


def test_chapter2_vae_trains_saves_then_loads(one_image_per_class, monkeypatch):
    """Train-or-load: the first call trains with the recipe and saves; the second loads the same weights."""
    tiny = dict(model=dict(base_channels=8, channel_mult=(1, 2), blocks_per_level=1, latent_channels=4),
                steps=2, batch=4, lr=1e-3, beta=1.0, ema_decay=0.9, train_images=None)
    monkeypatch.setattr(ch02_vae, "vae_recipe", lambda profile: tiny)
    vae, meta = ch02_vae.chapter2_vae(get_profile("smoke"))
    assert meta["profile"] == "smoke" and meta["config"]["recipe"]["steps"] == 2
    assert_loads_without_training(monkeypatch, ch02_vae, "train_vae",
                                  lambda: ch02_vae.chapter2_vae(get_profile("smoke")), vae)


def test_chapter3_unet_trains_saves_then_loads(one_image_per_class, monkeypatch):
    """The same train-or-load path for the chapter 3 U-Net (tiny recipe, 2 steps)."""
    tiny = dict(unet="tiny", schedule="linear", num_steps=1000, steps=2, batch=2, lr=1e-3, warmup=1,
                ema_decay=0.9, train_images=None)
    monkeypatch.setattr(ch03_ddpm, "ddpm_recipe", lambda profile: tiny)
    unet, meta = ch03_ddpm.chapter3_unet(get_profile("smoke"))
    assert unet.config == ch03_ddpm.unet_config(tiny) and meta["produced_by"].endswith("train_ddpm")
    assert_loads_without_training(monkeypatch, ch03_ddpm, "train_ddpm",
                                  lambda: ch03_ddpm.chapter3_unet(get_profile("smoke")), unet)


def test_train_or_load_refuses_a_corrupted_artifact(one_image_per_class, monkeypatch):
    tiny = dict(model=dict(base_channels=8, channel_mult=(1, 2), blocks_per_level=1, latent_channels=4),
                steps=1, batch=4, lr=1e-3, beta=1.0, ema_decay=0.9, train_images=None)
    monkeypatch.setattr(ch02_vae, "vae_recipe", lambda profile: tiny)
    ch02_vae.chapter2_vae(get_profile("smoke"))
    weights = one_image_per_class / "cache/artifacts/ch02_vae-smoke.pt"
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="corrupted"):
        ch02_vae.chapter2_vae(get_profile("smoke"))


def test_an_artifact_of_older_model_code_is_refused_with_what_to_do(tmp_path):
    """Weights whose shapes no longer fit the model class (its code changed since) are an ArtifactError."""
    save_artifact("old", nn.Linear(3, 2), {"n": 3}, profile="smoke", produced_by="test", directory=tmp_path)
    with pytest.raises(ArtifactError, match=r"do not fit today's Linear .*Delete .*old.pt and old.json"):
        load_artifact("old", lambda config: nn.Linear(config["n"], 4), directory=tmp_path)


TINY_VAE = dict(model=dict(base_channels=8, channel_mult=(1, 2), blocks_per_level=1, latent_channels=4),
                steps=1, batch=4, lr=1e-3, beta=1.0, ema_decay=0.9, train_images=None)


def _saved_tiny_vae(folder, monkeypatch):
    monkeypatch.setattr(ch02_vae, "vae_recipe", lambda profile: TINY_VAE)
    ch02_vae.chapter2_vae(get_profile("smoke"))
    return folder / "cache/artifacts/ch02_vae-smoke.pt", folder / "cache/artifacts/ch02_vae-smoke.json"


def test_weights_without_their_record_are_not_trained_over(one_image_per_class, monkeypatch):
    weights, record = _saved_tiny_vae(one_image_per_class, monkeypatch)
    record.unlink()
    before = weights.read_bytes()
    monkeypatch.setattr(ch02_vae, "train_vae", lambda *a, **k: pytest.fail("trained over the existing weights"))
    with pytest.raises(ArtifactError, match=r"incomplete: .*ch02_vae-smoke.pt exists but its record"):
        ch02_vae.chapter2_vae(get_profile("smoke"))
    assert weights.read_bytes() == before


@pytest.mark.parametrize("damage, message", [
    (lambda meta: "{not json", r"ch02_vae-smoke.json is not valid JSON"),
    (lambda meta: json.dumps({k: v for k, v in meta.items() if k != "sha256"}), r"ch02_vae-smoke.json lacks sha256"),
])
def test_a_damaged_record_is_an_artifact_error_naming_the_file(one_image_per_class, monkeypatch, damage, message):
    _, record = _saved_tiny_vae(one_image_per_class, monkeypatch)
    record.write_text(damage(json.loads(record.read_text())))
    with pytest.raises(ArtifactError, match=message):
        ch02_vae.chapter2_vae(get_profile("smoke"))


def test_an_artifact_of_another_profile_is_refused(one_image_per_class, monkeypatch):
    _, record = _saved_tiny_vae(one_image_per_class, monkeypatch)
    meta = json.loads(record.read_text())
    record.write_text(json.dumps({**meta, "profile": "colab"}))  # a colab model under the smoke name
    with pytest.raises(ArtifactError, match="trained in the 'colab' profile, not in 'smoke'"):
        ch02_vae.chapter2_vae(get_profile("smoke"))


def test_an_artifact_of_another_model_config_is_refused(one_image_per_class, monkeypatch):
    _saved_tiny_vae(one_image_per_class, monkeypatch)
    wider = {**TINY_VAE, "model": {**TINY_VAE["model"], "base_channels": 16}}
    monkeypatch.setattr(ch02_vae, "vae_recipe", lambda profile: wider)  # the recipe changed since
    with pytest.raises(ArtifactError, match=r"another model than the recipe's.*'base_channels': \(8, 16\)"):
        ch02_vae.chapter2_vae(get_profile("smoke"))


def _save_repeatedly(folder, n, errors):
    torch.manual_seed(0)
    model = nn.Linear(64, 64)
    try:
        for _ in range(n):
            save_artifact("shared", model, {"n": 64}, profile="smoke", produced_by="test", directory=folder)
    except Exception as err:  # reported to the parent
        errors.put(f"save: {type(err).__name__}: {err}")


def _load_repeatedly(folder, n, errors):
    done = 0
    while done < n:
        try:
            load_artifact("shared", lambda cfg: nn.Linear(cfg["n"], cfg["n"]), directory=folder)
            done += 1
        except ArtifactMissingError:
            time.sleep(0.001)  # not written yet
        except Exception as err:
            errors.put(f"load: {type(err).__name__}: {err}")
            return


def test_two_processes_saving_while_a_third_loads(tmp_path):
    """Each writer goes through its own temporary files, so saves never collide and readers never see
    half a record (before: FileNotFoundError in the savers, JSONDecodeError in the reader)."""
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_save_repeatedly, args=(tmp_path, 30, errors)) for _ in range(2)]
    procs.append(ctx.Process(target=_load_repeatedly, args=(tmp_path, 30, errors)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert not found, found
    assert all(p.exitcode == 0 for p in procs)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.fixture
def no_published_models(tmp_path, monkeypatch):
    """An empty registry: the tests' tiny VAEs, not the published ones, are the only models there are."""
    (tmp_path / "registry.json").write_text('{"schema_version": 1, "artifacts": {}}')
    monkeypatch.setattr(registry, "REGISTRY_PATH", tmp_path / "registry.json")


def test_colab_uses_the_published_laptop_model_instead_of_training_again(one_image_per_class, monkeypatch, capsys,
                                                                         no_published_models):
    """Issue 21.3: on a fresh Colab machine a later chapter loads the published laptop model (saying so) rather
    than retraining an earlier chapter's; without one it trains; the laptop and smoke profiles never substitute,
    and retrain=True (scripts/train.py, the chapter that trains it) always trains."""
    monkeypatch.setattr(ch02_vae, "vae_recipe", lambda profile: TINY_VAE)
    trained = []
    real_train = ch02_vae.train_vae
    monkeypatch.setattr(ch02_vae, "train_vae", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    ch02_vae.chapter2_vae(get_profile("laptop"))  # the published stand-in (here: in the cache)
    assert trained == [1]
    laptop = load_artifact("ch02_vae-laptop", ch02_vae._build_vae)[0]
    capsys.readouterr()
    vae, meta = ch02_vae.chapter2_vae(get_profile("colab"))
    out = capsys.readouterr().out
    assert trained == [1] and meta["profile"] == "laptop"
    assert "No colab ch02_vae is in the course cache or published yet: using the published laptop one" in out
    assert "/" not in out.split("scripts/train.py")[0]  # no path of the machine
    for a, b in zip(vae.state_dict().values(), laptop.state_dict().values()):
        assert torch.equal(a, b)
    ch02_vae.chapter2_vae(get_profile("smoke"))  # smoke never substitutes: it trains its own
    assert trained == [1, 1]
    ch02_vae.chapter2_vae(get_profile("colab"), retrain=True)
    assert trained == [1, 1, 1] and load_artifact("ch02_vae-colab", ch02_vae._build_vae)[1]["profile"] == "colab"


def test_colab_trains_when_no_stand_in_exists(one_image_per_class, monkeypatch, capsys, no_published_models):
    monkeypatch.setattr(ch02_vae, "vae_recipe", lambda profile: TINY_VAE)
    _, meta = ch02_vae.chapter2_vae(get_profile("colab"))
    assert meta["profile"] == "colab"
    assert "artifact 'ch02_vae-colab' is not in the course cache" in capsys.readouterr().out


def test_a_failed_download_is_reported_before_training(one_image_per_class, monkeypatch, capsys):
    """A published artifact that cannot be downloaded: its message (where to put the file) is printed, then the
    chapter trains; never the words 'no copy of it is published'."""
    from course_lib.course.registry import ArtifactDownloadError
    from course_lib.recipes import common

    def unreachable(name, build, map_location="cpu"):
        raise ArtifactDownloadError(f"could not download {name}: put it in artifacts/ by hand")
    monkeypatch.setattr(common, "resolve_artifact", unreachable)
    monkeypatch.setattr(ch02_vae, "vae_recipe", lambda profile: TINY_VAE)
    ch02_vae.chapter2_vae(get_profile("smoke"))
    out = capsys.readouterr().out
    assert "could not download ch02_vae-smoke: put it in artifacts/ by hand\nTraining it now" in out
    assert "no copy of it is published" not in out and "None" not in out


def test_chapter6_ldm_also_takes_the_published_laptop_stand_in_in_colab(monkeypatch, capsys, tmp_path):
    """Chapter 9 on a fresh Colab machine needs chapter 6's model: the published laptop one stands in."""
    from course_lib.course.artifacts import ArtifactMissingError as Missing
    from course_lib.recipes import ch06_ldm, common

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    sentinel = (nn.Identity(), {"profile": "laptop", "hardware": "a 2-core CPU", "train_seconds": 7200.0})

    def resolve(name, build, map_location="cpu"):
        if name == "ch06_ldm-laptop":
            return sentinel
        raise Missing(f"{name} missing")
    monkeypatch.setattr(common, "resolve_artifact", resolve)
    monkeypatch.setattr(ch06_ldm, "train_ldm", lambda *a, **k: pytest.fail("trained instead of the stand-in"))
    model, meta = ch06_ldm.chapter6_ldm(get_profile("colab"))
    assert model is sentinel[0] and meta is sentinel[1]
    assert "using the published laptop one instead (a 2-core CPU, 2.0 h of training)" in capsys.readouterr().out


def test_extras_are_kept_with_the_weights(tmp_path):
    """Named tensors saved with an artifact (e.g. the samples of its training snapshots) load back as
    meta["extras"], count in its checksum, and are listed in NAME.json; anything else is refused."""
    model = nn.Linear(3, 2)
    grid = torch.arange(24, dtype=torch.uint8).view(2, 3, 2, 2)
    save_artifact("lin", model, {}, profile="smoke", produced_by="test", directory=tmp_path,
                  extras={"snapshot_samples": grid})
    _, meta = load_artifact("lin", lambda cfg: nn.Linear(3, 2), directory=tmp_path)
    assert torch.equal(meta["extras"]["snapshot_samples"], grid)
    record = json.loads((tmp_path / "lin.json").read_text())
    assert record["extra_tensors"] == {"snapshot_samples": ["uint8", [2, 3, 2, 2]]}
    save_artifact("plain", model, {}, profile="smoke", produced_by="test", directory=tmp_path)
    assert load_artifact("plain", lambda cfg: nn.Linear(3, 2), directory=tmp_path)[1]["extras"] == {}
    with pytest.raises(TypeError, match="extras must map names to tensors"):
        save_artifact("bad", model, {}, profile="smoke", produced_by="test", directory=tmp_path,
                      extras={"steps": [1, 2]})


def test_chapter2_trains_one_autoencoder_the_vae_that_later_chapters_load():
    """Chapters 6, 7 and 9 work on the latents of chapter 2's VAE itself: no second autoencoder is trained."""
    assert set(ch02_vae.MODELS) == {"ch02_vae", *ch02_vae.SWEEP}
    assert not hasattr(ch02_vae, "chapter2_autoencoder")


def test_chapter3_unet_keeps_samples_over_training(one_image_per_class, monkeypatch, tmp_path):
    """With a checkpoint, chapter 3's train-or-load keeps the EMA snapshots' samples with the artifact (what the
    chapter shows as "samples over training" without the snapshots' weights): one row per snapshot, each
    the recipe's DDIM sampler on that snapshot from the same noise."""
    tiny = dict(unet="tiny", schedule="linear", num_steps=1000, steps=28, batch=2, lr=1e-3, warmup=1,
                ema_decay=0.9, train_images=None)
    monkeypatch.setattr(ch03_ddpm, "ddpm_recipe", lambda profile: tiny)
    # 4 DDIM steps instead of 50 (the sampler is the same; 14 x 50 tiny-U-Net calls took 45 s of CI)
    monkeypatch.setattr(ch03_ddpm, "snapshot_extras", partial(ch03_ddpm.snapshot_extras, num_steps=4))
    _, meta = ch03_ddpm.chapter3_unet(get_profile("smoke"), checkpoint_path=tmp_path / "ckpt.pt")
    extras = meta["extras"]
    assert extras["snapshot_steps"].tolist() == [2 * k for k in range(1, 15)]  # 14 snapshots, every 28 // 14
    assert extras["snapshot_samples"].shape == (14, 16, 3, 32, 32)
    assert extras["snapshot_samples"].dtype == torch.uint8
    seconds = extras["snapshot_seconds"]
    assert bool((seconds[1:] > seconds[:-1]).all()) and seconds[0] > 0
    snapshots = torch.load(tmp_path / "ckpt.pt", weights_only=True)["snapshots"]
    again = ch03_ddpm.sample_snapshots({4: snapshots[4]}, ch03_ddpm.unet_config(tiny), tiny, num_steps=4)[4]
    assert torch.equal(again, extras["snapshot_samples"][1])
    # without a checkpoint no snapshots are kept, and nothing is made up
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "other_cache"))
    assert ch03_ddpm.chapter3_unet(get_profile("smoke"))[1]["extras"] == {}


def test_chapter3_trains_its_own_model_rather_than_a_stand_in(one_image_per_class, monkeypatch, capsys):
    """Chapter 3 itself (stand_in=False) trains the colab model on a T4 even when the published laptop one
    exists; a later chapter (the default) takes the stand-in."""
    tiny = dict(unet="tiny", schedule="linear", num_steps=1000, steps=2, batch=2, lr=1e-3, warmup=1,
                ema_decay=0.9, train_images=None)
    monkeypatch.setattr(ch03_ddpm, "ddpm_recipe", lambda profile: tiny)
    ch03_ddpm.chapter3_unet(get_profile("laptop"))
    assert ch03_ddpm.chapter3_unet(get_profile("colab"))[1]["profile"] == "laptop"
    capsys.readouterr()
    _, meta = ch03_ddpm.chapter3_unet(get_profile("colab"), stand_in=False)
    assert meta["profile"] == "colab"
    out = capsys.readouterr().out
    assert "using the published laptop one" not in out and "Training it now with train_ddpm (colab recipe)" in out


def test_comparison_unets_are_trained_or_loaded_like_the_main_model(one_image_per_class, monkeypatch):
    """Chapter 3's comparison U-Nets: the recipe at the comparison's steps with their own schedule and
    target, saved as ch03_<schedule>_<target>-<profile> (what scripts/train.py trains and publishes)."""
    tiny = dict(unet="tiny", schedule="linear", num_steps=1000, steps=50, batch=2, lr=1e-3, warmup=1,
                ema_decay=0.9, train_images=None)
    monkeypatch.setattr(ch03_ddpm, "ddpm_recipe", lambda profile: tiny)
    recipe = ch03_ddpm.compare_recipe(get_profile("smoke"), "cosine", "v")
    assert (recipe["steps"], recipe["schedule"], recipe["target"], recipe["batch"]) == (50, "cosine", "v", 2)
    assert recipe["ema_decay"] == pytest.approx(1 - 8 / 50) and recipe["ema_decay"] ** recipe["steps"] < 1e-3
    seen = []
    real = ch03_ddpm.train_ddpm
    monkeypatch.setattr(ch03_ddpm, "train_ddpm", lambda r, x, **k: seen.append((r, k["loss_fn"])) or real(
        r, x, **{**k, "steps": 2}))
    _, meta = ch03_ddpm.MODELS["ch03_cosine_v"](get_profile("smoke"))
    (r, loss), = seen
    assert meta["name"] == "ch03_cosine_v-smoke" and meta["config"]["recipe"]["target"] == "v"
    assert (loss.target, r["schedule"]) == ("v", "cosine") and loss.schedule.alpha_bar[-1] < 1e-4
    ch03_ddpm.comparison_unet(get_profile("smoke"), "cosine", "v")  # loaded: no second training
    assert len(seen) == 1
    with pytest.raises(ValueError, match="no comparison U-Net for schedule 'linear' and target 'v'"):
        ch03_ddpm.comparison_unet(get_profile("smoke"), "linear", "v")


def test_the_vae_sweep_is_trained_or_loaded_like_the_main_vae(one_image_per_class, monkeypatch):
    """Chapter 2's sweep VAEs: the recipe with their own beta or latent shape, all at the sweep's steps, saved
    as their own artifacts (what scripts/train.py trains and publishes); an unknown name is refused."""
    tiny = {**TINY_VAE, "model": {**TINY_VAE["model"], "channel_mult": (1, 2, 2)}}  # 4x8x8 latents
    monkeypatch.setattr(ch02_vae, "vae_recipe", lambda profile: tiny)
    recipe = ch02_vae.sweep_recipe(get_profile("smoke"), "ch02_sweep_beta1_16x16")
    assert (recipe["beta"], recipe["steps"], recipe["model"]["channel_mult"]) == (1.0, 50, (1, 2))
    assert recipe["ema_decay"] ** recipe["steps"] < 1e-3
    assert ch02_vae.sweep_recipe(get_profile("laptop"), "ch02_sweep_beta10")["beta"] == 10.0
    vae, meta = ch02_vae.MODELS["ch02_sweep_beta0.1"](get_profile("smoke"), steps=2)
    assert meta["name"] == "ch02_sweep_beta0.1-smoke" and meta["config"]["recipe"]["beta"] == 0.1
    assert vae.config.latent_shape() == (4, 8, 8)
    big, _ = ch02_vae.sweep_vae(get_profile("smoke"), "ch02_sweep_beta1_16x16", steps=2)
    assert big.config.latent_shape() == (4, 16, 16)
    assert_loads_without_training(monkeypatch, ch02_vae, "train_vae",
                                  lambda: ch02_vae.sweep_vae(get_profile("smoke"), "ch02_sweep_beta0.1"), vae)
    with pytest.raises(ValueError, match="no sweep VAE named 'ch02_sweep_beta2'"):
        ch02_vae.sweep_vae(get_profile("smoke"), "ch02_sweep_beta2")


def test_the_laptop_sweeps_beta_1_point_is_chapter_2s_vae(monkeypatch):
    """In the laptop profile the sweep's beta = 1 recipe is the chapter VAE's (2,000 steps, the same EMA): one
    model, one artifact (ch02_vae-laptop). In the other profiles they differ and are trained apart."""
    laptop, smoke = get_profile("laptop"), get_profile("smoke")
    assert ch02_vae.sweep_recipe(laptop, "ch02_sweep_beta1") == ch02_vae.vae_recipe(laptop)
    assert ch02_vae.same_model("ch02_sweep_beta1", laptop) == "ch02_vae"
    assert ch02_vae.same_model("ch02_sweep_beta0.1", laptop) == "ch02_sweep_beta0.1"
    assert ch02_vae.same_model("ch02_sweep_beta1", smoke) == "ch02_sweep_beta1"
    assert ch02_vae.same_model("ch03_unet", laptop) == "ch03_unet"
    calls = []
    monkeypatch.setattr(ch02_vae, "chapter2_vae", lambda *a, **k: calls.append((a, k)) or ("vae", {}))
    assert ch02_vae.sweep_vae(laptop, "ch02_sweep_beta1") == ("vae", {})
    assert calls[0][0][0] is laptop and calls[0][1]["stand_in"] is False
