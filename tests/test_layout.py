"""The package's shape: a one-way import graph, no reads of the checkout, short functions, and a wheel that runs alone."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "silentspeech"
#: The one module that reads files beside itself: the C templates of the GAP9 export (package data).
READS_BESIDE_ITSELF = {"silentspeech/export/c_codegen.py"}
#: Longest function body (lines, docstring included) allowed without a reason in its docstring.
LONGEST_FUNCTION = 80
#: Marker a longer function's docstring carries before the reason it is one piece.
LONG_REASON = "Long because"


def package_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in its body: lazy imports count)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_import_graph_has_no_cycles():
    modules = package_modules()
    graph = import_graph(modules)
    assert sum(len(targets) for targets in graph.values()) > len(modules)  # the parser sees the imports
    assert import_cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_file_path_imports_and_no_reads_of_the_checkout():
    beside_itself, path_imports = set(), []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        relative = path.relative_to(REPO).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "__file__":
                beside_itself.add(relative)
            if isinstance(node, ast.Attribute) and node.attr in ("spec_from_file_location", "SourceFileLoader"):
                path_imports.append(f"{relative}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) and node.value.id == "sys":
                path_imports.append(f"{relative}:{node.lineno} (sys.path)")
    assert path_imports == []
    assert beside_itself <= READS_BESIDE_ITSELF


def test_data_files_the_package_reads_are_package_data():
    """The C templates (read beside c_codegen.py) and the grammar's word lists (read with importlib.resources) ship in the wheel."""
    from silentspeech.data.synthetic.language import WORDS_FILE
    from silentspeech.export.c_codegen import TEMPLATES

    setup = (REPO / "setup.py").read_text()
    assert TEMPLATES.parent == PACKAGE / "export" and any(TEMPLATES.iterdir())
    assert {path.suffix for path in TEMPLATES.iterdir()} <= {".c", ".h"}
    assert '"silentspeech.export.c_templates": ["*.c", "*.h"]' in setup
    assert (PACKAGE / "data" / "synthetic" / WORDS_FILE).is_file()
    assert f'"silentspeech.data.synthetic": ["{WORDS_FILE}"]' in setup


def test_long_functions_give_their_reason():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST_FUNCTION and LONG_REASON not in (ast.get_docstring(node) or ""):
                    too_long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert too_long == []


def test_readme_architecture_table_names_every_module_by_its_real_path():
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([\w./]+/[\w.]*)`", section))
    assert named, "no paths found in README's Architecture section"
    assert sorted(p for p in named if not (REPO / p).exists()) == []
    modules = [p.relative_to(REPO).as_posix() for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent == PACKAGE / "tasks"]
    folders = {p for p in named if p.endswith("/")}
    unnamed = [m for m in modules if m not in named and not any(m.startswith(f) for f in folders) and m != "silentspeech/__init__.py"]
    assert sorted(unnamed) == []


@pytest.mark.slow
def test_wheel_runs_the_quickstart_without_the_checkout(tmp_path):
    """Build the wheel, install it alone into a folder, and run the quickstart's first stages from elsewhere.

    Only that folder and the installed dependencies (the running
    interpreter's site-packages, without its .pth files: ``-S``, so that an
    editable install of a checkout cannot answer) are on the path; the
    build copies the sources first so the checkout gets no build folders.
    """
    pytest.importorskip("setuptools", reason="building the wheel offline (no build isolation) needs setuptools installed")
    source = tmp_path / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in ("silentspeech", "recipes", "vocoder"):
        shutil.copytree(REPO / folder, source / folder, ignore=ignore)
    for file in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / file, source / file)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    build = ["wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)]
    subprocess.run([*pip, *build], check=True, capture_output=True, text=True)
    (wheel,) = (tmp_path / "dist").glob("silentspeech-*.whl")
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True, text=True)

    dependencies = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), *sorted(dependencies)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str) -> str:
        result = subprocess.run([sys.executable, "-S", *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    where = run("-c", "import silentspeech, silentspeech.config as c; print(silentspeech.__file__); print(c.bundled_recipe('vocoder/small.yaml'))")
    assert all(Path(line).is_relative_to(site) for line in where.split()), where
    assert "--stages" in run("-m", "silentspeech", "quickstart", "--help")
    out = tmp_path / "quickstart"
    run("-m", "silentspeech", "quickstart", "--out", str(out), "--utterances", "12", "--stages", "corpus,cache", "--workers", "0")
    assert (out / "cache" / "manifest.json").is_file()
