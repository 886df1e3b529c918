"""scripts/train_queue.py: the laptop models in an order where each comes after the models it loads, the state
of each, and a run that skips saved models and stops with the first that pauses at a checkpoint."""

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("train_queue", ROOT / "scripts/train_queue.py")
queue = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(queue)


def test_the_queue_holds_every_laptop_model_after_the_models_it_loads():
    q = list(queue.QUEUE)
    gpu_only = {"ch07_dit_S1", "ch07_dit_S2"}  # plotted in the full profile only
    assert set(q) == set(queue.train_script.MODELS) - gpu_only and len(q) == len(set(q))
    before = [("ch02_vae", "ch06_ldm"), ("ch02_vae", "ch07_dit_XXS2"), ("ch02_vae", "ch07_unet"),
              ("ch03_unet", "ch05_unet"), ("ch03_unet", "ch08_fm"), ("ch08_fm", "ch08_reflow"),
              ("ch06_ldm", "ch09_lcm")]
    for first, then in before:
        assert q.index(first) < q.index(then), (first, then)


def test_status_then_a_run_that_skips_saved_and_published_models_and_stops_at_a_pause(cache, monkeypatch, capsys):
    (cache / "artifacts").mkdir(parents=True)
    (cache / "checkpoints").mkdir(parents=True)
    (cache / "artifacts/ch02_sweep_beta0.1-laptop.pt").write_bytes(b"x")
    torch.save({"step": 1_234}, cache / "checkpoints/ch02_sweep_beta10-laptop.pt")
    monkeypatch.setattr(queue, "load_registry", lambda: {"ch02_sweep_beta1_16x16-laptop": {}})
    assert queue.status("ch02_sweep_beta0.1", "laptop") == "saved"
    assert queue.status("ch02_sweep_beta10", "laptop") == "checkpoint at step 1,234"
    assert queue.status("ch02_sweep_beta1_16x16", "laptop") == "published"
    assert queue.status("ch02_vae", "laptop") == "not started"
    # in the laptop profile the sweep's beta = 1 point is chapter 2's VAE (one recipe, one artifact)
    assert queue.status("ch02_sweep_beta1", "laptop") == "not started (as ch02_vae: the same recipe)"
    assert queue.status("ch02_sweep_beta1", "smoke") == "not started"
    queue.main(["--profile", "laptop", "--status"])
    assert "checkpoint at step 1,234" in capsys.readouterr().out
    calls = []

    def fake_train(argv):  # trains the first model it is given to the end, pauses the second
        calls.append(argv)
        if len(calls) == 1:
            model = queue.train_script.same_model(argv[0], queue.get_profile("laptop"))
            (cache / f"artifacts/{model}-laptop.pt").write_bytes(b"x")

    monkeypatch.setattr(queue.train_script, "main", fake_train)
    queue.main(["--profile", "laptop", "--hours", "2"])
    # beta 0.1 saved; beta 1 trained as ch02_vae (so ch02_vae is saved too); beta 10 pauses
    assert [c[0] for c in calls] == ["ch02_sweep_beta1", "ch02_sweep_beta10"]
    assert queue.status("ch02_vae", "laptop") == "saved"
    assert calls[0][1:4] == ["--profile", "laptop", "--hours"] and 1.9 < float(calls[0][4]) <= 2
    with pytest.raises(SystemExit):
        queue.main(["--profile", "laptop"])  # neither --hours nor --status
