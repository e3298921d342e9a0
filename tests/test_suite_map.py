"""tests/README.md's map stays true: every module of mmae_jax/ and data_prep/ has test files,
every test file named exists and has a speed class, and the README shows what
tests/suite_map.py derives today."""

from pathlib import Path

import suite_map


def test_every_module_has_a_row_with_test_files():
    tests = suite_map.module_tests()
    untested = [name for name, path in suite_map.package_modules().items()
                if not tests.get(name) and not suite_map.is_docstring_only(path)]
    assert not untested, f"modules no test file exercises (add the test, or its file to INDIRECT): {untested}"


def test_every_named_test_file_and_module_exists():
    known = suite_map.package_modules()
    assert not set(suite_map.INDIRECT) - set(known), "INDIRECT names modules that do not exist"
    named = {test for tests in suite_map.INDIRECT.values() for test in tests} | set(suite_map.SPEED)
    missing = sorted(test for test in named if not (suite_map.TESTS / test).is_file())
    assert not missing, f"test files named in tests/suite_map.py that do not exist: {missing}"


def test_every_test_file_has_a_speed_class_and_slow_files_are_slow():
    files = {path.name: path for path in suite_map.test_files()}
    assert not set(files) - set(suite_map.SPEED), "test files without a class in suite_map.SPEED"
    assert set(suite_map.SPEED.values()) <= set(suite_map.CLASSES)
    for name, speed in suite_map.SPEED.items():
        slow, total = suite_map.slow_counts(files[name])
        assert (speed == "slow") == (slow == total > 0), (
            f"{name}: class {speed!r} but {slow} of its {total} tests are marked slow")


def test_the_derivation_sees_imports_helpers_and_commands(tmp_path):
    known = suite_map.package_modules()
    planted = tmp_path / "test_planted.py"
    planted.write_text("from mmae_jax.data import fusion\nfrom mmae_jax.model import VideoMAEConfig\n"
                       "def test_x():\n    import mmae_jax.data_prep.registry\n    main(['prepare', 'x'])\n"
                       "    run([sys.executable, '-m', 'mmae_jax.cli', 'kfold'])\n")
    assert suite_map.imported_modules(planted, known) == {"mmae_jax.data.fusion", "mmae_jax.model",
                                                          "mmae_jax.data_prep.registry"}
    subcommands = suite_map.subcommand_modules()
    assert suite_map.commands_run(planted, subcommands) == {"prepare", "kfold"}
    assert subcommands["kfold"] == "mmae_jax.cli.sweep" and subcommands["model-info"] == "mmae_jax.cli.model_info"


def test_the_readme_shows_the_current_map():
    readme = suite_map.README.read_text()
    assert readme == suite_map.readme_with_map(readme), "tests/README.md is stale: run python tests/suite_map.py"
