"""Scaffold a new lesson in both languages and register it everywhere a lesson is listed.

    python book/tools/new_lesson.py 06_weight_decay --title-vi "Suy giảm trọng số" --title-en "Weight decay"
    make lesson NAME=06_weight_decay TITLE_VI="Suy giảm trọng số" TITLE_EN="Weight decay"

Writes ``notebooks/{vi,en}/NN_slug.md`` from ``book/tools/templates/``: the
``parameters`` cell with ``LANG``, the install cell (pointing at the repository
of _config.yml), the imports and the seed, a formula, a plot, a table and an
exercise, so that the new pair passes every lesson test once executed.  Then it
registers the lesson, in number order, in

- ``_toc.yml``, in the Vietnamese part and in the English part;
- the lesson tables of the landing pages ``book/{vi,en}/index.md``;
- the GPU job of ``.github/workflows/ci.yml``, which names each lesson's
  notebooks for nbval (the other tests find lessons by their files).

Nothing is written unless every step can be done.  The ``.ipynb`` files come
next, from ``book/tools/execute_notebooks.py`` (``make notebooks``).
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from pathlib import Path

from restamp import ROOT, configured

LANGUAGES = ("vi", "en")
NAME = re.compile(r"(?P<nn>\d\d)_(?P<slug>[a-z0-9]+(?:_[a-z0-9]+)*)")
TEMPLATES = Path(__file__).resolve().parent / "templates"


class Refused(Exception):
    """A reason not to scaffold, said to the person who asked."""


def check_request(root: Path, name: str, titles: dict[str, str]) -> None:
    if not NAME.fullmatch(name):
        raise Refused(f"{name!r} is not a lesson name: write NN_slug, two digits and a lower-case slug "
                      "with underscores, e.g. 06_weight_decay")
    for lang in LANGUAGES:
        existing = root / "notebooks" / lang / f"{name}.md"
        if existing.exists():
            raise Refused(f"lesson {name} exists already ({existing.relative_to(root)}): pick another name")
        for other in sorted((root / "notebooks" / lang).glob(f"{name[:2]}_*.md")):
            raise Refused(f"lesson number {name[:2]} is taken by {other.relative_to(root)}: pick another number")
    for lang, title in titles.items():
        if not title or not title.strip():
            raise Refused(f"--title-{lang} is missing: give the lesson's title in "
                          f"{'Vietnamese' if lang == 'vi' else 'English'}, e.g. --title-{lang} \"…\"")
        if "|" in title or "\n" in title:
            raise Refused(f"--title-{lang} {title!r}: a title may not hold '|' or a line break (it goes into a table)")


def lesson_text(lang: str, name: str, title: str, install: str) -> str:
    template = (TEMPLATES / f"lesson.{lang}.md.tmpl").read_text(encoding="utf-8")
    fields = {"nn": name[:2], "slug": name[3:].replace("_", "-"), "title": title, "install": install}
    for field, value in fields.items():
        template = template.replace("{{" + field + "}}", value)
    return template


def insert_in_order(lines: list[str], pattern: re.Pattern, number: int, new_line) -> list[str] | None:
    """``lines`` with ``new_line(model)`` inserted among the lines that ``pattern`` matches (group "nn"), by
    number, modelled on the matched line it follows (or precedes); None when no line matches."""
    matches = [(i, m) for i, line in enumerate(lines) if (m := pattern.fullmatch(line))]
    if not matches:
        return None
    before = [(i, m) for i, m in matches if int(m["nn"]) < number]
    index, model = (before[-1][0] + 1, before[-1][1]) if before else matches[0]
    return lines[:index] + [new_line(model)] + lines[index:]


def register_in_toc(text: str, lang: str, name: str) -> str:
    pattern = re.compile(rf"(?P<indent>\s*)- file: notebooks/{lang}/(?P<nn>\d\d)_\w+\s*")
    lines = insert_in_order(text.split("\n"), pattern, int(name[:2]), lambda m: f"{m['indent']}- file: notebooks/{lang}/{name}")
    if lines is None:
        raise Refused(f"_toc.yml lists no lesson under notebooks/{lang}/: add `- file: notebooks/{lang}/{name}` "
                      "to its part by hand, then run this again")
    return "\n".join(lines)


def register_on_landing_page(text: str, lang: str, name: str, title: str) -> str | None:
    """The landing page's lesson table with a row for the lesson; its last cell, what the lesson
    measures, is the author's to write.  None when the page has no such table."""
    pattern = re.compile(r"\| (?P<nn>\d\d) \| \[.*")
    row = lambda m: f"| {name[:2]} | [{title}](../../notebooks/{lang}/{name}.ipynb) | |"
    lines = insert_in_order(text.split("\n"), pattern, int(name[:2]), row)
    return None if lines is None else "\n".join(lines)


