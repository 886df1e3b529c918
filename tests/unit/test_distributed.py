"""The training loop under torchrun (DDP): on CPU with the gloo backend and two processes.

Rule under test (course_lib.training.distributed): every rank draws the same global batch and keeps its
1/N of the rows, so N processes train like one process on the same global batches, and a
checkpoint written by N processes resumes in any other number of processes.
"""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from course_lib.recipes import ch02_vae, ch03_ddpm, common
import course_lib.training.checkpoint as checkpoint
from course_lib.training import distributed as dist
from course_lib.data import CIFAR10_CLASSES
from course_lib.models import MLPConfig, MLPDenoiser
from course_lib.course.profiles import get_profile
from course_lib.training.loop import TrainConfig, train

ROOT = Path(__file__).resolve().parents[2]
K, N = 4, 10  # steps of the two-process run, steps of the whole run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, env: dict, job, out: Path) -> None:
    """What torchrun does for one rank: set the environment, join the group, run ``job``, save its result."""
    os.environ.update(env, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), COURSE_DEVICE="cpu")
    torch.set_num_threads(1)
    assert dist.init_from_env() and dist.rank() == rank and dist.world_size() == world
    try:
        torch.save(job(out), out / f"rank{rank}.pt")
    finally:
        dist.close()


def _run_ranks(job, out: Path, world: int = 2, env: dict | None = None) -> list[dict]:
    mp.spawn(_worker, args=(world, _free_port(), env or {}, job, out), nprocs=world)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(world)]


# ---- a tiny problem whose loss is deterministic given the batch (the batch carries t and the noise) ----

def _global_batches(steps: int = N, batch: int = 16):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(batch, 2, generator=g), torch.randint(0, 1000, (batch,), generator=g),
             torch.randn(batch, 2, generator=g)) for _ in range(steps)]


def _loss(model, batch):
    x_t, t, eps = batch
    return nn.functional.mse_loss(model(x_t, t), eps)


def _model():
    torch.manual_seed(0)
    return MLPDenoiser(MLPConfig(data_dim=2, hidden=32, num_blocks=2, time_dim=16))


def _config(steps: int, checkpoint=None) -> TrainConfig:
    return TrainConfig(steps=steps, lr=1e-2, ema_decay=0.9, warmup_steps=3, log_every=2, progress=False,
                       checkpoint_path=checkpoint, checkpoint_every=2 if checkpoint else 0)


def _train_k_steps(out: Path) -> dict:
    res = train(_model(), _loss, iter(_global_batches()), _config(K, out / "run.pt"))
    return {"history": res.history, "model": res.model.state_dict(), "ema": res.ema.state_dict()}


def _two_rank_jobs(out: Path) -> dict:
    """Both two-process runs in one launch (starting a process costs seconds): K steps of the tiny
    problem, then the chapter 2 VAE's train-or-load path with a tiny recipe."""
    return {"mlp": _train_k_steps(out), "vae": _train_vae_recording_writes(out)}


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """The results of each rank (a list of two dicts) and the folder they wrote to."""
    out = tmp_path_factory.mktemp("two_ranks")
    _image_folder(out / "data")
    env = {"COURSE_DATA": str(out / "data"), "COURSE_CACHE": str(out / "cache")}
    return out, _run_ranks(_two_rank_jobs, out, env=env)


def _assert_state_close(a: dict, b: dict) -> None:
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6, msg=lambda m: f"{k}: {m}")


def test_two_processes_equal_one_process_on_the_same_global_batch(two_ranks):
    r0, r1 = (r["mlp"] for r in two_ranks[1])
    for k in r0["model"]:  # DDP averages the gradients: every rank holds the same weights and EMA
        assert torch.equal(r0["model"][k], r1["model"][k]) and torch.equal(r0["ema"][k], r1["ema"][k])
    one = train(_model(), _loss, iter(_global_batches()), _config(K))
    assert r0["history"] == r1["history"] and [s for s, _ in r0["history"]] == [2, 4]
    torch.testing.assert_close(torch.tensor(r0["history"]), torch.tensor(one.history), rtol=1e-5, atol=0)
    _assert_state_close(r0["model"], one.model.state_dict())
    _assert_state_close(r0["ema"], one.ema.state_dict())


def test_a_two_process_checkpoint_resumes_in_one_process(two_ranks, tmp_path):
    out, _ = two_ranks
    ckpt = tmp_path / "run.pt"
    shutil.copy(out / "run.pt", ckpt)
    batches = _global_batches()
    resumed = train(_model(), _loss, iter(batches), _config(N, ckpt))  # the stream from its start: K skipped
    whole = train(_model(), _loss, iter(batches), _config(N))
    assert resumed.steps_run == N - K and [s for s, _ in resumed.history] == [2, 4, 6, 8, 10]
    torch.testing.assert_close(torch.tensor(resumed.history), torch.tensor(whole.history), rtol=1e-5, atol=0)
    _assert_state_close(resumed.model.state_dict(), whole.model.state_dict())
    _assert_state_close(resumed.ema.state_dict(), whole.ema.state_dict())


# ---- the recipes' train-or-load path: only rank 0 writes ----

