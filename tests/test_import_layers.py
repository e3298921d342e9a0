"""Every import runs down the layers of docs/architecture.md, and no modules import each other.

    ground      mmae_jax/errors.py (and the package face mmae_jax/__init__.py)
      ^
    data_prep   model          peers: neither imports the other (data_prep: mmae_jax.data_prep,
                               whose files are the repository's data_prep/ folder)
      ^
    config      the run spec: defaults, recipes, allowed values, the one validation
      ^
    data
      ^
    train   infer   convert    peers: none imports another (one named exception below)
      ^
    cli

The test reads the source (``ast``), so it sees every import: at the top of a module, inside a
function (the deferred imports that keep TensorFlow or torch out of a light command),
under ``if TYPE_CHECKING:``, ``importlib.import_module("...")`` with a constant name, and the
``"package.module:Name"`` strings that registries load with importlib.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
from pathlib import Path

from suite_map import PACKAGES, package_modules

ROOT = Path(__file__).resolve().parents[1]

# Module or package -> (layer, unit); a module belongs to the longest entry it is or lies under.
# Imports inside one unit are free; an import into another unit must go to a lower layer.
# A new folder of mmae_jax gets its row here (the test names any module without one).
LAYERS = {
    "mmae_jax.errors": 0,
    "mmae_jax.data_prep": 1,
    "mmae_jax.model": 1,
    "mmae_jax.config": 2,
    "mmae_jax.data": 3,
    "mmae_jax.train": 4,
    "mmae_jax.infer": 4,
    "mmae_jax.convert": 4,
    "mmae_jax.plan": 5,
    "mmae_jax.cli": 6,
}
PACKAGE_FACES = {"mmae_jax": 0}   # the package's __init__ alone (its version), not what lies under it

# (importing unit or module, imported unit) -> why it may cross between peers.
ALLOWED_ACROSS = {
    ("mmae_jax.convert.train_parity", "mmae_jax.train"):
        "the training parity check runs our train step beside VideoMAE's PyTorch recipe",
}


@dataclasses.dataclass(frozen=True)
class Import:
    importer: str     # dotted module name
    imported: str     # dotted module name (a module of PACKAGES)
    where: str        # "path/of/file.py:line", from the repository root
    type_only: bool   # under ``if TYPE_CHECKING:``
    by_name: bool     # a ``"module:Name"`` string, loaded when a registry entry is used


def modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of ``PACKAGES`` (by their folders) under ``root``."""
    return package_modules(root)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _named_modules(node: ast.AST, module: str, is_package: bool, known: dict[str, Path]) -> list[str]:
    """The modules of ``known`` an import statement, an ``import_module`` call or a
    ``"module:Name"`` string names (its longest known prefix: ``from a import b`` names module
    ``a.b`` when that is a module, else ``a``)."""
    names = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            anchor = package[:len(package) - node.level + 1]
            base = ".".join(anchor + ([node.module] if node.module else []))
        names = [f"{base}.{alias.name}" for alias in node.names]
    elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
          and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        names = [node.args[0].value]
    elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.count(":") == 1:
        target, _, attribute = node.value.partition(":")
        if attribute.isidentifier() and target.split(".")[0] in {name.split(".")[0] for name in PACKAGES}:
            names = [target]
    resolved = []
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            resolved.append(name)
    return list(dict.fromkeys(resolved))


def imports(root: Path = ROOT) -> list[Import]:
    """Every import of a module of ``PACKAGES`` by a module of ``PACKAGES`` under ``root``."""
    known = modules(root)
    found = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        type_only_nodes = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
                           and _is_type_checking(node.test) for stmt in node.body for inner in ast.walk(stmt)}
        for node in ast.walk(tree):
            for imported in _named_modules(node, module, path.name == "__init__.py", known):
                where = f"{path.relative_to(root)}:{node.lineno}"
                found.append(Import(module, imported, where, id(node) in type_only_nodes,
                                    isinstance(node, ast.Constant)))
    return found


def place(module: str) -> tuple[int, str] | None:
    """(layer, unit) of a module, None when ``LAYERS`` has no row for it."""
    if module in PACKAGE_FACES:
        return PACKAGE_FACES[module], module
    for unit in sorted(LAYERS, key=len, reverse=True):
        if module == unit or module.startswith(unit + "."):
            return LAYERS[unit], unit
    return None


