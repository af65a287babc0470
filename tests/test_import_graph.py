"""The package's modules import one another without a cycle: each can be
read, and changed, knowing only the modules below it (docs/design.md draws
the layers). Every relative import counts, at the top of a module or inside
a function."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "plpython" / "aws_ml"


def imports_of(path):
    """The package's modules that the module at path imports."""
    modules = {module.stem for module in PACKAGE.glob("*.py")}
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                imported.add(node.module.split(".")[0])
            else:
                imported.update(alias.name for alias in node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            imported.update(name.split(".")[1] for name in names if name.startswith("aws_ml."))
    return imported & modules


def cycles(graph):
    """The strongly connected components of graph ({node: successors}) that
    hold a cycle (Tarjan's algorithm), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_package_has_no_import_cycle():
    graph = {path.stem: imports_of(path) for path in PACKAGE.glob("*.py")}
    assert len(graph) > 20 and graph["request"] >= {"transport", "credentials", "settings"}
    assert cycles(graph) == []


def test_a_cycle_is_found():
    """The check itself: the cycles of the package before they were broken."""
    graph = {"backend": {"errors"}, "errors": {"backend", "stats"}, "stats": {"errors"},
             "request": {"clients"}, "clients": {"request", "wait"}, "wait": set(), "alone": {"alone"}}
    assert cycles(graph) == [["alone"], ["backend", "errors", "stats"], ["clients", "request"]]
