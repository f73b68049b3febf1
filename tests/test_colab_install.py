"""Installing course_lib in Colab changes none of Colab's preinstalled packages.

The lessons' install cell runs ``pip install git+…`` in Colab. A requirement above what Colab preinstalls
(``ipython>=8`` once) makes pip upgrade a pinned package and Colab ask for a restart. This test builds
course_lib's wheel from this checkout, makes a throwaway environment that holds the packages of Colab's
GPU runtime (``tests/colab/pip-freeze.txt``) as installed metadata only, and asks pip, offline, what
installing the wheel there would do: install course_lib and nothing else, with and without the extras
``[online,gpt]`` of lessons 03-04. No network, nothing written outside pytest's temporary directories.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from email.parser import HeaderParser
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
FREEZE = ROOT / "tests" / "colab" / "pip-freeze.txt"
EXTRAS = ["", "[online,gpt]"]  # what the lessons install; the extras Colab students need for lessons 03/04


@cache
def colab() -> tuple[str, dict[str, tuple[str, str]]]:
    """Colab's Python version (the list's ``# python-version:`` line) and its packages: normalised name -> (name, version)."""
    python, packages = None, {}
    for line in FREEZE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if found := re.fullmatch(r"#\s*python-version:\s*(\S+)", line):
            python = found[1]
        if not line or line.startswith("#"):
            continue
        if "==" in line:  # name==version (=== too)
            name, version = (part.strip() for part in line.split("==", 1))
            version = version.lstrip("=")
        else:  # name @ url: the version from the file name of a wheel or an sdist, else unknown
            name, url = (part.strip() for part in line.split(" @ ", 1))
            filename = url.split("#")[0].rstrip("/").rsplit("/", 1)[-1]
            try:
                version = str(parse_wheel_filename(filename)[1] if filename.endswith(".whl")
                              else parse_sdist_filename(filename)[1])
            except ValueError:  # git+https://…@commit: any requirement on it fails, which shows it
                version = "0"
        packages[canonicalize_name(name)] = (name, version)
    assert python, f"{FREEZE.relative_to(ROOT)} lacks its '# python-version: X.Y.Z' line"
    return python, packages


def dist_info_name(name: str, version: str) -> str:
    """``<name>-<version>.dist-info`` as the wheel spec writes it (binary distribution format, escaping)."""
    try:
        version = str(Version(version))  # normalised; a local version keeps its '+': 2.11.0+cu128
    except InvalidVersion:
        version = version.replace("-", "_")
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}.dist-info"


def pip_env() -> dict[str, str]:
    """This environment without pip's settings: no configured index, find-links or upgrade strategy."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    return env | {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """course_lib's wheel, built from a copy of this checkout (an in-tree build would write build/ here), and the build's log."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "course_lib", source / "course_lib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--verbose", "--no-deps", "--no-build-isolation",
                            "--no-index", "--ignore-requires-python",  # Colab's Python is checked below, not this one
                            "-w", str(tmp / "dist"), str(source)],
                           capture_output=True, text=True, env=pip_env(), timeout=300)
    assert built.returncode == 0, f"building course_lib's wheel failed:\n{built.stdout}\n{built.stderr}"
    (found,) = (tmp / "dist").glob("course_lib-*.whl")
    return found, built.stdout + built.stderr


@pytest.fixture(scope="module")
def colab_env(tmp_path_factory) -> Path:
    """A venv without pip whose site-packages holds one metadata-only ``.dist-info`` per package of Colab's list; its python."""
    home = tmp_path_factory.mktemp("colab") / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(home)
    python = home / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    assert site.is_relative_to(home), site
    for name, version in colab()[1].values():
        info = site / dist_info_name(name, version)
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
        (info / "INSTALLER").write_text("pip\n", encoding="utf-8")
        (info / "RECORD").write_text("".join(f"{info.name}/{file},,\n" for file in ("METADATA", "INSTALLER", "RECORD")),
                                     encoding="utf-8")
    return python


