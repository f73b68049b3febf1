"""Write the student edition of the lessons: the notebooks without the solutions of their exercises.

    python book/tools/student_edition.py [--out _build/student]     # or: make student

Each lesson's executed notebook (``notebooks/<lang>/NN_topic.ipynb``) becomes
``OUT/notebooks/<lang>/NN_topic.ipynb`` and its MyST-markdown ``.md``, in which

* in an exercise cell (the one marked ``# ✏️ EXERCISE``), the lines from
  ``# BEGIN SOLUTION`` to ``# END SOLUTION`` become one line,
  ``raise NotImplementedError  # your code here`` (the comment in the lesson's
  language), indented as the solution was; the cell loses its output and its
  folding, so the student sees the function to complete;
* the check cell (``from course_lib.show.exercises import ...``) loses its output,
  so it shows nothing until the student runs it;
* cells tagged ``solution`` (worked answers to the open questions, the
  sentence that points at the folded solutions) are left out.

Every other cell keeps the output stored with the lesson.  Run on a student
edition, a check reports the exercise as not answered yet.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import jupytext
import nbformat

from course_lib.i18n import check_language, text

ROOT = Path(__file__).resolve().parents[2]

EXERCISE = "# ✏️ EXERCISE"
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
CHECK = "from course_lib.show.exercises import"
SOLUTION_TAG = "solution"
FOLDING = ("hide-input", "hide-cell", "hide-output")


def placeholder(indent: str, lang: str) -> str:
    return f"{indent}raise NotImplementedError  # {text('ex_placeholder', lang)}"


def strip_solution(source: str, lang: str) -> str:
    """The exercise cell's source with each BEGIN/END SOLUTION region replaced by the placeholder."""
    out, inside = [], False
    for number, line in enumerate(source.splitlines(), 1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"line {number}: {BEGIN} inside another solution")
            inside = True
            out.append(placeholder(line[: len(line) - len(line.lstrip())], lang))
        elif marker == END:
            if not inside:
                raise ValueError(f"line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without {END}")
    return "\n".join(out)


def is_exercise(cell) -> bool:
    return cell.cell_type == "code" and any(line.strip() == BEGIN for line in cell.source.splitlines())


def is_check(cell) -> bool:
    return cell.cell_type == "code" and CHECK in cell.source


def cleared(cell):
    cell.outputs, cell.execution_count = [], None
    return cell


def student_notebook(notebook, lang: str):
    """A copy of ``notebook`` (an nbformat notebook of a lesson in ``lang``) without its solutions."""
    check_language(lang)
    notebook = copy.deepcopy(notebook)
    cells = []
    for cell in notebook.cells:
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            continue
        if is_exercise(cell):
            if not cell.source.lstrip().startswith(EXERCISE):
                raise ValueError(f"an exercise cell must start with {EXERCISE!r}: {cell.source[:60]!r}")
            cell.source = strip_solution(cell.source, lang)
            tags = [t for t in cell.metadata.get("tags", []) if t not in FOLDING]
            cell.metadata.pop("mystnb", None)
            if tags:
                cell.metadata["tags"] = tags
            else:
                cell.metadata.pop("tags", None)
            cleared(cell)
        elif is_check(cell):
            cleared(cell)
        cells.append(cell)
    notebook.cells = cells
    return notebook


def lesson_language(path: Path) -> str:
    return check_language(path.parent.name)


def write_edition(out: Path) -> list[Path]:
    """Write the student edition of every lesson under ``out``; return the files written."""
    written = []
    for source in sorted((ROOT / "notebooks").glob("*/*.ipynb")):
        notebook = student_notebook(nbformat.read(source, as_version=4), lesson_language(source))
        target = out / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
        jupytext.write(notebook, target.with_suffix(".md"), fmt="md:myst")
        written += [target, target.with_suffix(".md")]
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student", help="folder to write into")
    args = parser.parse_args(argv)
    written = write_edition(args.out.resolve())
    print(f"student edition: {len(written)} files in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
