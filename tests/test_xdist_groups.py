"""``--dist loadgroup`` keeps every test of an ``xdist_group`` on one worker (tests/conftest.py),
checked on a planted test file run by two workers."""

import os
import re
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

PLANTED = textwrap.dedent("""
    import pytest

    @pytest.mark.xdist_group("first")
    @pytest.mark.parametrize("i", range(6))
    def test_first(i):
        pass

    @pytest.mark.xdist_group(name="second")
    @pytest.mark.parametrize("i", range(6))
    def test_second(i):
        pass

    @pytest.mark.parametrize("i", range(8))
    def test_free(i):
        pass
""")


@pytest.mark.slow
def test_each_group_runs_on_one_worker_and_the_rest_on_both(tmp_path):
    (tmp_path / "test_planted.py").write_text(PLANTED)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conftest", "-n", "2",
                          "--dist", "loadgroup", "-v", "--rootdir", str(tmp_path), str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    workers = defaultdict(set)
    for worker, test in re.findall(r"\[(gw\d)\].*PASSED.*::(test_\w+)\[", run.stdout):
        workers[test].add(worker)
    assert sum(line.count("PASSED") for line in run.stdout.splitlines()) == 20, run.stdout[-3000:]
    assert len(workers["test_first"]) == 1 and len(workers["test_second"]) == 1, dict(workers)
    assert workers["test_free"] == {"gw0", "gw1"}, dict(workers)
