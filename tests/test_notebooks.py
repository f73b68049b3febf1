"""The lessons as files: pairs agree, both languages have the same code, Colab links agree with _config.yml."""

import json
import re
import unicodedata
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ("vi", "en")
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
SOURCES = sorted((ROOT / "notebooks").glob("*/*.md"))
LESSONS = sorted({path.stem for path in SOURCES})


def cells(path):
    notebook = jupytext.read(path)
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in notebook.cells]


def code_cells(path):
    return [(source, tags) for kind, source, tags in cells(path) if kind == "code"]


def test_there_are_lessons_in_both_languages():
    assert LESSONS, "no lessons found under notebooks/"
    for lang in LANGUAGES:
        assert {p.stem for p in (ROOT / "notebooks" / lang).glob("*.md")} == set(LESSONS), lang


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_text_notebook_and_ipynb_agree(source):
    """The .md is what people edit; its .ipynb must hold the same cells (re-run book/tools/execute_notebooks.py)."""
    executed = source.with_suffix(".ipynb")
    assert executed.exists(), f"{executed.name} is missing: run book/tools/execute_notebooks.py {source}"
    assert cells(executed) == cells(source), (
        f"{source.relative_to(ROOT)} and its .ipynb differ: run python book/tools/execute_notebooks.py {source}"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_outputs_are_complete_and_offline(source):
    notebook = json.loads(source.with_suffix(".ipynb").read_text(encoding="utf-8"))
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert all(cell["execution_count"] is not None for cell in code), "every code cell must be executed"
    counts = [cell["execution_count"] for cell in code]
    assert counts == list(range(1, len(code) + 1)), "cells must be executed once, top to bottom"
    assert "widgets" not in notebook["metadata"], "widget state would make the site load scripts from a CDN"
    errors = [o for cell in code for o in cell["outputs"] if o["output_type"] == "error"]
    assert not errors


@pytest.mark.parametrize("lesson", LESSONS)
def test_both_languages_have_the_same_code(lesson):
    """Identical code cells except the one tagged `parameters`, which sets LANG."""
    by_lang = {lang: code_cells(ROOT / "notebooks" / lang / f"{lesson}.md") for lang in LANGUAGES}
    vi, en = by_lang["vi"], by_lang["en"]
    assert len(vi) == len(en), "the two languages have different numbers of code cells"
    for index, ((vi_source, vi_tags), (en_source, en_tags)) in enumerate(zip(vi, en)):
        assert vi_tags == en_tags, f"code cell {index}: tags differ"
        if "parameters" in vi_tags:
            assert (vi_source, en_source) == ('LANG = "vi"', 'LANG = "en"'), f"code cell {index}"
        else:
            assert vi_source == en_source, f"code cell {index} differs between vi and en"
    assert sum("parameters" in tags for _, tags in vi) == 1


def install_urls(path):
    return re.findall(r"git\+(https://[^\s\"'@]+)@([\w.\-/]+)", path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_install_cell_points_at_the_configured_repository(source):
    expected = (CONFIG["repository"]["url"], CONFIG["repository"]["branch"])
    for path in (source, source.with_suffix(".ipynb")):
        found = install_urls(path)
        assert found == [expected], (
            f"{path.relative_to(ROOT)} installs from {found}, _config.yml says {expected}: run make restamp"
        )
    (first, first_tags), (second, _) = code_cells(source)[:2]
    assert "parameters" in first_tags, "the first code cell sets LANG (the install cell's messages use it)"
    assert "find_spec(\"course_lib\") is None" in second, "the second code cell must install course_lib only when missing"


def install_cell(source: Path) -> str:
    return code_cells(source)[1][0]


def test_every_install_cell_is_the_template_s():
    """One install cell for every lesson and the new-lesson template: only the lesson's data line may differ."""
    template = (ROOT / "book" / "tools" / "templates" / "lesson.en.md.tmpl").read_text(encoding="utf-8")
    expected = template.split("# Colab: install", 1)[1].split("\n```", 1)[0]
    for source in SOURCES:
        cell = install_cell(source).split("# Colab: install", 1)[1]
        url = install_urls(source)[0]
        assert cell.replace(f"git+{url[0]}@{url[1]}", "{{install}}").startswith(expected), source.relative_to(ROOT)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_failed_install_stops_with_one_short_message(lang):
    """A repository pip cannot clone (a fork not pushed, a typo, no network): what failed and what to do, no traceback."""
    import nbclient
    import nbformat

    lesson = ROOT / "notebooks" / lang / "01_lr_schedules.md"
    cell, url = install_cell(lesson), "git+{}@{}".format(*install_urls(lesson)[0])
    missing = "git+file:///nonexistent/fork-of-the-course@main"
    assert 'importlib.util.find_spec("course_lib") is None' in cell and url in cell
    cell = cell.replace('importlib.util.find_spec("course_lib") is None', "True").replace(url, missing)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f'LANG = "{lang}"'), nbformat.v4.new_code_cell(cell),
                                               nbformat.v4.new_code_cell("print('this cell must not run')")])
    with pytest.raises(nbclient.exceptions.CellExecutionError):
        nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    error = notebook.cells[1].outputs[-1]
    assert error["ename"] == "InstallFailed" and not notebook.cells[2].outputs
    lines = error["traceback"]
    assert len(lines) == 4, lines  # what failed and why, then the three ways out
    assert lines[0].startswith(("Could not install " if lang == "en" else "Không cài được ") + missing + ": ")
    assert "make restamp" in lines[2] and "_config.yml" in lines[2]
    assert lines[3].endswith("%pip install " + missing)


def test_text_files_are_nfc():
    """Sphinx search does no Unicode normalisation: a decomposed 'ộ' would not match a typed one."""
    suffixes = {".md", ".ipynb", ".py", ".yml", ".bib", ".toml", ".txt"}
    skip = {".venv", ".venv-latest", "_build", ".git"}
    for path in ROOT.rglob("*"):
        if path.suffix in suffixes and not skip & set(path.relative_to(ROOT).parts):
            text = path.read_text(encoding="utf-8")
            assert unicodedata.is_normalized("NFC", text), path


def figure_names(path):
    """The label of every captioned figure cell, in order (None where a caption has no name)."""
    figures = [c.metadata.get("mystnb", {}).get("figure") for c in jupytext.read(path).cells if c.cell_type == "code"]
    return [figure.get("name") for figure in figures if figure and figure.get("caption")]


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_figure_has_the_same_label_in_both_languages(lesson):
    """{numref} links name figures by label: every captioned figure has one, unique, and the same in vi and en."""
    vi, en = (figure_names(ROOT / "notebooks" / lang / f"{lesson}.md") for lang in ("vi", "en"))
    assert vi == en, f"figure labels differ: vi {vi}, en {en}"
    assert all(name and name.startswith("fig-") for name in en), en
    all_names = [name for other in LESSONS for name in figure_names(ROOT / "notebooks" / "en" / f"{other}.md")]
    assert len(all_names) == len(set(all_names)), "a figure label is used twice in the book"
