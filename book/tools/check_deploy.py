"""Refuse to publish a site whose Colab links and install cells open another repository.

    python book/tools/check_deploy.py --repository "$GITHUB_REPOSITORY" [--site _build/html] [--student _build/student]

The Pages job of .github/workflows/ci.yml runs this before it uploads the
site.  A fork that has not changed ``repository.url`` in _config.yml (or has
changed it without re-stamping, or built the site before) would publish
buttons that open the upstream's notebooks and install cells that install the
upstream's ``course_lib``; this exits 1 with what to do instead.  It checks

- that ``repository.url`` in _config.yml names the deployed repository;
- that every place ``book/tools/restamp.py`` writes agrees with _config.yml
  (the lessons' install cells first of all);
- that every Colab link and the repository button of the built pages,
  ``<site>/{vi,en}/**/*.html``, name the deployed repository;
- that every page that opens a lesson in Colab also opens its student edition,
  the same path on ``repository.student_branch``, and that no Colab link opens
  another branch;
- with ``--student``, that the student edition (book/tools/student_edition.py's
  output, what CI pushes to the student branch) holds every notebook those
  buttons open.

Standard library and PyYAML only, so the Pages job needs no course environment.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from restamp import ROOT, configured, stamped

LANGUAGES = ("vi", "en")
COLAB = re.compile(r"https://colab\.research\.google\.com/github/([^/\"'\s]+)/([^/\"'\s]+)/blob/([^\"'\s#?]+)")
REPOSITORY_BUTTON = re.compile(r'<a href="https://github\.com/([^/"]+)/([^/"]+)"[^>]*class="[^"]*btn-source-repository-button')
FIX = "change repository.url in _config.yml and run `make restamp`, then rebuild the site (`make site`) and commit"


def student_problems(pages: dict[str, list[str]], branch: str, student_branch: str, student: Path | None) -> list[str]:
    """{page: the branch/path of its Colab links}: the pages that open a lesson without its student edition,
    open another branch, or (given the student edition's folder) open a student notebook it lacks."""
    found, missing = [], []
    for page, links in pages.items():
        solved = {link.removeprefix(f"{branch}/") for link in links if link.startswith(f"{branch}/")}
        students = {link.removeprefix(f"{student_branch}/") for link in links if link.startswith(f"{student_branch}/")}
        others = [link for link in links if not link.startswith((f"{branch}/", f"{student_branch}/"))]
        if others:
            found.append(f"{page} opens {others[0]} in Colab, on neither {branch!r} nor the student edition's {student_branch!r}")
        for path in sorted(solved - students):
            found.append(f"{page} opens {path} in Colab without the student edition's button ({student_branch}/{path}): "
                         "rebuild the site with book/_ext/course_i18n.py (`make site`)")
        missing += [f"{student_branch}/{path}" for path in sorted(students) if student and not (student / path).is_file()]
    if missing:
        found.append(f"{len(missing)} student-edition notebook(s) that the pages open are not in {student} "
                     f"(e.g. {missing[0]}): run `make student` (book/tools/student_edition.py --out {student})")
    return found


def problems(root: Path, site: Path, deployed: str, student: Path | None = None) -> list[str]:
    """Every reason not to publish ``site`` as ``deployed`` (OWNER/REPO); empty when it may go out."""
    found = []
    repo = configured(root)
    if repo.slug.casefold() != deployed.casefold():
        found.append(f"_config.yml's repository.url, the Colab links and the install cells point at {repo.slug} "
                     f"but this deployment is {deployed}: {FIX}")
    unstamped = [str(path.relative_to(root)) for path in stamped(root, repo)]
    if unstamped:
        found.append(f"{len(unstamped)} file(s) ({', '.join(unstamped[:3])}{', …' if len(unstamped) > 3 else ''}) "
                     f"name another repository than _config.yml's {repo.slug}; this deployment is {deployed}: {FIX}")
    for lang in LANGUAGES:
        pages = sorted(p for p in (site / lang).rglob("*.html") if "_static" not in p.parts)
        colab_links, elsewhere, opened = 0, {}, {}
        for page in pages:
            html = page.read_text(encoding="utf-8")
            colab = COLAB.findall(html)
            colab_links += len(colab)
            if colab:
                opened[str(page.relative_to(site))] = [link for _, _, link in colab]
            for owner, name in {*((o, n) for o, n, _ in colab), *REPOSITORY_BUTTON.findall(html)}:
                if f"{owner}/{name}".casefold() != deployed.casefold():
                    elsewhere.setdefault(f"{owner}/{name}", []).append(str(page.relative_to(site)))
        for other, where in sorted(elsewhere.items()):
            found.append(f"{len(where)} built page(s) (e.g. {where[0]}) have Colab or repository links that point at "
                         f"{other} but this deployment is {deployed}: {FIX}")
        if not colab_links:
            found.append(f"{site / lang} has no page with a Colab link: is {site} the built site (`make site`)?")
        found += student_problems(opened, repo.branch, repo.student_branch, student)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", required=True, help="OWNER/REPO being deployed; in GitHub Actions, $GITHUB_REPOSITORY")
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "html", help="the built site (default: _build/html)")
    parser.add_argument("--student", type=Path, help="the student edition that goes to the student branch (make student: _build/student)")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repository):
        parser.error(f"--repository {args.repository!r}: expected OWNER/REPO, as in $GITHUB_REPOSITORY")
    found = problems(ROOT, args.site, args.repository, args.student)
    for problem in found:
        print(f"check_deploy: {problem}", file=sys.stderr)
    if found:
        print(f"check_deploy: not publishing ({len(found)} problem(s) above)", file=sys.stderr)
        return 1
    print(f"check_deploy: {args.site} opens notebooks and installs course_lib from {args.repository}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
