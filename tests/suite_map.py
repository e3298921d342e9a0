"""Which test files exercise which module, and the speed class of each test file.

Two tables, kept by hand, and the functions that derive the rest and write tests/README.md:

- ``SPEED``: every ``tests/test_*.py`` -> ``unit`` / ``integration`` / ``slow``. tests/conftest.py
  marks each test that is not marked ``slow`` with its file's class, so ``pytest -m unit`` runs the
  quick layer. ``slow`` names a file whose every test carries ``@pytest.mark.slow``.
- ``INDIRECT``: module -> test files that exercise it without importing it (through a package's
  re-exports, a helper, or code that another module calls); each entry was checked by reading.

The rest is derived from the test files' syntax trees (``module_tests``): the modules a test file
imports (with those its helpers in tests/ import) and the ``mmae-jax`` subcommands it runs (in
process through ``main([...])`` or as ``python -m mmae_jax.cli ...``), each subcommand mapped to
the module under mmae_jax/cli that registers it.

Rewrite the map in tests/README.md after adding a test file or a module:
``python tests/suite_map.py``; tests/test_suite_map.py fails while the README is stale, a module
has no test file, or a test file has no class.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
# Package -> its folder in the repository (setup.py's package_dir: data_prep/ is mmae_jax.data_prep).
PACKAGES = {"mmae_jax": "mmae_jax", "mmae_jax.data_prep": "data_prep"}
README = TESTS / "README.md"
BEGIN, END = "<!-- suite map: written by `python tests/suite_map.py` -->", "<!-- end of suite map -->"

# unit: functions on small in-memory arrays, configs and files of a few bytes; refusals that stop
#   before anything is built or trained.
# integration: builds a dataset, reads the stored TFRecords, writes or decodes real media files,
#   runs training or evaluation steps for real (Trainer, `mmae-jax train`), runs models in
#   PyTorch for parity, or spawns a subprocess. A file is integration when any of its tests is.
# slow: every test of the file is marked slow (subprocess training, notebooks, wheels, Beam, AOT).
SPEED = {
    "test_attention_kernels.py": "unit",
    "test_build_determinism.py": "integration",
    "test_augment.py": "unit",
    "test_benchmarks.py": "unit",                 # its report tests are slow
    "test_cfas_resize.py": "unit",
    "test_checkpoint_ref.py": "integration",
    "test_cli_outputs.py": "integration",
    "test_colab.py": "unit",                      # the notebook runs are slow
    "test_compiled_step.py": "slow",
    "test_convert.py": "integration",
    "test_convert_errors.py": "unit",
    "test_data_prep_builders.py": "integration",
    "test_data_prep_media.py": "integration",
    "test_data_prep_paper.py": "integration",
    "test_data_prep_protocols.py": "unit",
    "test_data_prep_synthetic.py": "integration",
    "test_data_prep_videos.py": "integration",
    "test_export.py": "integration",
    "test_export_step.py": "slow",
    "test_fault_matrix.py": "integration",
    "test_fusion.py": "unit",
    "test_fusion_beats_single_modality.py": "slow",
    "test_import_layers.py": "unit",
    "test_logs.py": "integration",
    "test_mesh.py": "unit",
    "test_model.py": "unit",
    "test_multihost_guards.py": "slow",
    "test_notebook_archive.py": "integration",
    "test_notebook_layout.py": "unit",
    "test_optimizer.py": "unit",
    "test_packaging.py": "integration",           # the wheel and sdist tests are slow
    "test_paper_backbone.py": "unit",
    "test_paper_stereo_mfcc.py": "integration",
    "test_pipeline.py": "integration",
    "test_plan.py": "unit",
    "test_plan_compile.py": "slow",
    "test_plots.py": "unit",
    "test_predict.py": "integration",
    "test_prepare_guards.py": "integration",
    "test_prepare_nothing_readable.py": "integration",
    "test_pretrain.py": "integration",
    "test_recipes.py": "integration",
    "test_reliability.py": "integration",
    "test_rotation.py": "integration",
    "test_run_spec.py": "unit",
    "test_scaling_table.py": "unit",             # benchmarks/scaling.py bookkeeping, no compile
    "test_scan_blocks.py": "unit",
    "test_split_files.py": "integration",
    "test_step_metrics.py": "unit",
    "test_suite_map.py": "unit",
    "test_sweep.py": "unit",
    "test_tasks.py": "integration",
    "test_train.py": "integration",
    "test_train_distributed.py": "slow",
    "test_train_parity.py": "integration",
    "test_transform.py": "unit",
    "test_user_errors.py": "integration",
    "test_xdist_groups.py": "slow",
}
CLASSES = ("unit", "integration", "slow")

INDIRECT: dict[str, tuple[str, ...]] = {
    "mmae_jax": ("test_cli_outputs.py",),                                  # __version__ behind --version
    "mmae_jax.cli.__main__": ("test_cli_outputs.py", "test_multihost_guards.py", "test_plan_compile.py",
                              "test_train_distributed.py", "test_fusion_beats_single_modality.py"),  # python -m mmae_jax.cli
    "mmae_jax.cli.arguments": ("test_convert.py", "test_export.py", "test_predict.py",  # the commands' shared flags
                               "test_checkpoint_ref.py"),
    "mmae_jax.config.args": ("test_run_spec.py", "test_cli_outputs.py"),   # --config NAME:ARGS through recipes
    "mmae_jax.config.names": ("test_run_spec.py", "test_recipes.py"),
    "mmae_jax.convert.families": ("test_convert.py", "test_export.py"),
    "mmae_jax.convert.name_map": ("test_convert.py", "test_export.py", "test_train_parity.py"),
    "mmae_jax.data.clip_layout": ("test_notebook_layout.py", "test_pipeline.py", "test_transform.py"),
    "mmae_jax.data.notebook_archive": ("test_notebook_archive.py",),       # through `mmae-jax splits` / split files
    "mmae_jax.data.sharding": ("test_pipeline.py",),                       # two-process evaluation reading
    "mmae_jax.infer.explain_plot": ("test_predict.py",),                   # `predict --explain`
    "mmae_jax.model.encoder": ("test_model.py", "test_paper_backbone.py", "test_convert.py"),  # re-exported by mmae_jax.model
    "mmae_jax.model.block_scan": ("test_scan_blocks.py",),                 # layers.apply_blocks(scan=True)
    "mmae_jax.model.location": ("test_export.py", "test_predict.py", "test_user_errors.py"),
    "mmae_jax.plan.compile": ("test_plan_compile.py",),                    # `mmae-jax plan` in the AOT environment
    "mmae_jax.plan.report": ("test_plan_compile.py",),
    "mmae_jax.plan.step_plan": ("test_plan_compile.py",),
    "mmae_jax.data_prep.crema_d.crema_d_dataset_builder": ("test_data_prep_builders.py",),  # through its registry
    "mmae_jax.data_prep.iemocap.annotations": ("test_data_prep_builders.py",),
    "mmae_jax.data_prep.iemocap.iemocap_dataset_builder": ("test_data_prep_builders.py",),
    "mmae_jax.data_prep.parallel": ("test_data_prep_builders.py", "test_data_prep_synthetic.py"),
    "mmae_jax.data_prep.ravdess.layout": ("test_data_prep_builders.py", "test_data_prep_paper.py",
                                          "test_data_prep_synthetic.py"),
    "mmae_jax.data_prep.ravdess.ravdess_dataset_builder": ("test_data_prep_builders.py", "test_data_prep_paper.py",
                                                           "test_paper_stereo_mfcc.py"),
    "mmae_jax.data_prep.videos.videos_dataset_builder": ("test_data_prep_videos.py",),
}


def module_name(path: Path, root: Path = ROOT) -> str:
    """``mmae_jax/data/fusion.py`` -> ``mmae_jax.data.fusion``, ``data_prep/media/clip.py`` ->
    ``mmae_jax.data_prep.media.clip``; a package's __init__ -> the package."""
    parts = path.relative_to(root).with_suffix("").parts
    package = next(name for name, folder in PACKAGES.items() if folder == parts[0])
    return ".".join((package, *parts[1:])).removesuffix(".__init__")


