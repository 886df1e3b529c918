import pytest
import torch

from course_lib import PROFILES, get_profile, show_setup


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "full")
    assert get_profile().name == "full"
    monkeypatch.delenv("COURSE_PROFILE")
    assert get_profile().name == "smoke"


def test_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "huge")
    with pytest.raises(ValueError, match="Unknown profile 'huge'.*smoke, laptop, colab, full"):
        get_profile()


def test_choose_needs_every_profile():
    p = get_profile("smoke")
    assert p.choose(smoke=1, laptop=4, colab=2, full=3) == 1
    assert get_profile("laptop").choose(smoke=1, laptop=4, colab=2, full=3) == 4
    with pytest.raises(ValueError, match=r"missing \['full'\]"):
        p.choose(smoke=1, laptop=4, colab=2)
    with pytest.raises(ValueError, match=r"missing \['laptop'\]"):
        p.choose(smoke=1, colab=2, full=3)
    with pytest.raises(ValueError, match=r"unknown \['tiny'\]"):
        p.choose(smoke=1, laptop=4, colab=2, full=3, tiny=0)


def test_show_setup_prints_profile_device_and_plan(capsys):
    show_setup("1 · test", {"training steps": 10}, profile=PROFILES["colab"], device=torch.device("cpu"))
    out = capsys.readouterr().out
    assert "Profile:  colab" in out and "Device:   cpu" in out and "training steps: 10" in out
