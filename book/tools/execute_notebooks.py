"""Regenerate each lesson's executed .ipynb from its MyST-markdown source.

    python book/tools/execute_notebooks.py [notebooks/en/01_lr_schedules.md ...]

The .md file is the source a person edits; this writes the paired .ipynb
with fresh outputs, which the site renders and nbval compares against.
Widget state is dropped: it would make the site load scripts from a CDN,
and the site shows each widget's still image instead.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jupytext
import nbclient

ROOT = Path(__file__).resolve().parents[2]


def execute(source: Path) -> Path:
    notebook = jupytext.read(source)
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"  # stable ids, so a re-run changes only what really changed
    client = nbclient.NotebookClient(
        notebook,
        timeout=1200,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(source.parent)}},
    )
    client.execute()
    notebook.metadata.pop("widgets", None)
    target = source.with_suffix(".ipynb")
    jupytext.write(notebook, target, fmt="ipynb")
    return target


def main(paths: list[str]) -> int:
    sources = [Path(p).resolve() for p in paths] or sorted((ROOT / "notebooks").glob("*/*.md"))
    for source in sources:
        start = time.perf_counter()
        target = execute(source)
        print(f"{target.relative_to(ROOT)}: executed in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
