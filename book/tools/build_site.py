"""Build the course site: one Jupyter Book build per language, plus a root page.

    python book/tools/build_site.py            # -> _build/html/{index.html,vi/,en/}

Each language gets a config and a table of contents derived from the root
``_config.yml`` and ``_toc.yml`` (only that language's files, its own
``language``), is built with warnings as errors, and is moved to
``_build/html/<lang>``.  The two builds run side by side.
"""

from __future__ import annotations

import argparse
import html
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("vi", "en")


def toc_files(toc: dict) -> list[str]:
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def language_toc(toc: dict, lang: str) -> dict:
    files = [f for f in toc_files(toc) if f"/{lang}/" in f]
    root = f"book/{lang}/index"
    if root not in files:
        raise SystemExit(f"_toc.yml must list {root}")
    files.remove(root)
    return {"format": "jb-book", "root": root, "chapters": [{"file": f} for f in files]}


def language_config(config: dict, lang: str) -> dict:
    config = yaml.safe_load(yaml.safe_dump(config))
    others = [other for other in LANGUAGES if other != lang]
    settings = config["sphinx"]["config"]["course_languages"][lang]
    config["title"] = settings["title"]
    config["author"] = settings.get("author", config["author"])   # the footer's "By …", in the page's language
    config["exclude_patterns"] += [f"**/{other}/**" for other in others]
    config["bibtex_bibfiles"] = [str(ROOT / path) for path in config["bibtex_bibfiles"]]
    sphinx = config["sphinx"]
    sphinx["local_extensions"] = {name: str(ROOT / path) for name, path in sphinx["local_extensions"].items()}
    sphinx["config"]["language"] = lang
    # the student edition's branch, for the lesson pages' second Colab button (course_i18n.py)
    sphinx["config"]["course_student_branch"] = config["repository"]["student_branch"]
    sphinx["config"]["html_static_path"] = [str(ROOT / p) for p in sphinx["config"]["html_static_path"]]
    config["html"]["favicon"] = str(ROOT / config["html"]["favicon"])
    return config


def root_page(config: dict) -> str:
    """The site's front door: the course's title and a way in, in each language."""
    languages = config["sphinx"]["config"]["course_languages"]
    entries = "\n".join(
        f'''    <li lang="{lang}"><a href="{lang}/index.html" hreflang="{lang}">{html.escape(languages[lang]["title"])}</a>
      <p>{html.escape(languages[lang]["tagline"])}</p></li>'''
        for lang in LANGUAGES
    )
    return f"""<!DOCTYPE html>
<html lang="vi">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" href="vi/_static/favicon.svg" type="image/svg+xml">
  <title>{html.escape(languages["vi"]["title"])} · {html.escape(languages["en"]["title"])}</title>
  <meta name="color-scheme" content="light dark">
  <style>:root {{ color-scheme: light dark; --text: #222; --muted: #555; --background: #fff; --border: #ddd; --link: #0a58ca; }}
  @media (prefers-color-scheme: dark) {{ :root {{ --text: #ced6dd; --muted: #9ca4af; --background: #14181e; --border: #48566b; --link: #6ea8fe; }} }}
  body {{ font-family: system-ui, sans-serif; max-width: 42rem; margin: 4rem auto; line-height: 1.6; padding: 0 1rem;
         color: var(--text); background: var(--background); overflow-wrap: break-word; }}
  ul {{ list-style: none; padding: 0; }} li {{ margin: 1.5rem 0; padding: 1rem 1.25rem; border: 1px solid var(--border); border-radius: 8px; }}
  li a {{ font-size: 1.3rem; font-weight: 600; color: var(--link); }} li p {{ margin: 0.4rem 0 0; color: var(--muted); }}
  @media (max-width: 30rem) {{ body {{ margin: 2rem auto; }} li {{ padding: 0.75rem 1rem; }} }}</style>
</head>
<body>
  <ul>
{entries}
  </ul>
</body>
</html>
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "html")
    args = parser.parse_args()

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    work = ROOT / "_build" / "languages"
    jobs = {}
    start = time.perf_counter()
    for lang in LANGUAGES:
        folder = work / lang
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "_config.yml").write_text(yaml.safe_dump(language_config(config, lang), allow_unicode=True), encoding="utf-8")
        (folder / "_toc.yml").write_text(yaml.safe_dump(language_toc(toc, lang), allow_unicode=True), encoding="utf-8")
        command = [
            str(Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT),
            "--config", str(folder / "_config.yml"), "--toc", str(folder / "_toc.yml"),
            "--path-output", str(folder), "--warningiserror", "--nitpick", "--keep-going",
        ]
        log = open(folder / "build.log", "w", encoding="utf-8")
        jobs[lang] = (subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log)

    failed = []
    for lang, (process, log) in jobs.items():
        process.wait()
        log.close()
        if process.returncode != 0:
            failed.append(lang)
            print((work / lang / "build.log").read_text(encoding="utf-8")[-6000:], file=sys.stderr)
    if failed:
        print(f"site build failed for: {', '.join(failed)} (logs in {work}/<lang>/build.log)", file=sys.stderr)
        return 1

    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    for lang in LANGUAGES:
        shutil.move(str(work / lang / "_build" / "html"), str(args.out / lang))
    (args.out / "index.html").write_text(root_page(config), encoding="utf-8")
    (args.out / ".nojekyll").write_text("", encoding="utf-8")
    pages = {lang: sum("_static" not in p.parts for p in (args.out / lang).rglob("*.html")) for lang in LANGUAGES}
    print(f"built {args.out} in {time.perf_counter() - start:.1f} s; pages per language: {pages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
