"""The built book in headless Chromium: tests/book/check_book.py run as a pytest test.

Needs the book built (`bash book/build.sh`) and /usr/bin/chromium + /usr/bin/chromedriver
(`bash tests/book/install_chromium.sh`); tests/run.sh does both before this test. A missing
prerequisite is a failure that says what to run, never a skip.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import check_book  # noqa: E402


def test_every_chapter_page_renders_offline_in_chromium():
    html = check_book.ROOT / "book/_build/html"
    toc = check_book.ROOT / "book/_toc.yml"
    reason = check_book.preflight(html, toc)
    assert reason is None, f"cannot run the browser check: {reason}"
    log = io.StringIO()
    results = check_book.run(html, toc, check_book.ROOT, check_book.ROOT / "book/_build/screenshots", out=log)
    print(log.getvalue())
    chapters = [r for r in results if r.docname.startswith("chapters/")]
    assert chapters, "no chapter page was checked: is book/_toc.yml listing chapters/?"
    failures = check_book.format_failures(results)
    assert not failures, "the built book has problems in the browser:\n" + failures


def test_check_reports_a_broken_page(tmp_path):
    """The check can fail: a chapter page with raw TeX, a missing image, a broken link and no Colab
    badges is reported."""
    reason = check_book.preflight(check_book.ROOT / "book/_build/html", check_book.ROOT / "book/_toc.yml")
    assert reason is None, f"cannot run the browser check: {reason}"
    html = tmp_path / "html"
    (html / "chapters/01_bad").mkdir(parents=True)
    (html / "index.html").write_text("<html><body><p>home</p></body></html>")
    (html / "chapters/01_bad/01_bad.html").write_text(
        "<html><body><p>The loss is $\\frac{1}{2}\\|x\\|^2$.</p>"
        '<img src="missing.png"><a href="nowhere.html">a link</a></body></html>')
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: index\nchapters:\n  - file: chapters/01_bad/01_bad\n")
    results = check_book.run(html, toc, tmp_path, None, out=io.StringIO(), timeout=5)
    failures = check_book.format_failures(results)
    assert "raw TeX" in failures, failures
    assert "image not loaded" in failures, failures
    assert "broken link" in failures, failures
    assert "no loaded 'Open in Colab' badge linking chapters/01_bad/01_bad_student.ipynb" in failures, failures
