"""The cells that nbval compares (tag ``nbval-check-output``) must print the same in every profile: CI runs the
chapters in ``smoke`` against notebooks stored from another profile (the book is the ``laptop`` run). So such a
cell may read only what cannot depend on the profile: names it binds itself, imports, builtins, and functions
defined in the chapter whose own free names obey the same rule (a student's solution, a checker). A cell that
reads ``P``, ``profile``, ``device``, a trained model or a measured result fails here, naming the cell and the
name; the static check is backed by nbval itself once chapters are stored from ``laptop``."""

import ast
import builtins
import symtable
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*/[0-9][0-9]_*.py"))
CHECK_TAG = "nbval-check-output"


def _source(cell) -> str:
    """A code cell's source with IPython magics and shell lines blanked (they are not Python)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines())


def _free_names(table: symtable.SymbolTable) -> set[str]:
    """Names a code block reads from the module level: its own global references and its children's."""
    names = set()
    for sym in table.get_symbols():
        if table.get_type() == "module":
            if sym.is_referenced() and not (sym.is_assigned() or sym.is_imported()):
                names.add(sym.get_name())
        elif sym.is_global() and sym.is_referenced():
            names.add(sym.get_name())
    for child in table.get_children():
        names |= _free_names(child) - ({s.get_name() for s in table.get_symbols() if s.is_assigned()}
                                       if table.get_type() == "module" else set())
    return names


def profile_dependent_reads(text: str) -> list[tuple[int, str]]:
    """(cell number, name) for each name a compared cell of the chapter ``text`` (py:percent) reads that might
    depend on the profile. Empty when every compared cell is profile-independent."""
    cells = [c for c in jupytext.reads(text, fmt="py:percent").cells if c.cell_type == "code"]
    imported, functions = set(dir(builtins)), {}
    for cell in cells:
        tree = ast.parse(_source(cell))
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                functions[node.name] = _free_names(symtable.symtable(ast.unparse(node), "def", "exec"))
    safe = set(imported)
    changed = True
    while changed:  # a function is safe when everything it reads is safe (solutions may call each other)
        changed = False
        for name, free in functions.items():
            if name not in safe and free <= safe | {name}:
                safe.add(name)
                changed = True
    bad = []
    for number, cell in enumerate(cells, 1):
        if CHECK_TAG not in cell.metadata.get("tags", []):
            continue
        reads = _free_names(symtable.symtable(_source(cell), "cell", "exec"))
        bad += [(number, name) for name in sorted(reads - safe)]
    return bad


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.parent.name)
def test_compared_cells_do_not_read_profile_dependent_names(path):
    bad = profile_dependent_reads(path.read_text())
    assert not bad, (f"{path.name}: cells tagged {CHECK_TAG!r} must give the same output in every profile, but "
                     + "; ".join(f"code cell {n} reads {name!r}" for n, name in bad)
                     + ". Build the inputs inside the cell (fixed seeds and shapes), or drop the tag.")


def test_every_chapter_has_compared_cells():
    assert all(CHECK_TAG in p.read_text() for p in CHAPTERS)


CHAPTER = '''# %%
import torch
P = dict(steps=10)
model = torch.nn.Linear(2, 2)

# %% tags=["solution"]
def helper(x):
    return 2 * x

def solution(x):
    return helper(x) + torch.ones(1)

def leaky(x):
    return x * P["steps"]

# %% tags=["nbval-check-output"]
y = torch.zeros(2)
print(solution(y), [v for v in range(3)], (lambda a: a + 1)(2))

# %% tags=["nbval-check-output"]
print(leaky(torch.zeros(1)), P["steps"], model.weight.shape)
'''


def test_the_check_catches_profile_dependent_reads_and_allows_the_rest():
    assert profile_dependent_reads(CHAPTER) == [(4, "P"), (4, "leaky"), (4, "model")]
