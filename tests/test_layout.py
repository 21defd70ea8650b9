"""The package's layout: dependencies run one way, and the README's module table is complete."""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "asr"
README = PACKAGE.parent / "README.md"
TOP = {"train", "train_log", "train_setup", "train_checks", "amp", "selection", "schedule", "weight_perturbation", "losses", "distributed",
       "commands", "cli_systems", "lm_commands", "data_commands", "export_commands", "average_commands", "cli_types", "cli_lm", "cli"}  # training and the CLI sit on top


def imports(module: Path) -> set[str]:
    """The asr modules a module imports, deferred (in-function) imports included."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "asr":  # from asr import data
            names = [f"asr.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        else:
            continue
        found |= {n.split(".")[1] for n in names if n.startswith("asr.")}
    return found


GRAPH = {p.stem: imports(p) for p in PACKAGE.glob("*.py")}


def test_no_module_imports_itself_back_through_others():
    def cycle_from(start):
        stack = [(start, (start,))]
        while stack:
            node, path = stack.pop()
            for nxt in GRAPH.get(node, ()):
                if nxt == start:
                    return path + (start,)
                if nxt not in path:
                    stack.append((nxt, path + (nxt,)))
        return None

    cycles = {m: cycle_from(m) for m in GRAPH}
    assert {m: c for m, c in cycles.items() if c} == {}


def test_the_library_never_imports_training_or_the_cli():
    below = {m: GRAPH[m] & TOP for m in GRAPH if m not in TOP}
    assert {m: up for m, up in below.items() if up} == {}


def test_every_module_has_a_row_in_the_readme_module_table():
    listed = set(re.findall(r"^\| `asr/(\w+)\.py` \|", README.read_text(encoding="utf-8"), re.M))
    assert set(GRAPH) - {"__init__"} - listed == set()
    assert listed - set(GRAPH) == set(), "rows for modules that no longer exist"
