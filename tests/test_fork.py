"""An instructor's fork, on temporary copies of the repository: re-stamp, the deploy check, a new lesson.

The copies hold the files git tracks plus the untracked ones it does not ignore,
so uncommitted work is tested too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "book" / "tools"
SITE = ROOT / "_build" / "html"
sys.path.insert(0, str(TOOLS))

import new_lesson  # noqa: E402
import restamp  # noqa: E402

UPSTREAM = restamp.configured(ROOT)
FORK = restamp.Repository("example-teacher", "course-fork", "spring-2027", "spring-2027-students")
assert FORK.slug != UPSTREAM.slug


def copy_of_repository(target: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def run(root: Path, *command: str) -> subprocess.CompletedProcess:
    """A command in ``root`` with ``root``'s course_lib first on the path (kernels inherit it)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, *command], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def point_config_at(root: Path, repo: restamp.Repository) -> None:
    config = root / "_config.yml"
    text = config.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(  url: ).*$", rf"\g<1>{repo.url}", text, count=1)
    text = re.sub(r"(?m)^(  branch: ).*$", rf"\g<1>{repo.branch}", text, count=1)
    text = re.sub(r"(?m)^(  student_branch: ).*$", rf"\g<1>{repo.student_branch}", text, count=1)
    config.write_text(text, encoding="utf-8")
    assert restamp.configured(root) == repo


def texts(root: Path) -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8", errors="replace") for p in sorted(root.rglob("*")) if p.is_file()}


def fake_site(folder: Path, *slugs: str, repo: restamp.Repository = UPSTREAM, student: bool = True) -> Path:
    """A built site's shape: per language, lesson pages whose Colab links (the solved lesson on ``repo.branch``,
    with ``student`` its student edition on ``repo.student_branch``) and repository button name ``slugs``."""
    for lang in ("vi", "en"):
        for i, slug in enumerate(slugs):
            page = folder / lang / "notebooks" / lang / f"0{i + 1}_lesson.html"
            page.parent.mkdir(parents=True, exist_ok=True)
            notebook = f"notebooks/{lang}/0{i + 1}_lesson.ipynb"
            page.write_text(
                f'<a href="https://github.com/{slug}" target="_blank" class="btn btn-sm btn-source-repository-button">'
                f'<a href="https://colab.research.google.com/github/{slug}/blob/{repo.branch}/{notebook}">'
                + (f'<a href="https://colab.research.google.com/github/{slug}/blob/{repo.student_branch}/{notebook}" '
                   'class="btn btn-sm btn-student-edition dropdown-item">' if student else ""),
                encoding="utf-8")
    return folder


