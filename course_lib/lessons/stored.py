"""The lessons' stored GPU results: provenance, the JSON files in ``course_lib/lessons/results/``, and the command that writes them.

Lessons 03-05 each have a ``run_all(config, device)`` that measures a
configuration and a ``CONFIGS`` table; ``python -m course_lib.lessons.<module>
--config gpu`` runs it (:func:`main`) and stores the numbers, rounded, with
their provenance; the lesson loads them with :func:`load`, which refuses a
file made with another configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Mapping

import torch

from course_lib.engine._checks import check_choice, check_type, shown
from course_lib.engine.data import pick_device
from course_lib.engine.files import check_writable, write_safely

__all__ = ["provenance", "path", "load", "as_stored", "rounded", "main", "check_progress", "configuration", "require", "validate", "Real", "Int",
           "Choice", "Many", "Named", "Maybe", "in_processes"]

DATA = Path(__file__).resolve().parent / "results"  # shipped in the package: Colab installs it from git without the book


def _driver() -> str | None:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return None


def provenance(device: torch.device, command: str, **extra) -> dict:
    """Where and when numbers were measured: date, device (and GPU driver), torch, CUDA, Python, the command."""
    device = device if isinstance(device, torch.device) else pick_device(device)
    cuda = device.type == "cuda"
    return {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "device": torch.cuda.get_device_name(device) if cuda else platform.processor() or "CPU",
        "driver": _driver() if cuda else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "command": command,
        **extra,
    }


def path(lesson: str, name: str) -> Path:
    """``course_lib/lessons/results/lesson<lesson>_<name>.json``."""
    if not (isinstance(lesson, str) and len(lesson) == 2 and lesson.isdigit()):
        raise TypeError(f"lesson must be the lesson's number as two digits, e.g. '05', got {shown(lesson)}")
    check_type("name", name, str, "the name of a configuration or of a stored file, e.g. 'gpu'")
    if not name or "/" in name or "\\" in name or ".." in name:
        raise ValueError(f"name must name a file in the results folder (no path separator, no '..'), got {shown(name)}")
    return DATA / f"lesson{lesson}_{name}.json"


def rounded(value, where: str = "value"):
    """Floats to 6 significant digits, through dicts and lists (the stored file stays small; the lessons show at most 4).

    Anything JSON cannot hold (a tensor, an object) is refused with a TypeError
    that says where it is, not written as a broken file.
    """
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: rounded(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise TypeError(f"{where} must be JSON data (a number, a str, None, a list or a dict), got {shown(value)}: "
                    "convert it first (a one-element tensor with .item())")


def configuration(configs: Mapping, name: str):
    """``configs[name]``, or a ValueError that names the configurations there are (not a bare ``KeyError``)."""
    check_choice("name", name, tuple(configs), "the configurations of CONFIGS")
    return configs[name]


def require(results: Mapping, keys, what: str):
    """``results[k1][k2]...`` for ``keys``, or a ValueError that names the missing part and where such results come from."""
    if not isinstance(keys, (list, tuple)):
        raise TypeError(f"keys must be a sequence of keys, e.g. ['comparison', 'rows'], got {shown(keys)}")
    check_type("what", what, str, "what to pass instead (a string)")
    value, trail = results, ""
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            raise ValueError(f"results{trail} has no {key!r}: pass {what}")
        value, trail = value[key], f"{trail}[{key!r}]"
    return value


# A schema says what a lesson's tables and summaries read from its results: a dict {key: schema} (the keys must be
# there; others may be), a type (str, dict, list), or one of the classes below.  validate() walks it.


@dataclasses.dataclass(frozen=True)
class Real:
    """A finite real number (not a bool) >= ``low`` (> ``low`` if ``exclusive``) and <= ``high``.

    ``nonfinite`` (why they may occur) lets NaN and ±inf through, e.g. the
    norm of a step that fp16 skipped.
    """

    low: float = 0.0
    high: float = math.inf
    exclusive: bool = False
    nonfinite: str = ""

    def check(self, value, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} must be a number, got {shown(value)}")
        if self.nonfinite and not math.isfinite(value):
            return
        if not (math.isfinite(value) and (value > self.low if self.exclusive else value >= self.low) and value <= self.high):
            low = f"> {self.low}" if self.exclusive else f">= {self.low}"
            bounds = low if self.high == math.inf else f"in {'(' if self.exclusive else '['}{self.low}, {self.high}]"
            raise ValueError(f"{where} must be a finite number {bounds}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Int:
    """An int (not a bool) >= ``low``."""

    low: int = 0

    def check(self, value, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < self.low:
            raise ValueError(f"{where} must be an int >= {self.low}, got {shown(value)}")


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of ``values``."""

    values: tuple

    def check(self, value, where: str) -> None:
        if isinstance(value, bool) or value not in self.values:
            raise ValueError(f"{where} must be one of {', '.join(map(repr, self.values))}, got {shown(value)}")


