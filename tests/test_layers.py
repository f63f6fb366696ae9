"""The policy model sits at the bottom: checks, Consent Mode signals, browser guides and the
tracker catalog read it, and loading-and-checking (consentmw.core.policy) sits above them all.
An import circle among them once made the import order matter and hid which module owns what."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "consentmw"
# The modules that imported each other in a circle before the model had its own module.
ONCE_CIRCULAR = ("policy", "consentmode", "policy_checks", "browsers", "trackers", "catalog", "model")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def consentmw_imports(path: Path, modules: set[str], *, type_checking: bool) -> set[str]:
    """Every consentmw module ``path`` imports, at the top or inside a function; the imports under
    ``if TYPE_CHECKING:`` count only when ``type_checking``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and not type_checking and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "consentmw")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base.split(".")[0] == "consentmw":
                found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text("utf-8")))
    return (found & modules) - {name}


def import_graph(*, type_checking: bool) -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: consentmw_imports(path, set(files), type_checking=type_checking) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            cycle = walk(target)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = walk(start)
        if cycle:
            return cycle
    return None


def test_no_module_of_consentmw_imports_itself_back() -> None:
    cycle = find_cycle(import_graph(type_checking=False))
    assert cycle is None, (
        "an import circle: " + " -> ".join(cycle or ()) + ". The policy model (consentmw.core.model) imports no consentmw "
        "module; checks, signals, guides and catalog import the model; consentmw.core.policy (loading and checking) imports them"
    )


def test_the_policy_model_imports_nothing_of_consentmw() -> None:
    graph = import_graph(type_checking=True)
    assert graph["consentmw.core.model"] == set()


@pytest.mark.parametrize("module", ["consentmode", "policy_checks", "browsers", "trackers", "catalog"])
def test_what_reads_the_model_never_imports_the_loader(module: str) -> None:
    graph = import_graph(type_checking=True)
    assert "consentmw.core.policy" not in graph[f"consentmw.core.{module}"]


@pytest.mark.parametrize("module", ONCE_CIRCULAR)
def test_each_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    # Imported first, a module of a circle meets its partner half-built; here every one of them
    # comes first once and must leave a working policy loader behind.
    code = f"import consentmw.core.{module}\nfrom consentmw.core.policy import load_policy\nload_policy('default')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
