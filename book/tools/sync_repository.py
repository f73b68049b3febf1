"""Point every lesson's install cell at the repository named in _config.yml.

    python book/tools/sync_repository.py

A fork changes ``repository.url`` / ``repository.branch`` in _config.yml and
runs this; the Colab buttons follow _config.yml by themselves.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
INSTALL = re.compile(r"git\+https://[^\s\"'@]+@[\w.\-/]+")


def main() -> int:
    repository = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]
    target = f"git+{repository['url']}@{repository['branch']}"
    for path in sorted((ROOT / "notebooks").glob("*/*")):
        if path.suffix not in {".md", ".ipynb"}:
            continue
        text = path.read_text(encoding="utf-8")
        updated = INSTALL.sub(target, text)
        if updated != text:
            path.write_text(updated, encoding="utf-8")
            print(f"{path.relative_to(ROOT)} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
