"""The layout's promises: the project's modules import one another without a cycle, and no service reaches
for a task module (tasks import services; services queue tasks by name through mhp.jobs.job_enqueue)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("annotation", "datasets", "training", "mhp")


def _modules() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "tests" in parts or "migrations" in parts:
                continue
            found[".".join(parts).removesuffix(".__init__")] = path
    return found


def _module_level_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that `path` imports when it is imported (not inside functions)."""
    targets = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                        for alias in node.names}  # fmt: skip
    return {target for target in targets if target in modules}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                on_stack.discard(member)
                component.append(member)
            on_stack.discard(node)
            if component:
                found.append(sorted([node, *component]))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_the_projects_modules():
    modules = _modules()
    graph = {name: _module_level_imports(path, modules) for name, path in modules.items()}
    assert graph["annotation.prompts.services.import_jobs"] >= {"mhp.jobs"}  # the scan sees real imports
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_service_imports_a_task_module_anywhere():
    services = [p for name, p in _modules().items() if ".services" in name or name.endswith("services")]
    assert len(services) > 20
    for path in services:
        assert not re.search(r"^\s*from \S+\.tasks import|^\s*import \S+\.tasks", path.read_text(), re.M), path