def requirements(wheel: Path, extras: str) -> list[tuple[Requirement, str]]:
    """The wheel's Requires-Dist that apply in Colab with these extras, each with who asks for it: course_lib[extra]."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = (name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(archive.read(metadata).decode("utf-8"))
    python = colab()[0]
    chosen = [""] + [extra.strip() for extra in extras.strip("[]").split(",") if extra.strip()]
    environment = {"python_version": ".".join(python.split(".")[:2]), "python_full_version": python}
    found = []
    for requirement in map(Requirement, headers.get_all("Requires-Dist") or []):
        marker, requirement.marker = requirement.marker, None
        for extra in chosen:
            if marker is None or marker.evaluate(environment | {"extra": extra}):
                found.append((requirement, f"course_lib[{extra}]" if extra else "course_lib"))
                break
    return found


def changes(wanted: list[tuple[Requirement, str]], packages: dict[str, tuple[str, str]]) -> list[str]:
    """Each requirement that Colab's packages do not meet, and what pip would do about it."""
    found = []
    for requirement, asker in wanted:
        name = canonicalize_name(requirement.name)
        if name not in packages:
            found.append(f"{requirement.name}: not in Colab; pip would install it ({asker} requires {requirement})")
            continue
        listed, version = packages[name]
        if not requirement.specifier.contains(version, prereleases=True):
            found.append(f"{listed} {version}: pip would replace Colab's version ({asker} requires {requirement}); "
                         "Colab then asks for a restart")
    return found


def test_colab_python_is_admitted():
    python = colab()[0]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    assert SpecifierSet(requires).contains(python), (
        f"pyproject.toml's requires-python {requires!r} refuses Colab's Python {python} ({FREEZE.relative_to(ROOT)})")


def test_unmet_requirement_is_explained():
    """The failure message of the test below: it names the package, Colab's version and the requirement."""
    found = changes([(Requirement(text), "course_lib") for text in ("ipython>=8", "torch>=2.2", "no-such-package")],
                    colab()[1])
    assert len(found) == 2
    assert found[0].startswith("ipython 7.34.0: pip would replace") and "ipython>=8" in found[0]
    assert found[1].startswith("no-such-package: not in Colab")


@pytest.mark.parametrize("extras", EXTRAS, ids=lambda extras: extras or "plain")
def test_installing_course_lib_in_colab_changes_nothing(wheel, colab_env, extras, tmp_path):
    """pip, offline, in an environment holding Colab's packages, for Colab's Python: course_lib alone, or why not.

    With --no-index pip can reach no package but the wheel, so any requirement that Colab's packages do not
    meet (an upgrade, a downgrade, a new package) makes it fail; the message then lists those requirements.
    Environment markers are evaluated by the throwaway venv's Python (this one): course_lib's have none.
    """
    path, _ = wheel
    python, packages = colab()
    report = tmp_path / "report.json"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(colab_env), "install", "--dry-run", "--no-index",
         "--python-version", python, "--only-binary=:all:",
         "--report", str(report), f"course_lib{extras} @ {path.as_uri()}"],
        capture_output=True, text=True, env=pip_env(), timeout=300)
    why = changes(requirements(path, extras), packages)
    explained = "\n".join(f"  - {line}" for line in why) or "  (Colab's packages meet every requirement: see pip's output)"
    assert pip.returncode == 0, (
        f"pip would not install course_lib{extras} alone in Colab ({FREEZE.relative_to(ROOT)}):\n"
        f"{explained}\npip, offline, with Colab's packages installed, said:\n{pip.stderr.strip()}")
    installs = [(item["metadata"]["name"], item["metadata"]["version"]) for item in json.loads(report.read_text(encoding="utf-8"))["install"]]
    others = []
    for name, version in installs:
        if canonicalize_name(name) == "course-lib":
            continue
        listed = packages.get(canonicalize_name(name))
        others.append(f"{name} {version}: " + (f"replaces Colab's {listed[1]}" if listed else "not in Colab, new"))
    assert not others, f"installing course_lib{extras} in Colab would also install:\n  " + "\n  ".join(others)
    assert [canonicalize_name(name) for name, _ in installs] == ["course-lib"], installs


def test_wheel_ships_the_stored_results_and_builds_without_warnings(wheel):
    path, log = wheel
    with zipfile.ZipFile(path) as archive:
        shipped = {name for name in archive.namelist() if name.startswith("course_lib/lessons/results/")}
    expected = {f"course_lib/lessons/results/{file.name}" for file in (ROOT / "course_lib" / "lessons" / "results").glob("*.json")}
    assert expected and shipped == expected, f"the wheel ships {sorted(shipped)}, course_lib/lessons/results/ holds {sorted(expected)}"
    warnings = [line.strip() for line in log.splitlines() if re.search(r"Warning\b|absent from the `packages`", line)]
    assert not warnings, "setuptools warns while building course_lib:\n" + "\n".join(warnings)