@dataclasses.dataclass(frozen=True)
class Many:
    """A list whose every item matches ``item``; at least one item unless ``empty``."""

    item: object
    empty: bool = False

    def check(self, value, where: str) -> None:
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list, got {shown(value)}")
        if not value and not self.empty:
            raise ValueError(f"{where} is empty: it must hold at least one item")
        for i, item in enumerate(value):
            validate(item, self.item, f"{where}[{i}]")


@dataclasses.dataclass(frozen=True)
class Named:
    """A dict {name: value} whose every value matches ``item`` (e.g. seconds per kind of kernel)."""

    item: object

    def check(self, value, where: str) -> None:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} must be a dict, got {shown(value)}")
        for key, item in value.items():
            validate(item, self.item, f"{where}[{key!r}]")


@dataclasses.dataclass(frozen=True)
class Maybe:
    """None (not measured, e.g. GPU memory on a CPU) or what ``schema`` says."""

    schema: object

    def check(self, value, where: str) -> None:
        if value is not None:
            validate(value, self.schema, where)


def validate(value, schema, where: str = "results") -> None:
    """A ValueError that names the first part of ``value`` (``where`` and its keys) that does not match ``schema``."""
    if isinstance(schema, Mapping):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} must be a dict, got {shown(value)}")
        for key, part in schema.items():
            if key not in value:
                raise ValueError(f"{where} has no {key!r}")
            validate(value[key], part, f"{where}[{key!r}]")
    elif isinstance(schema, type):
        if not isinstance(value, schema):
            raise ValueError(f"{where} must be a {schema.__name__}, got {shown(value)}")
    else:
        schema.check(value, where)


def load(lesson: str, name: str, command: str, expected: Mapping[str, object] = {}, schema: Mapping | None = None) -> dict:
    """The stored results ``lesson<lesson>_<name>.json``; each ``expected[key]`` (a dataclass) must equal the file's ``key``.

    ``schema`` (see :func:`validate`) is what the lesson reads from the file:
    a file that lacks a part of it, or holds a value out of its range, is
    refused here, with the file's name, not later in a table.

    ``command`` is what writes the file (said when it is missing, damaged or
    made with another configuration), e.g.
    ``"python -m course_lib.lessons.finetuning_bert --config gpu"``.
    """
    file = path(lesson, name)
    for key, config in expected.items():
        if not dataclasses.is_dataclass(config) or isinstance(config, type):
            raise TypeError(f"expected[{key!r}] must be a configuration (a dataclass instance), got {shown(config)}")
    if not file.exists():
        raise FileNotFoundError(f"{file} is missing: run `{command}` on a GPU")
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{file} cannot be read as JSON ({error}): it is truncated or damaged: restore the "
                         f"shipped copy (`git checkout -- {file}`) or rewrite it with `{command}`") from None
    if not isinstance(results, dict):
        raise ValueError(f"{file} holds a {type(results).__name__}, not the dict of results: rewrite it with `{command}`")
    for key, config in expected.items():
        if key not in results:
            raise ValueError(f"{file} has no {key!r}: it was not written by `{command}`; rewrite it with that command")
        if not isinstance(results[key], Mapping) or results[key] != as_stored(config, results[key]):
            raise ValueError(f"{file} was made with another configuration than CONFIGS[{name!r}]: re-run `{command}`")
    if schema is not None:
        try:
            validate(results, schema)
        except ValueError as error:
            raise ValueError(f"{file} is damaged or was not written by `{command}`: {error}; restore the shipped copy "
                             f"(`git checkout -- {file}`) or rewrite it with that command") from None
    return results


