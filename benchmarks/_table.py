"""The benchmarks' shared output: a list of rows printed as a Markdown table (header first)."""

from __future__ import annotations


def print_markdown_table(rows: list[list[str]], left_align_first: bool = False) -> None:
    """Print ``rows`` (the first is the header) as a Markdown table with right-aligned columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        cells = [s.ljust(w) if j == 0 and left_align_first else s.rjust(w) for j, (s, w) in enumerate(zip(r, widths))]
        print("| " + " | ".join(cells) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
