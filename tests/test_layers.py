"""course_lib's layers: each subpackage imports only the layers below it (module-level and function-level imports).

engine   the training engine            imports: engine
models   the course's models            imports: engine, models
i18n     the reader's strings           imports: engine
lessons  each lesson's experiments      imports: engine, models, i18n, lessons
show     tables, plots, widgets, checks imports: anything in course_lib
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "course_lib"

ALLOWED = {
    "engine": {"engine"},
    "models": {"engine", "models"},
    "i18n": {"engine"},
    "lessons": {"engine", "models", "i18n", "lessons"},
    "show": {"engine", "models", "i18n", "lessons", "show"},
}


def layer(module: str) -> str:
    """``course_lib.engine.training`` -> ``engine``; ``course_lib.i18n`` -> ``i18n``; ``course_lib`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imported(source: str, module: str) -> set[str]:
    """The course_lib modules that ``source`` (the text of ``module``) names in any import statement, relative ones resolved."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "course_lib")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "course_lib":
                found.update(f"{target}.{alias.name}" if target.count(".") == 0 else target for alias in node.names)
    return found


def wrong_way(package: Path) -> list[str]:
    """Every import in ``package`` (a course_lib folder) that goes against :data:`ALLOWED`, as 'importer -> imported'."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        own = layer(module)
        for target in sorted(imported(path.read_text(encoding="utf-8"), module)):
            if own == "":
                problems.append(f"{module} -> {target} (course_lib/__init__.py imports nothing, so each layer loads alone)")
            elif own not in ALLOWED:
                problems.append(f"{module}: not in a layer ({sorted(ALLOWED)})")
            elif layer(target) not in ALLOWED[own]:
                problems.append(f"{module} -> {target}")
    return problems


def test_every_module_sits_in_a_layer_and_imports_only_the_layers_below():
    assert wrong_way(PACKAGE) == []


@pytest.mark.parametrize("layer_name, line, caught", [
    ("engine", "from course_lib.i18n import text", True),
    ("engine", "from course_lib.models.gpt import GPT", True),
    ("engine", "    from course_lib.show import tables  # inside a function", True),
    ("engine", "from ..lessons import stored", True),
    ("models", "import course_lib.lessons.corpus", True),
    ("lessons", "from course_lib.show.report import Table", True),
    ("models", "from course_lib.engine.training import train", False),
    ("show", "from course_lib.lessons import stored", False),
])
def test_the_check_catches_a_wrong_way_import(tmp_path, layer_name, line, caught):
    """The check on a copy of a two-module course_lib: a wrong-way import (at any depth) fails it; a right-way one passes."""
    folder = tmp_path / "course_lib" / layer_name
    folder.mkdir(parents=True)
    (tmp_path / "course_lib" / "__init__.py").write_text("")
    (folder / "__init__.py").write_text("")
    body = f"def f():\n{line}\n" if line.startswith(" ") else f"{line}\n"
    (folder / "probe.py").write_text(body)
    assert bool(wrong_way(tmp_path / "course_lib")) is caught


def test_the_readme_layout_table_names_every_layer_and_module():
    """README's layout table has a row per layer folder, which names each of the folder's modules and no other."""
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().strip("`"): line for line in readme.splitlines() if line.startswith("| `course_lib/")}
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        folder = path.parent.relative_to(PACKAGE.parent).as_posix() + "/"
        row = rows.get(folder) if folder != "course_lib/" else rows.get(path.relative_to(PACKAGE.parent).as_posix())
        if row is None or (folder != "course_lib/" and f"`{path.name}`" not in row):
            missing.append(path.relative_to(PACKAGE.parent).as_posix())
    assert missing == [], "README.md's layout table does not name these modules in their folder's row"
    stale = [f"{folder}{name}" for folder, row in rows.items() if folder.endswith("/")
             for name in re.findall(r"`([a-z0-9_]+\.py)`", row) if not (PACKAGE.parent / folder / name).exists()]
    assert stale == [], "README.md's layout table names modules that are not in the folder of its row"
