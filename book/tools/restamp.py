"""Re-stamp every place that names the course's repository, from _config.yml.

    python book/tools/restamp.py            # rewrite; prints each file it changed
    python book/tools/restamp.py --check    # change nothing; exit 1 if a file disagrees

``repository.url``, ``repository.branch`` and ``repository.student_branch`` in
_config.yml are the one place a fork changes.  Jupyter Book makes the Colab
buttons from them at build time (the student-edition button, course_i18n.py,
from the same URL on the student branch); everything else that names the
repository is text in a tracked file, written here from them:

- each lesson's install cell, ``git+https://github.com/OWNER/REPO@BRANCH``
  (``.md`` and ``.ipynb``);
- the clone command of the prose pages, ``git clone https://github.com/OWNER/REPO.git``
  and the ``cd REPO`` after it;
- the CI condition that keeps the self-hosted GPU job to the course's owner,
  ``github.repository_owner == 'OWNER'``;
- the prose pages' Colab links, which open the student edition (the solved
  lessons open from each page's own button):
  ``https://colab.research.google.com/github/OWNER/REPO/blob/STUDENT_BRANCH/``.

Running it twice changes nothing the second time.  tests/test_fork.py
re-stamps a copy of the repository to another URL and checks that no trace of
the old one is left in any file.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GITHUB = re.compile(r"https://github\.com/(?P<owner>[A-Za-z0-9][A-Za-z0-9-]*)/(?P<name>[A-Za-z0-9._-]+)")


@dataclass(frozen=True)
class Repository:
    owner: str
    name: str
    branch: str
    student_branch: str = "student"

    @property
    def url(self) -> str:
        return f"https://github.com/{self.owner}/{self.name}"

    @property
    def slug(self) -> str:
        """OWNER/REPO, the form of GitHub Actions' GITHUB_REPOSITORY."""
        return f"{self.owner}/{self.name}"

    def colab(self, branch: str) -> str:
        """The prefix of Colab's links to this repository's notebooks on ``branch``."""
        return f"https://colab.research.google.com/github/{self.owner}/{self.name}/blob/{branch}/"

    @property
    def student_colab(self) -> str:
        """The prefix of the student edition's Colab links: OUT/notebooks/<lang>/NN_topic.ipynb follows it."""
        return self.colab(self.student_branch)


def configured(root: Path = ROOT) -> Repository:
    """The repository named by _config.yml; a clear error for a URL Colab cannot open."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repository = config.get("repository") or {}
    url, branch = str(repository.get("url", "")), str(repository.get("branch", ""))
    student_branch = str(repository.get("student_branch", ""))
    match = GITHUB.fullmatch(url)
    if not match or url.endswith(".git"):
        raise SystemExit(
            f"_config.yml: repository.url is {url!r}; it must be a GitHub repository's address, "
            "https://github.com/OWNER/REPO (no trailing slash, no .git): Colab opens notebooks from GitHub only"
        )
    if not re.fullmatch(r"[\w.\-/]+", branch):
        raise SystemExit(f"_config.yml: repository.branch is {branch!r}; name the branch the site is published from, e.g. main")
    if not re.fullmatch(r"[\w.\-]+", student_branch) or student_branch == branch:
        raise SystemExit(f"_config.yml: repository.student_branch is {student_branch!r}; name the branch (no '/', not "
                         f"{branch!r}) that CI pushes the student edition to, e.g. student")
    return Repository(match["owner"], match["name"], branch, student_branch)


INSTALL = re.compile(r"git\+https://[^\s\"'@]+@[\w.\-/]+")
CLONE = re.compile(r"git clone https://github\.com/[\w.-]+/[\w.-]+?\.git(\s+)cd [\w.-]+")
GPU_OWNER = re.compile(r"github\.repository_owner == '[^']*'")
STUDENT_COLAB = re.compile(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w.-]+/(?=notebooks/)")


def rules(repo: Repository) -> list[tuple[tuple[str, ...], re.Pattern, str]]:
    """(file globs, pattern, replacement): every place a tracked file names the repository."""
    return [
        (("notebooks/*/*.md", "notebooks/*/*.ipynb"), INSTALL, f"git+{repo.url}@{repo.branch}"),
        (("README.md", "book/*/*.md"), CLONE, f"git clone {repo.url}.git\\1cd {repo.name}"),
        ((".github/workflows/*.yml",), GPU_OWNER, f"github.repository_owner == '{repo.owner}'"),
        (("README.md", "book/*/*.md"), STUDENT_COLAB, repo.student_colab),
    ]


def stamped(root: Path, repo: Repository) -> dict[Path, str]:
    """{file: its text re-stamped for ``repo``}, for the files whose text would change."""
    changed = {}
    for globs, pattern, replacement in rules(repo):
        for path in sorted(p for files in globs for p in root.glob(files)):
            text = changed.get(path) or path.read_text(encoding="utf-8")
            updated = pattern.sub(replacement, text)
            if updated != text:
                changed[path] = updated
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file names another repository")
    args = parser.parse_args(argv)
    repo = configured(ROOT)
    changed = stamped(ROOT, repo)
    for path, text in changed.items():
        if not args.check:
            path.write_text(text, encoding="utf-8")
        print(f"{path.relative_to(ROOT)}: {'names another repository than' if args.check else 're-stamped for'} {repo.url}@{repo.branch}")
    if args.check and changed:
        print("run `make restamp` (python book/tools/restamp.py) and commit the result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
