"""Colab links: the course's release ref, the install cell, the badges and URLs that open a chapter's
lecture or student notebook in Colab, and how to keep one's progress there (KEEP_PROGRESS, on the
students page).
"""

from __future__ import annotations

from pathlib import Path

# The git ref students install and the Colab badges open: defined here only (the install cell below,
# book/_ext/colab_badges.py and the links of the students page use it; tests check all three). It is
# "main" until the first release; at a release, tag the commit (git tag vX.Y.Z, pyproject's version),
# set COURSE_REF to the tag, regenerate the chapters' first cell and the student notebooks, and
# re-execute the chapters (book/instructors.md, "Releasing").
COURSE_REF = "main"
REPOSITORY = "github.com/diffusion-from-scratch/course"  # the same as book/_config.yml's repository.url

# The first code cell of every chapter. It runs before course_lib is installed, so it cannot live
# in course_lib as a function; off Colab it does nothing. On a Colab runtime without a GPU it falls
# back to the laptop profile (CPU), saying so, instead of running the colab profile on a CPU.
COLAB_CELL = (
    "import os\n"
    "import sys\n"
    "\n"
    'if "google.colab" in sys.modules:  # on Colab: install this course release\n'
    f'    URL = "git+https://{REPOSITORY}@{COURSE_REF}"\n'
    '    %pip install -q "course-lib[colab] @ {URL}"\n'
    '    # keep checkpoints and data across sessions on your Google Drive:\n'
    '    # from google.colab import drive\n'
    '    # drive.mount("/content/drive")\n'
    '    # os.environ["COURSE_CACHE"] = "/content/drive/MyDrive/course_lib"\n'
    "    import torch\n"
    "\n"
    "    GPU = torch.cuda.is_available()  # Runtime > Change runtime type > T4 GPU\n"
    '    os.environ.setdefault("COURSE_PROFILE", "colab" if GPU else "laptop")\n'
    "    if not GPU:\n"
    '        print("No GPU in this runtime: running the laptop profile (CPU, "\n'
    '              "slower). For the colab profile pick Runtime > Change "\n'
    '              "runtime type > T4 GPU, then run this cell again.")'
)


# book/students.md's section on keeping progress across Colab sessions (course_lib.book.student writes the
# page). COURSE_CACHE is the one folder for everything computed once: checkpoints, artifacts, FID statistics,
# decoded data and torchvision's CIFAR-10 download (course_lib.course.paths, course_lib.data.cifar).
KEEP_PROGRESS = """## Keeping your progress on Colab

A Colab runtime loses its files when it disconnects or is recycled. Everything the course computes
once goes to one folder, named by one variable, `COURSE_CACHE` (else `~/.cache/course_lib`):
the CIFAR-10 download and its decoded copy, FID statistics, trained models (`artifacts/`) and
training checkpoints (`checkpoints/`). To keep them, mount your Google Drive and point
`COURSE_CACHE` at a folder there, in a cell you run first in each session:

```python
from google.colab import drive
drive.mount("/content/drive")
%env COURSE_CACHE=/content/drive/MyDrive/course_lib
```

(The first cell of every chapter carries these lines, commented out: remove the `#`s.) Without a
Drive folder, a chapter that needs an earlier chapter's model on a fresh runtime loads the
published `laptop` model when no `colab` one is published, and says so, instead of training the
earlier chapter's model again.

The course never deletes a checkpoint or a trained model for you. When a chapter starts a
training afresh where an earlier run left a checkpoint, or saves a model over one with other
weights, it renames the earlier file with the time (for example
`checkpoints/ch03_ddpm-colab.20250131-142500.pt`) and prints that name; delete such files
yourself once you no longer need them."""

# book/students.md's section for a reader without a GPU: the models not yet published, trained ahead in chunks
ON_A_LAPTOP = """## On a laptop, without a GPU

With `COURSE_PROFILE=laptop` (what a Colab runtime without a GPU picks too) each chapter loads the
models it needs from the published, checksummed files and reproduces its page within the time the
introduction's table gives. Where a model is not published yet, the chapter trains it with the same
recipe and says first how long that will take (on 2 cores, from minutes to many hours). Those
hours can be spent ahead, in chunks, with the models in the order the chapters need them; each run
stops at a checkpoint and the same command goes on exactly where it stopped:

```bash
python scripts/train_queue.py --profile laptop --status      # what is saved, started, still to do
python scripts/train_queue.py --profile laptop --hours 2.5   # train for 2.5 hours, then stop
```

Give it the machine to itself: a second job on the same two cores slows both far more than twice."""


def _book_config(root: Path) -> dict:
    import yaml

    return yaml.safe_load((Path(root) / "book/_config.yml").read_text())


def colab_url(path: str | Path, root: Path) -> str:
    """Open-in-Colab URL of repository file ``path``, from book/_config.yml's repository and Colab settings."""
    config = _book_config(root)
    repo = config["repository"]["url"].rstrip("/").removeprefix("https://github.com/")
    colab = config.get("launch_buttons", {}).get("colab_url", "https://colab.research.google.com").rstrip("/")
    prefix = (config["repository"].get("path_to_book") or "").strip("/")
    full = "/".join(p for p in (prefix, Path(path).as_posix()) if p)
    return f"{colab}/github/{repo}/blob/{COURSE_REF}/{full}"


def colab_admonition(lecture: str | Path, root: Path) -> str:
    """A MyST admonition linking a chapter's lecture and student notebooks on Colab, for its first cell."""
    return (f"```{{admonition}} Run this chapter on Colab\n:class: tip\n\n"
            f"Open the [lecture notebook]({colab_url(lecture, root)}) (with solutions) or the "
            f"[student notebook]({colab_url(student_path(lecture), root)}) (exercises to fill in). "
            f"Choose a GPU runtime; the first cell installs `course_lib`.\n```")


def student_path(lecture: str | Path) -> Path:
    lecture = Path(lecture)
    return lecture.with_name(f"{lecture.stem}_student.ipynb")
