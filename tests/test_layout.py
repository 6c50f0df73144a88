"""The product's layout rules that no import contract can say (issue 21).

Every function of 50 lines or more carries a docstring saying what it decides and why: a long
function is where the next engineer needs the reason most. The simulator (reconciler/simulate/)
is checked too: it already passes.
"""

from __future__ import annotations

import ast
import pathlib

PRODUCT = pathlib.Path(__file__).resolve().parent.parent / "reconciler"
LONG = 50  # lines, from the ``def`` line to the function's last line


def long_functions_without_docstring(source: str, name: str = "<source>") -> list[str]:
    """``file:line function (N lines)`` for each function of ``LONG`` lines or more, nested
    ones and methods included, that has no docstring."""
    out = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            if lines >= LONG and ast.get_docstring(node) is None:
                out.append(f"{name}:{node.lineno} {node.name} ({lines} lines)")
    return out


def test_every_long_product_function_says_what_it_decides():
    files = sorted(PRODUCT.rglob("*.py"))
    assert len(files) > 50  # the walk found the product
    missing = [m for p in files
               for m in long_functions_without_docstring(p.read_text(), str(p.relative_to(PRODUCT)))]
    assert missing == [], "functions of 50+ lines without a docstring:\n" + "\n".join(missing)


def _function(lines: int, doc: bool, indent: str = "") -> str:
    body = [f'{indent}    """Why."""'] if doc else []
    body += [f"{indent}    x = {i}" for i in range(lines - 1 - len(body))]
    return "\n".join([f"{indent}def f():", *body]) + "\n"


def test_the_check_finds_a_long_function_or_method_without_a_docstring():
    assert long_functions_without_docstring(_function(LONG, doc=False)) == ["<source>:1 f (50 lines)"]
    method = "class C:\n" + _function(LONG, doc=False, indent="    ")
    assert long_functions_without_docstring(method) == ["<source>:2 f (50 lines)"]
    assert long_functions_without_docstring(_function(LONG - 1, doc=False)) == []
    assert long_functions_without_docstring(_function(LONG, doc=True)) == []