TINY_VAE = dict(model=dict(base_channels=8, channel_mult=(1, 2), blocks_per_level=1, latent_channels=4),
                steps=2, batch=4, lr=1e-3, beta=1.0, ema_decay=0.9, train_images=None)


def _train_vae_recording_writes(out: Path) -> dict:
    writes = []
    save_checkpoint, save_artifact = checkpoint.save_checkpoint, common.save_artifact
    checkpoint.save_checkpoint = lambda *a, **k: (writes.append("checkpoint"), save_checkpoint(*a, **k))[1]
    common.save_artifact = lambda *a, **k: (writes.append("artifact"), save_artifact(*a, **k))[1]
    ch02_vae.vae_recipe = lambda profile: TINY_VAE
    vae, meta = ch02_vae.chapter2_vae(get_profile("smoke"), checkpoint_path=out / "vae.pt")
    return {"writes": writes, "checkpoint_there": (out / "vae.pt").exists(), "seed": torch.initial_seed(),
            "state": vae.state_dict(), "meta": meta}


def _image_folder(root: Path) -> None:
    """A CIFAR-10-shaped training folder: one image per class."""
    from PIL import Image

    for i, name in enumerate(CIFAR10_CLASSES):
        (root / "train" / name).mkdir(parents=True)
        Image.new("RGB", (32, 32), (25 * i, 50, 0)).save(root / "train" / name / "0000.jpg")


def test_only_rank_0_writes_the_checkpoint_and_the_artifact(two_ranks):
    out, results = two_ranks
    r0, r1 = (r["vae"] for r in results)
    assert r0["writes"][-1] == "artifact" and set(r0["writes"]) == {"checkpoint", "artifact"} and r1["writes"] == []
    assert r1["checkpoint_there"]  # rank 1 returned only after rank 0 had written it
    assert r1["seed"] == r0["seed"] + 1  # the loss's own draws differ between ranks
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in r0["state"])  # both loaded the same artifact
    meta = json.loads((out / "cache/artifacts/ch02_vae-smoke.json").read_text())
    assert meta["config"]["processes"] == 2 and meta["config"]["recipe"]["steps"] == 2


def test_shard_splits_the_global_batch_and_refuses_an_uneven_split():
    x, y = torch.arange(12).reshape(6, 2), torch.arange(6)
    parts = [dist.shard((x, y), r, 3) for r in range(3)]
    assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(parts[1][1], y[2:4])
    with pytest.raises(ValueError, match="global batch of 6 does not split evenly over 4 processes"):
        dist.shard(x, 0, 4)
    assert dist.world_size() == 1 and dist.rank() == 0 and dist.is_main()  # no group in pytest itself


# ---- scripts/train.py ----

def _script():
    spec = importlib.util.spec_from_file_location("train_script", ROOT / "scripts/train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_names_the_valid_models_and_profiles(capsys):
    script = _script()
    with pytest.raises(SystemExit):
        script.parse_args(["ch99_nothing"])
    assert "ch02_vae" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.parse_args(["ch03_unet", "--profile", "huge"])
    assert "'smoke', 'laptop', 'colab', 'full'" in capsys.readouterr().err


CIFAR = Path(os.environ.get("COURSE_DATA") or ROOT.parent / "shared/data/cifar10-jpeg")


@pytest.mark.skipif(not (CIFAR / "train").is_dir() and not (CIFAR / "cifar10-jpeg/train").is_dir(),
                    reason=f"CIFAR-10 is not at {CIFAR} (set COURSE_DATA to the JPEG copy)")
def test_script_under_torchrun_then_resumed_in_one_process(tmp_path, monkeypatch, capsys):
    """2 steps in two processes (torchrun), 2 more from their checkpoint in this one; the chapter loads the result."""
    ckpt, args = tmp_path / "ch03.pt", ["ch03_unet", "--profile", "smoke", "--checkpoint", str(tmp_path / "ch03.pt")]
    env = {**os.environ, "COURSE_DATA": str(CIFAR), "COURSE_CACHE": str(tmp_path), "COURSE_DEVICE": "cpu",
           "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    run = subprocess.run(torchrun + [str(ROOT / "scripts/train.py"), *args, "--steps", "2"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "on 2 process(es)" in run.stdout and "the chapters load it as ch03_unet-smoke" in run.stdout
    for name in ("COURSE_DATA", "COURSE_CACHE", "COURSE_DEVICE"):
        monkeypatch.setenv(name, env[name])
    _script().main([*args, "--steps", "4", "--retrain"])  # one process now (no torchrun here)
    assert "Resumed from" in capsys.readouterr().out and torch.load(ckpt, weights_only=True)["step"] == 4
    monkeypatch.setattr(ch03_ddpm, "train_ddpm", lambda *a, **k: pytest.fail("trained instead of loading"))
    unet, meta = ch03_ddpm.chapter3_unet(get_profile("smoke"))
    assert meta["config"]["processes"] == 1 and meta["config"]["recipe"]["steps"] == 4
    assert unet.config == ch03_ddpm.unet_config(ch03_ddpm.ddpm_recipe(get_profile("smoke")))