def test_this_repository_is_stamped():
    """Every place that names the repository agrees with _config.yml (`make restamp` changes nothing)."""
    checked = run(ROOT, "book/tools/restamp.py", "--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_restamp_leaves_no_trace_of_the_old_repository(tmp_path):
    copy = copy_of_repository(tmp_path)
    point_config_at(copy, FORK)

    stale = run(copy, "book/tools/restamp.py", "--check")
    assert stale.returncode == 1 and "make restamp" in stale.stderr
    refused = run(copy, "book/tools/check_deploy.py", "--repository", FORK.slug, "--site",
                  str(fake_site(tmp_path / "site", FORK.slug, repo=FORK)))
    assert refused.returncode == 1 and "make restamp" in refused.stderr and "name another repository" in refused.stderr

    done = run(copy, "book/tools/restamp.py")
    assert done.returncode == 0, done.stderr
    changed = {line.split(":")[0] for line in done.stdout.splitlines()}
    lessons = {str(p.relative_to(copy)) for p in copy.glob("notebooks/*/*") if p.suffix in {".md", ".ipynb"}}
    assert lessons <= changed, lessons - changed

    old_traces = [re.compile(re.escape(UPSTREAM.slug), re.I), re.compile(rf"repository_owner == '{re.escape(UPSTREAM.owner)}'"),
                  re.compile(rf"\bcd {re.escape(UPSTREAM.name)}\b")]
    after = texts(copy)
    left = [f"{p.relative_to(copy)}: {m.group(0)}" for p, text in after.items() for pattern in old_traces for m in pattern.finditer(text)]
    assert not left, left
    assert any(FORK.url in text for p, text in after.items() if p.suffix == ".ipynb")
    for lang in ("vi", "en"):   # the handout's link to the student edition follows the repository and its student branch
        handout = after[copy / "book" / lang / "students.md"]
        assert f"{FORK.student_colab}notebooks/{lang}/" in handout
        assert f"/blob/{UPSTREAM.student_branch}/" not in handout

    again = run(copy, "book/tools/restamp.py")
    assert again.returncode == 0 and again.stdout == "" and texts(copy) == after, "re-stamping twice changed something"
    assert run(copy, "book/tools/restamp.py", "--check").returncode == 0

    checks = run(copy, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "addopts=", "tests/test_notebooks.py")
    assert checks.returncode == 0, checks.stdout[-3000:]
    deployed = run(copy, "book/tools/check_deploy.py", "--repository", FORK.slug, "--site", str(tmp_path / "site"))
    assert deployed.returncode == 0, deployed.stderr


@pytest.mark.parametrize("url", ["https://gitlab.com/a/b", "https://github.com/a/b.git", "https://github.com/a", "git@github.com:a/b"])
def test_restamp_refuses_an_address_colab_cannot_open(tmp_path, url):
    (tmp_path / "_config.yml").write_text(yaml.safe_dump({"repository": {"url": url, "branch": "main"}}), encoding="utf-8")
    with pytest.raises(SystemExit, match="https://github.com/OWNER/REPO"):
        restamp.configured(tmp_path)


def test_deploy_check_passes_for_the_repository_it_was_built_for():
    if not (SITE / "index.html").exists():
        pytest.fail("no built site in _build/html: run `make site` (make test does it first)")
    checked = run(ROOT, "book/tools/check_deploy.py", "--repository", UPSTREAM.slug.upper())
    assert checked.returncode == 0, checked.stderr


def test_deploy_check_refuses_another_repository():
    """A fork that has not re-stamped: the message names both repositories and the command to run."""
    refused = run(ROOT, "book/tools/check_deploy.py", "--repository", FORK.slug, "--site", str(ROOT / "missing"))
    assert refused.returncode == 1
    assert f"point at {UPSTREAM.slug} but this deployment is {FORK.slug}" in refused.stderr
    assert "change repository.url in _config.yml and run `make restamp`" in refused.stderr


def test_deploy_check_refuses_a_built_page_that_opens_another_repository(tmp_path):
    site = fake_site(tmp_path / "site", UPSTREAM.slug)
    assert run(ROOT, "book/tools/check_deploy.py", "--repository", UPSTREAM.slug, "--site", str(site)).returncode == 0
    fake_site(site, UPSTREAM.slug, "someone-else/old-course")
    refused = run(ROOT, "book/tools/check_deploy.py", "--repository", UPSTREAM.slug, "--site", str(site))
    assert refused.returncode == 1
    assert "en/notebooks/en/02_lesson.html" in refused.stderr and f"point at someone-else/old-course but this deployment is {UPSTREAM.slug}" in refused.stderr
    empty = run(ROOT, "book/tools/check_deploy.py", "--repository", UPSTREAM.slug, "--site", str(tmp_path / "nothing"))
    assert empty.returncode == 1 and "no page with a Colab link" in empty.stderr


def test_deploy_check_refuses_a_lesson_page_without_its_student_edition(tmp_path):
    """Every lesson opened in Colab must open as the student edition too, from the student branch, and with
    --student that edition (book/tools/student_edition.py's folder, what CI pushes there) must hold the notebook."""
    without = run(ROOT, "book/tools/check_deploy.py", "--repository", UPSTREAM.slug,
                  "--site", str(fake_site(tmp_path / "without", UPSTREAM.slug, student=False)))
    assert without.returncode == 1 and "en/notebooks/en/01_lesson.html opens notebooks/en/01_lesson.ipynb in Colab without the student edition's button" in without.stderr
    elsewhere = fake_site(tmp_path / "elsewhere", UPSTREAM.slug, repo=restamp.Repository(UPSTREAM.owner, UPSTREAM.name, UPSTREAM.branch, "old-students"))
    moved = run(ROOT, "book/tools/check_deploy.py", "--repository", UPSTREAM.slug, "--site", str(elsewhere))
    assert moved.returncode == 1 and f"on neither {UPSTREAM.branch!r} nor the student edition's {UPSTREAM.student_branch!r}" in moved.stderr

    site, student = fake_site(tmp_path / "site", UPSTREAM.slug), tmp_path / "student"
    missing = run(ROOT, "book/tools/check_deploy.py", "--repository", UPSTREAM.slug, "--site", str(site), "--student", str(student))
    assert missing.returncode == 1 and "are not in" in missing.stderr and "run `make student`" in missing.stderr
    for lang in ("vi", "en"):
        (student / "notebooks" / lang).mkdir(parents=True)
        (student / "notebooks" / lang / "01_lesson.ipynb").write_text("{}", encoding="utf-8")
    present = run(ROOT, "book/tools/check_deploy.py", "--repository", UPSTREAM.slug, "--site", str(site), "--student", str(student))
    assert present.returncode == 0, present.stderr


@pytest.mark.parametrize("student_branch", ["", "main", "students/2027"])
def test_restamp_refuses_a_student_branch_ci_cannot_push(tmp_path, student_branch):
    (tmp_path / "_config.yml").write_text(yaml.safe_dump({"repository": {
        "url": UPSTREAM.url, "branch": "main", "student_branch": student_branch}}), encoding="utf-8")
    with pytest.raises(SystemExit, match="repository.student_branch"):
        restamp.configured(tmp_path)


def next_number() -> str:
    return f"{max(int(p.name[:2]) for p in (ROOT / 'notebooks' / 'en').glob('*.md')) + 1:02d}"


@pytest.fixture(scope="module")
def shared_copy(tmp_path_factory):
    return copy_of_repository(tmp_path_factory.mktemp("repository"))


@pytest.mark.parametrize("arguments,message", [
    (["6_topic"], "is not a lesson name: write NN_slug"),
    (["06-Topic"], "is not a lesson name"),
    (["06_topic", "--title-vi", "Chủ đề"], "--title-en is missing"),
    (["06_topic", "--title-en", "Topic"], "--title-vi is missing"),
    (["06_topic", "--title-vi", "  ", "--title-en", "Topic"], "--title-vi is missing"),
    (["06_topic", "--title-vi", "a | b", "--title-en", "Topic"], "may not hold '|'"),
    (["EXISTING", "--title-vi", "Chủ đề", "--title-en", "Topic"], "exists already"),
    (["TAKEN", "--title-vi", "Chủ đề", "--title-en", "Topic"], "is taken by"),
])
def test_new_lesson_refuses_bad_requests_and_writes_nothing(shared_copy, arguments, message):
    existing = sorted(p.stem for p in (ROOT / "notebooks" / "en").glob("*.md"))[0]
    arguments = [{"EXISTING": existing, "TAKEN": f"{existing[:2]}_other"}.get(a, a) for a in arguments]
    before = texts(shared_copy)
    refused = run(shared_copy, "book/tools/new_lesson.py", *arguments)
    assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    assert texts(shared_copy) == before


@pytest.mark.parametrize("name,after", [("00_intro", None), ("99_last", "LAST")])
def test_new_lesson_goes_into_both_parts_of_the_toc_in_number_order(name, after):
    after = sorted(p.stem for p in (ROOT / "notebooks" / "en").glob("*.md"))[-1] if after == "LAST" else after
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    for lang in ("vi", "en"):
        toc = new_lesson.register_in_toc(toc, lang, name)
    parts = yaml.safe_load(toc)["parts"]
    for lang, part in zip(("vi", "en"), parts):
        files = [chapter["file"] for chapter in part["chapters"]]
        lessons = [f for f in files if f.startswith(f"notebooks/{lang}/")]
        assert lessons == sorted(lessons) and f"notebooks/{lang}/{name}" in lessons
        assert all(f"/{lang}/" in f for f in files), "a lesson went into the other language's part"
        if after is None:
            assert lessons[0] == f"notebooks/{lang}/{name}"
        else:
            assert files[files.index(f"notebooks/{lang}/{name}") - 1] == f"notebooks/{lang}/{after}"


def test_new_lesson_passes_the_lesson_tests_once_executed(tmp_path):
    """Scaffold, execute, then the lesson checks (pairs, same code, install cell, nbval) on the copy."""
    copy = copy_of_repository(tmp_path)
    name = f"{next_number()}_weight_decay"
    made = run(copy, "book/tools/new_lesson.py", name, "--title-vi", "Suy giảm trọng số", "--title-en", "Weight decay")
    assert made.returncode == 0, made.stderr
    sources = [f"notebooks/{lang}/{name}.md" for lang in ("vi", "en")]

    toc = yaml.safe_load((copy / "_toc.yml").read_text(encoding="utf-8"))
    for lang, part in zip(("vi", "en"), toc["parts"]):
        assert f"notebooks/{lang}/{name}" in [chapter["file"] for chapter in part["chapters"]]
        assert f"(../../notebooks/{lang}/{name}.ipynb)" in (copy / "book" / lang / "index.md").read_text(encoding="utf-8")
    assert f"notebooks/vi/{name[:2]}_* notebooks/en/{name[:2]}_*" in (copy / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")

    executed = run(copy, "book/tools/execute_notebooks.py", *sources)
    assert executed.returncode == 0, executed.stderr[-3000:]
    checks = run(copy, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/test_notebooks.py",
                 *[s.replace(".md", ".ipynb") for s in sources])
    assert checks.returncode == 0, checks.stdout[-3000:]
    assert re.search(r"(\d+) passed", checks.stdout) and "skipped" not in checks.stdout

    for source in sources:   # what the site and browser tests ask of a lesson page: a plot and a course table
        outputs = [o for cell in json.loads((copy / source).with_suffix(".ipynb").read_text(encoding="utf-8"))["cells"]
                   for o in cell.get("outputs", [])]
        assert any("image/png" in o.get("data", {}) for o in outputs)
        assert any('<table class="course-table">' in "".join(o.get("data", {}).get("text/html", "")) for o in outputs)

    student = run(copy, "book/tools/student_edition.py", "--out", str(tmp_path / "student"))
    assert student.returncode == 0, student.stderr[-3000:]
    for lang in ("vi", "en"):  # the template's exercise follows the lessons' format: its solution is left out
        edition = (tmp_path / "student" / "notebooks" / lang / f"{name}.md").read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in edition and "math.cos" not in edition and "NotImplementedError" in edition
