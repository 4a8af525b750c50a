"""The layers are true in the imports: every ``import`` of src/genlab (inside functions too)
read from the source, each package or top-level module placed on a floor, and no import may
point to a higher floor; no two packages may reach each other, directly or through others.
A failure names the file and the line."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import genlab

ROOT = Path(genlab.__file__).resolve().parent

#: bottom to top; a unit imports only from its own floor or below (docs/architecture.md)
FLOORS = [
    {"errors", "hashing", "seeding", "options", "conditioning", "registry", "runfiles"},
    {"nn", "diffusion", "text", "data", "viz", "serialization"},
    {"base", "assets", "runlock", "runs", "lora"},
    {"training"},
    {"models"},
    {"generation"},
    {"pipelines", "interop"},
    {"backends"},
    {"finetune", "evaluation"},
    {"cli", "webui", "course", "demo", "__init__", "__main__"},
]
FLOOR = {unit: i for i, units in enumerate(FLOORS) for unit in units}


def unit_of(module: str) -> str:
    """genlab.models.vae -> models; genlab.errors -> errors; genlab -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports() -> list[tuple[str, str, str]]:
    """(importing unit, imported unit, "file:line") for every import between two units."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(rel.parts)
        package = module[: -len(".__init__")] if module.endswith(".__init__") else module
        package = package if path.name == "__init__.py" else package.rsplit(".", 1)[0]
        source = unit_of(module.removesuffix(".__init__"))
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    prefix = ".".join(base)
                    targets = (
                        [f"{prefix}.{node.module}"]
                        if node.module
                        else [f"{prefix}.{a.name}" for a in node.names]
                    )
                elif node.module == "genlab":
                    targets = [f"genlab.{a.name}" for a in node.names]
                else:
                    targets = [node.module or ""]
            else:
                continue
            for target in targets:
                if target.startswith("genlab.") and unit_of(target) != source:
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    found.append((source, unit_of(target), where))
    return found


def test_every_unit_has_a_floor():
    units = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}  # fmt: skip
    assert units - set(FLOOR) == set(), "add the new package to FLOORS (and the architecture)"


def test_no_import_points_up():
    upward = [f"{where}: {a} imports {b}" for a, b, where in imports() if FLOOR[b] > FLOOR[a]]
    assert upward == []


def test_models_import_no_pipeline_back_end_or_front_end():
    above = {u for u in FLOOR if FLOOR[u] > FLOOR["models"]}
    found = [f"{where}: models imports {b}" for a, b, where in imports() if a == "models"
             and b in above]  # fmt: skip
    assert found == []


def test_no_two_units_reach_each_other():
    edges: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], str] = {}
    for a, b, w in imports():
        edges[a].add(b)
        where.setdefault((a, b), w)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    knots = sorted(
        f"{a} <-> {b} (first: {where[(a, b)]})"
        for a in list(edges)
        for b in edges[a]
        if a in reach(b)
    )
    assert knots == []


def test_the_check_sees_lazy_imports(tmp_path):
    """The walker reads imports inside functions too (the knots of the past were lazy)."""
    found = {(a, b) for a, b, _ in imports()}
    # cli imports the webui only inside cmd_webui: a lazy import the walk must see
    assert ("cli", "webui") in found