def register_in_gpu_job(text: str, name: str) -> str | None:
    """The GPU job's strict nbval command with the lesson's two notebooks; None without such a command."""
    lines = text.split("\n")
    lesson = re.compile(r"notebooks/(vi|en)/(?P<nn>\d\d)_\*")
    for i, line in enumerate(lines):
        words = line.split(" ")
        if "-m" not in words or "pytest" not in words or "--nbval-lax" in words:
            continue
        found = [(j, m) for j, word in enumerate(words) if (m := lesson.fullmatch(word))]
        if not found:
            continue
        before = [j for j, m in found if int(m["nn"]) < int(name[:2])]
        at = before[-1] + 1 if before else found[0][0]
        words[at:at] = [f"notebooks/vi/{name[:2]}_*", f"notebooks/en/{name[:2]}_*"]
        lines[i] = " ".join(words)
        return "\n".join(lines)
    return None


def scaffold(root: Path, name: str, titles: dict[str, str]) -> list[str]:
    """Write the lesson and its registrations; returns what was done, one line each."""
    titles = {lang: unicodedata.normalize("NFC", title or "").strip() for lang, title in titles.items()}
    check_request(root, name, titles)
    repo = configured(root)
    writes: dict[Path, str] = {}
    for lang in LANGUAGES:
        writes[root / "notebooks" / lang / f"{name}.md"] = lesson_text(lang, name, titles[lang], f"git+{repo.url}@{repo.branch}")
    toc = (root / "_toc.yml").read_text(encoding="utf-8")
    for lang in LANGUAGES:
        toc = register_in_toc(toc, lang, name)
    writes[root / "_toc.yml"] = toc
    notes = []
    for lang in LANGUAGES:
        page = root / "book" / lang / "index.md"
        updated = register_on_landing_page(page.read_text(encoding="utf-8"), lang, name, titles[lang]) if page.exists() else None
        if updated is None:
            notes.append(f"{page.relative_to(root)} has no lesson table: link the lesson there by hand")
        else:
            writes[page] = updated
            notes.append(f"{page.relative_to(root)}: a row for the lesson; write what it measures in its last cell")
    workflow = root / ".github" / "workflows" / "ci.yml"
    updated = register_in_gpu_job(workflow.read_text(encoding="utf-8"), name) if workflow.exists() else None
    if updated is None:
        notes.append(f"{workflow.relative_to(root)} has no GPU job that lists the lessons: nothing to add there")
    else:
        writes[workflow] = updated
        notes.append(f"{workflow.relative_to(root)}: the lesson's notebooks added to the GPU job's nbval list")
    for path, text in writes.items():
        path.write_text(text, encoding="utf-8")
    sources = [f"notebooks/{lang}/{name}.md" for lang in LANGUAGES]
    return [f"created {' and '.join(sources)}", "_toc.yml: the lesson added to the Vietnamese and the English part", *notes,
            f"next: write the lesson in both languages (identical code cells), then "
            f"`python book/tools/execute_notebooks.py {' '.join(sources)}` and `make test`"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="NN_slug, e.g. 06_weight_decay")
    parser.add_argument("--title-vi", default="", help="the lesson's title in Vietnamese")
    parser.add_argument("--title-en", default="", help="the lesson's title in English")
    args = parser.parse_args(argv)
    try:
        done = scaffold(ROOT, args.name, {"vi": args.title_vi, "en": args.title_en})
    except Refused as refusal:
        print(f"new_lesson: {refusal}", file=sys.stderr)
        return 2
    print("\n".join(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
