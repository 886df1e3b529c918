"""Small Sphinx extension: an "Open in Colab" badge for the lecture and the student notebook under
each chapter's title.

The theme's launch button (the rocket icon) opens the page's own notebook; the badges also open
the chapter's student notebook (``NN_name_student.ipynb``, made by scripts/make_student_notebooks.py)
and stay visible in print and on small screens. The badge images are vendored SVGs in
book/_static, so the page makes no external request; only the links point to Colab:
``https://colab.research.google.com/github/<owner>/<repo>/blob/<ref>/<path>.ipynb``, at the ref that
the notebooks' install cell installs (``course_lib.book.colab.COURSE_REF``, defined only there).

A chapter page is a document ``chapters/NN_name/NN_name`` whose notebook exists. The handler runs
on ``doctree-read`` before Sphinx's image collector (priority 500), so the images are copied like
any other figure.
"""
from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes

from course_lib.book.colab import COURSE_REF

CHAPTER = re.compile(r"^chapters/(\d\d_[a-z0-9_]+)/\1$")
COLAB = "https://colab.research.google.com/github"
BADGES = (("", "/book/_static/colab-lecture.svg", "Open the lecture notebook in Colab"),
          ("_student", "/book/_static/colab-student.svg", "Open the student notebook (exercises to solve) in Colab"))


def colab_url(repository_url: str, branch: str, notebook: str) -> str:
    """The Colab address of ``notebook`` (a path from the repository root) on GitHub."""
    owner_repo = re.sub(r"^https?://github\.com/", "", repository_url.rstrip("/"))
    return f"{COLAB}/{owner_repo}/blob/{branch}/{notebook}"


def add_badges(app, doctree) -> None:
    docname = app.env.docname
    if not CHAPTER.match(docname) or not Path(app.srcdir, f"{docname}.ipynb").is_file():
        return
    options = app.config.html_theme_options or {}
    repo = options.get("repository_url")
    if not repo:
        raise ValueError("colab_badges: set repository.url in book/_config.yml (the Colab links need it)")
    section = doctree.next_node(nodes.section)
    if section is None or not isinstance(section[0], nodes.title):
        return
    para = nodes.paragraph(classes=["colab-badges"])
    for suffix, image, text in BADGES:
        link = nodes.reference(refuri=colab_url(repo, COURSE_REF, f"{docname}{suffix}.ipynb"), classes=["colab-badge"])
        link += nodes.image(uri=image, alt=text)
        para += [link, nodes.Text(" ")]
    section.insert(1, para)


def setup(app):
    app.connect("doctree-read", add_badges, priority=400)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