def as_stored(config, stored: Mapping) -> dict:
    """``config`` as JSON, less the fields added since ``stored`` was written that still hold their default.

    A field added later (say ``precision``, default ``"fp32"``) leaves a file
    made before it valid as long as the configuration keeps the default: the run
    it describes used that default.  Nested configurations (a ``GPTConfig`` as
    ``model``) are compared the same way, field by field.
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a configuration (a dataclass instance), got {shown(config)}")
    check_type("stored", stored, Mapping, "the stored configuration, a dict read from the results file")
    out = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name not in stored and value == field.default:
            continue
        if dataclasses.is_dataclass(value) and isinstance(stored.get(field.name), Mapping):
            out[field.name] = as_stored(value, stored[field.name])
        else:
            out[field.name] = json.loads(json.dumps(dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value))
    return out


def check_progress(progress: object) -> None:
    """``run_all``'s ``progress``: a function that takes a line of text (print, or one that drops it)."""
    if not callable(progress):
        raise TypeError(f"progress must be a function that takes a line of text, e.g. print or lambda line: None, "
                        f"got {shown(progress)}")


def in_processes(target: str, config, device, processes: int, progress=print) -> list:
    """``target(config_json, device)`` run in ``processes`` separate Python processes, one after the other: their JSON results.

    A timing repeated in separate commands shows the spread a reader
    repeating it would see (another allocation, another kernel choice), which
    rounds inside one process hide.  ``target`` is ``"module:function"``;
    the function takes the configuration as JSON and the device ("" for the
    default) and returns what ``json.dumps`` takes.
    """
    check_type("target", target, str, '"module:function", e.g. "course_lib.lessons.optimization_options:_one_staircase"')
    module, _, function = target.partition(":")
    if not module or not function.isidentifier():
        raise ValueError(f'target must be "module:function", got {target!r}')
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a configuration (a dataclass instance), got {shown(config)}")
    if device is not None:
        check_type("device", device, (str, torch.device), "None (the GPU when there is one), 'cpu' or 'cuda'")
    check_progress(progress)
    root = str(DATA.parents[2])  # the folder that holds course_lib
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    code = f"import json, sys\nfrom {module} import {function}\nprint(json.dumps({function}(sys.argv[1], sys.argv[2] or None)))\n"
    out = []
    for i in range(processes):
        progress(f"{getattr(config, 'name', 'run')}: process {i + 1} of {processes}")
        done = subprocess.run([sys.executable, "-c", code, json.dumps(dataclasses.asdict(config)), str(device or "")],
                              capture_output=True, text=True, env=env, cwd=root)
        if done.returncode:
            raise RuntimeError(f"process {i + 1} of {processes} ({target}) failed:\n{done.stderr[-3000:]}")
        out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def main(argv, *, lesson: str, description: str, configs: Mapping, run_all: Callable) -> None:
    """The command line of a lesson's module: ``--config``, ``--device``, ``--out``; runs and stores the results."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", choices=sorted(configs), default="gpu")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=None, help=f"default: course_lib/lessons/results/lesson{lesson}_<config>.json")
    args = parser.parse_args(argv)
    out = check_writable(args.out or path(lesson, args.config), "--out")  # before the run: a bad place must not cost the run
    results = run_all(configs[args.config], args.device)
    text = json.dumps(rounded(results, "run_all's results"))
    written = write_safely(out, lambda file: file.write_text(text, encoding="utf-8"), "the results")
    print(f"wrote {written}")
