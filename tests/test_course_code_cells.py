"""The code a course page shows (and its notebook runs as a cell) names only what it defines
or imports: pasted into a fresh interpreter or kernel, it runs. Read from the step modules'
``page.code(...)`` calls without running the steps: a check in seconds, before the
notebooks (tests/test_notebooks.py) run them."""

import ast
import builtins
import inspect
from importlib import import_module

import pytest

from genlab.course import STEPS
from genlab.course.page import code_text


def _call_text(node: ast.expr) -> str:
    """The ``call=`` string of a ``page.code`` call; an f-string's fields as 0."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "0" for v in node.values)
    raise AssertionError(f"call= is neither a string nor an f-string: {ast.dump(node)}")


def code_blocks(module) -> list[str]:
    """The text of every code block the step's page shows."""
    blocks = []
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "code":
            funcs = [getattr(module, a.id) for a in node.args if isinstance(a, ast.Name)]
            call = next((_call_text(k.value) for k in node.keywords if k.arg == "call"), "")
            blocks.append(code_text(*funcs, call=call))
    return blocks


def free_names(text: str) -> set[str]:
    """Names the code reads that it never defines, imports or binds (builtins aside)."""
    tree = ast.parse(text)
    bound = set(dir(builtins))
    for n in ast.walk(tree):
        if isinstance(n, ast.FunctionDef | ast.ClassDef):
            bound.add(n.name)
        elif isinstance(n, ast.Import | ast.ImportFrom):
            bound |= {(a.asname or a.name).split(".")[0] for a in n.names}
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            bound.add(n.id)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return used - bound


@pytest.mark.parametrize("key", [s.key for s in STEPS])
def test_a_pages_code_names_only_what_it_defines_or_imports(key):
    step = next(s for s in STEPS if s.key == key)
    blocks = code_blocks(import_module(f"genlab.course.{step.module}"))
    assert blocks, f"step {key} shows no code"
    for text in blocks:
        assert not free_names(text), (key, free_names(text))
        relative = [
            n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ImportFrom) and n.level
        ]
        assert not relative, f"step {key}: a relative import fails outside the package"


def test_the_check_finds_a_helper_that_is_not_imported():
    text = code_text(call="x = 1\nprint(train_briefly(x))")
    assert free_names(text) == {"train_briefly"}
