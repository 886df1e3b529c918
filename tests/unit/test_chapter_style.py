"""Chapter code fits the book's code column: every line of a code cell in
chapters/NN_name/NN_name.py is at most 79 characters (PEP 8). Markdown cells
are not checked: the book wraps them."""

from pathlib import Path

import pytest

from course_lib.book.notebooks import read_py

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted(ROOT.glob("chapters/[0-9][0-9]_*/[0-9][0-9]_*.py"))
MAX_LINE = 79


def long_code_lines(py_path, limit=MAX_LINE, skip=()):
    """(line number in the .py, length, line) of every code-cell line longer
    than ``limit`` characters, reading the cells as jupytext does (read_py).
    Cells whose source is in ``skip`` are left out (the Colab set-up cell,
    course_lib.book.colab.COLAB_CELL, is checked like any other).
    """
    text = Path(py_path).read_text()
    file_lines = text.splitlines()
    markers = [k for k, line in enumerate(file_lines)
               if line.startswith("# %%")]
    cells = read_py(py_path).cells
    found = []
    for k, cell in enumerate(cells):
        if cell.cell_type != "code" or cell.source in skip:
            continue
        # the cell's lines in the file, to name line numbers; jupytext writes
        # a magic such as %pip as a comment ("# %pip") in the .py
        if len(markers) == len(cells):
            start = markers[k] + 1
            end = markers[k + 1] if k + 1 < len(markers) else len(file_lines)
        else:  # cells without a marker: search the whole file
            start, end = 0, len(file_lines)
        cursor = start
        for line in cell.source.splitlines():
            if len(line) <= limit:
                continue
            indent = line[: len(line) - len(line.lstrip())]
            commented = indent + "# " + line.lstrip()
            number = next((i for i in range(cursor, end)
                           if file_lines[i] in (line, commented)), None)
            if number is not None:
                cursor = number + 1
            found.append((None if number is None else number + 1, len(line),
                          line))
    return found


def test_there_are_chapters():
    assert CHAPTERS, "no chapters/NN_name/NN_name.py found"


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_code_lines_fit_the_book(py):
    rel = py.relative_to(ROOT)
    problems = [f"{rel}:{number or '?'}: {length} characters "
                f"(max {MAX_LINE}): {line.strip()[:60]}"
                for number, length, line in long_code_lines(py)]
    assert not problems, (
        f"{len(problems)} code line(s) wider than {MAX_LINE} characters; "
        "wrap them (PEP 8):\n" + "\n".join(problems))


def test_checker_catches_a_long_code_line(tmp_path):
    long_code = "x = [" + ", ".join(["1"] * 40) + "]"
    long_prose = "# " + "words " * 30
    py = tmp_path / "01_demo.py"
    py.write_text(
        "# %% [markdown]\n"
        "# # A title\n"
        f"{long_prose}\n"
        "\n"
        "# %%\n"
        "import os\n"
        f"{long_code}\n"
        "\n"
        '# %% tags=["solution"]\n'
        "y = 1\n"
        f"    # {'%'}pip install -q {'a' * 90}\n"
    )
    found = long_code_lines(py, skip=())
    assert [(n, length) for n, length, _ in found] == [
        (7, len(long_code)), (11, len(f"    %pip install -q {'a' * 90}"))]
    assert found[0][2] == long_code
    assert long_code_lines(py, limit=200, skip=()) == []
    # the markdown line is as long, and never reported
    assert len(long_prose) > MAX_LINE
