"""Show a function's code in the notebook: the code that runs, where Colab, Jupyter and the site all render it.

A ``{literalinclude}`` directive renders only on the website; in Colab and
Jupyter the reader sees the raw directive.  ``show_source(fn)`` is a cell's
output instead: highlighted HTML where HTML is shown, the plain code in a
console and in the notebook's text output (which nbval compares, so a change to
the shown function fails the lesson until it is re-executed).  Docstrings and
comments are left out: the lesson's prose explains the code in the reader's
language, and what remains is the same on the Vietnamese and English pages.
"""

from __future__ import annotations

import ast
import inspect
import io
import textwrap
import tokenize

from course_lib.engine._checks import shown

__all__ = ["code_of", "show_source"]


def _docstring_lines(tree: ast.AST) -> set[int]:
    """The 1-based line numbers of every docstring in ``tree`` (module, classes, functions)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def code_of(obj) -> str:
    """The source of a function, class or method without its docstrings and comments, dedented."""
    target = inspect.unwrap(obj) if callable(obj) else obj
    if not (inspect.isfunction(target) or inspect.isclass(target) or inspect.ismethod(target)):
        raise TypeError(f"obj: expected a function, method or class defined in Python, got {shown(obj)}")
    source = textwrap.dedent(inspect.getsource(target))
    drop = _docstring_lines(ast.parse(source))
    comments: dict[int, int] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.start[1]
    kept = []
    for number, line in enumerate(source.splitlines(), start=1):
        if number in drop:
            continue
        if number in comments:
            line = line[: comments[number]].rstrip()
            if not line:
                continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def show_source(obj):
    """``code_of(obj)`` as a highlighted code block (an ``IPython.display.Code``; its text form is the code itself)."""
    from IPython.display import Code

    return Code(code_of(obj), language="python")