def package_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the packages under ``root``, by dotted name."""
    return {module_name(p, root): p for folder in PACKAGES.values() for p in sorted((root / folder).rglob("*.py"))}


def test_files() -> list[Path]:
    return sorted(TESTS.glob("test_*.py"))


def is_docstring_only(path: Path) -> bool:
    """A module with nothing but its docstring (a package's __init__ that only describes it)."""
    body = ast.parse(path.read_text()).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def imported_modules(path: Path, known: dict[str, Path]) -> set[str]:
    """Absolute imports anywhere in ``path`` (deferred ones included). ``from pkg import name``
    counts as ``pkg.name`` when that is a module, else as ``pkg``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = {f"{node.module}.{alias.name}" for alias in node.names}
            found |= names & set(known)
            if not names <= set(known):
                found.add(node.module)
    return found


def subcommand_modules() -> dict[str, str]:
    """``mmae-jax`` subcommand -> the module under mmae_jax/cli whose ``register`` adds its parser."""
    table = {}
    for path in sorted((ROOT / "mmae_jax" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            # subparsers.add_parser("name", ...) or the module's helper add_command(subparsers, "name", ...)
            if not isinstance(node, ast.Call):
                continue
            called = getattr(node.func, "attr", getattr(node.func, "id", None))
            names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if called in ("add_parser", "add_command") and names:
                table[names[0]] = module_name(path)
    return table


def _strings(node: ast.AST) -> list:
    return [e.value if isinstance(e, ast.Constant) else None for e in getattr(node, "elts", [])]


def commands_run(path: Path, subcommands: dict[str, str]) -> set[str]:
    """Subcommands ``path`` runs: ``main(["train", ...])`` and ``[..., "mmae_jax.cli", "train", ...]``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and node.args:
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            first = _strings(node.args[0])[:1]
            if name == "main" and first and first[0] in subcommands:
                found.add(first[0])
        if isinstance(node, ast.List):
            items = _strings(node)
            for before, after in zip(items, items[1:]):
                if before == "mmae_jax.cli" and after in subcommands:
                    found.add(after)
    return found


def module_tests() -> dict[str, list[str]]:
    """Module -> the test files that exercise it (imports, subcommands run, ``INDIRECT``)."""
    known = package_modules()
    helpers = {p.stem: imported_modules(p, known) for p in TESTS.glob("*.py") if not p.name.startswith("test_")}
    subcommands = subcommand_modules()
    found: dict[str, set[str]] = {name: set() for name in known}
    for test in test_files():
        names = imported_modules(test, known)
        for helper in names & set(helpers):
            names |= helpers[helper]
        names |= {subcommands[c] for c in commands_run(test, subcommands)}
        for name in names & set(known):
            found[name].add(test.name)
    for name, tests in INDIRECT.items():
        found.setdefault(name, set()).update(tests)
    return {name: sorted(tests) for name, tests in found.items()}


def slow_counts(path: Path) -> tuple[int, int]:
    """(tests marked slow, test functions) of a test file, counted in its source."""
    tree = ast.parse(path.read_text())
    file_slow = any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in n.targets)
                    and "slow" in ast.unparse(n.value) for n in tree.body)
    tests = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    slow = [t for t in tests if file_slow or any("slow" in ast.unparse(d) for d in t.decorator_list)]
    return len(slow), len(tests)