def layer_violations(root: Path = ROOT) -> list[str]:
    """One line per import that runs up a layer or across peers, or of a module without a layer."""
    problems = [f"{module} ({path.relative_to(root)}) has no layer: add its package to LAYERS"
                for module, path in modules(root).items() if place(module) is None]
    for item in imports(root):
        if place(item.importer) is None or place(item.imported) is None:
            continue      # reported above
        (importer_layer, importer_unit), (imported_layer, imported_unit) = place(item.importer), place(item.imported)
        if importer_unit == imported_unit or imported_layer < importer_layer:
            continue
        if any((name, imported_unit) in ALLOWED_ACROSS for name in (item.importer, importer_unit)):
            continue
        direction = "up a layer" if imported_layer > importer_layer else "across peers"
        problems.append(f"{item.where}: {item.importer} (layer {importer_layer}) imports {item.imported} "
                        f"(layer {imported_layer}): {direction}")
    return problems


def import_circles(root: Path = ROOT) -> list[list[str]]:
    """The sets of modules that import each other, directly or around a circle (Tarjan's strongly
    connected components). Imports under ``if TYPE_CHECKING:`` never run and are left out, and so
    are ``"module:Name"`` strings: a registry names the modules that implement its entries, which
    import the registry's own types (train/tasks.py and its tasks)."""
    graph = {module: set() for module in modules(root)}
    for item in imports(root):
        if not (item.type_only or item.by_name):
            graph[item.importer].add(item.imported)
    counter, index, low, stack, on_stack, circles = itertools.count(), {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = next(counter)
        stack.append(node)
        on_stack.add(node)
        for child in sorted(graph[node]):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            members = []
            while not members or members[-1] != node:
                members.append(stack.pop())
                on_stack.discard(members[-1])
            if len(members) > 1:
                circles.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_every_import_runs_down_a_layer():
    problems = layer_violations()
    assert not problems, "imports that break the layers of docs/architecture.md:\n" + "\n".join(problems)


def test_no_modules_import_each_other():
    circles = import_circles()
    assert not circles, "import circles (move the shared part into a module both import):\n" + "\n".join(
        " <-> ".join(circle) for circle in circles)


def test_the_checks_see_deferred_typed_and_string_imports(tmp_path):
    """A planted tree: every kind of import the checks read is seen, and every rule fires."""
    files = {
        "mmae_jax/__init__.py": "",
        "mmae_jax/errors.py": "",
        "mmae_jax/model/__init__.py": "",
        "mmae_jax/model/io.py": "def load():\n    from mmae_jax.train import tasks\n",           # deferred, up
        "mmae_jax/model/kinds.py": "import importlib\nimportlib.import_module('mmae_jax.data_prep.a')\n",  # peer
        "mmae_jax/train/__init__.py": "",
        "mmae_jax/train/tasks.py": "KINDS = {'x': 'mmae_jax.cli.run:Command'}\n",                 # string, up
        "mmae_jax/cli/__init__.py": "",
        "mmae_jax/cli/run.py": "from mmae_jax.model import kinds\nfrom ..errors import *\n",       # down, relative
        "mmae_jax/extra/__init__.py": "",                                                          # no layer
        "data_prep/__init__.py": "",
        "data_prep/a.py": "from typing import TYPE_CHECKING\nfrom . import b\nif TYPE_CHECKING:\n"
                          "    from mmae_jax.data import x\n",                                     # typed, up
        "data_prep/b.py": "def f():\n    import mmae_jax.data_prep.a\n",                           # circle a <-> b
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "mmae_jax/data").mkdir()
    (tmp_path / "mmae_jax/data/__init__.py").write_text("")
    (tmp_path / "mmae_jax/data/x.py").write_text("")

    problems = layer_violations(tmp_path)
    assert any(line.startswith("mmae_jax/model/io.py:2: mmae_jax.model.io (layer 1) imports mmae_jax.train.tasks "
                               "(layer 4): up a layer") for line in problems), problems
    assert any("mmae_jax.model.kinds (layer 1) imports mmae_jax.data_prep.a (layer 1): across peers" in line
               for line in problems), problems
    assert any("mmae_jax.train.tasks (layer 4) imports mmae_jax.cli.run (layer 6): up a layer" in line
               for line in problems), problems
    assert any("mmae_jax.data_prep.a (layer 1) imports mmae_jax.data.x (layer 3): up a layer" in line
               for line in problems)
    assert any(line.startswith("mmae_jax.extra (mmae_jax/extra/__init__.py) has no layer") for line in problems)
    assert len(problems) == 5, problems                     # cli's imports run down: not flagged
    assert {(i.importer, i.imported) for i in imports(tmp_path) if i.importer == "mmae_jax.cli.run"} == {
        ("mmae_jax.cli.run", "mmae_jax.model.kinds"), ("mmae_jax.cli.run", "mmae_jax.errors")}
    assert import_circles(tmp_path) == [["mmae_jax.data_prep.a", "mmae_jax.data_prep.b"]]
