"""mypy over the package (pyproject.toml's [tool.mypy]): every function of
every module is annotated, parameters and return, and the annotations hold.
mypy checks against Python 3.10 at the oldest, and the package runs on 3.9
(pyproject.toml's requires-python): what 3.9 evaluates of the annotations
is checked here."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "plpython" / "aws_ml"

# typing's names that Python 3.9's typing lacks (3.10 to 3.13)
NEWER_TYPING = frozenset((
    "Concatenate", "ParamSpec", "ParamSpecArgs", "ParamSpecKwargs", "TypeAlias", "TypeGuard", "is_typeddict",
    "LiteralString", "Never", "NotRequired", "Required", "Self", "TypeVarTuple", "Unpack", "assert_never",
    "assert_type", "clear_overloads", "dataclass_transform", "get_overloads", "reveal_type",
    "TypeAliasType", "override", "NoDefault", "ReadOnly", "TypeIs", "get_protocol_members", "is_protocol",
))


def test_mypy_finds_no_error_in_the_package():
    checked = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues found in" in checked.stdout


def run_time_typing(source):
    """What Python evaluates of a module's typing as it imports it, outside
    `if TYPE_CHECKING:`: (the names imported from typing or
    typing_extensions, as (module, name); the annotations of functions and
    of names at module and class level, unless the module has `from
    __future__ import annotations`)."""
    imported, annotations = [], []
    postponed = "from __future__ import annotations" in source

    def visit(node, in_function):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            return
        if isinstance(node, ast.ImportFrom) and node.module in ("typing", "typing_extensions"):
            imported.extend((node.module, alias.name) for alias in node.names)
        if isinstance(node, ast.Import):
            imported.extend((alias.name, "*") for alias in node.names if alias.name == "typing_extensions")
        if not postponed and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            annotations.extend(argument.annotation for argument in [
                *arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]
                if argument is not None and argument.annotation is not None)
            annotations.extend([node.returns] if node.returns is not None else [])
        if not postponed and isinstance(node, ast.AnnAssign) and not in_function:
            annotations.append(node.annotation)
        for child in ast.iter_child_nodes(node):
            visit(child, in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))
    visit(ast.parse(source), False)
    return imported, annotations


def python_3_9_refuses(source):
    """What of source's typing fails to import on Python 3.9: typing names
    it lacks, typing_extensions (not installed with the package), and
    unions written X | Y in an annotation it evaluates."""
    imported, annotations = run_time_typing(source)
    refused = [f"{module}.{name}" for module, name in imported
               if module == "typing_extensions" or name in NEWER_TYPING]
    refused += [ast.unparse(annotation) for annotation in annotations
                if any(isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) for node in ast.walk(annotation))]
    return refused


def test_python_3_9_evaluates_the_package_s_annotations():
    for module in sorted(PACKAGE.glob("*.py")):
        assert python_3_9_refuses(module.read_text()) == [], module.name


def test_what_python_3_9_refuses_is_found():
    """The check itself: what fails on 3.9, and what does not."""
    assert python_3_9_refuses(
        "from typing import Optional, TypeGuard\nimport typing_extensions\n"
        "X: Optional[int] | None = None\n"
        "class C:\n    y: int | str\n"
        "def f(a: 'int | None', *b: int | None, c: Optional[int] = None, **d: int) -> 'C':\n"
        "    local: int | None = None\n"
        "def g(a: int) -> list[int] | None: ...\n") == [
        "typing.TypeGuard", "typing_extensions.*", "Optional[int] | None", "int | str", "int | None",
        "list[int] | None"]
    assert python_3_9_refuses(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from typing_extensions import TypeGuard\n"
        "def f(a: 'TypeGuard[int] | None') -> list[int]: ...\n") == []
    assert python_3_9_refuses("from __future__ import annotations\ndef f(a: int | None) -> None: ...\n") == []