def render() -> str:
    """The map's markdown: one table per package (module -> test files), then the test files."""
    known = package_modules()
    tests = module_tests()
    groups: dict[str, list[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        groups.setdefault(package, []).append(name)
    out = []
    for package, names in sorted(groups.items()):
        out += [f"### `{package}`", "", "| module | test files |", "|---|---|"]
        for name in names:
            cell = ", ".join(f"[{t}]({t})" for t in tests[name])
            if not cell:
                cell = "(docstring only)" if is_docstring_only(known[name]) else "**none**"
            out.append(f"| `{known[name].relative_to(ROOT).as_posix()}` | {cell} |")
        out.append("")
    out += ["### Test files", "", "| test file | class | tests marked slow |", "|---|---|---|"]
    for test in test_files():
        slow, total = slow_counts(test)
        out.append(f"| [{test.name}]({test.name}) | {SPEED.get(test.name, '**unclassified**')} | {slow} of {total} |")
    return "\n".join(out) + "\n"


def readme_with_map(text: str) -> str:
    """``text`` with the part between the map's markers replaced by ``render()``."""
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise ValueError(f"{README}: the markers {BEGIN!r} and {END!r} are missing")
    return f"{head}{BEGIN}\n{render()}{END}{tail}"


if __name__ == "__main__":
    README.write_text(readme_with_map(README.read_text()))
    print(f"wrote {README.relative_to(ROOT)}", file=sys.stderr)
