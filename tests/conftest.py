"""Fixtures shared by the test files.

``data_dir``: the tiny stored dataset of ``stored_dataset.write_stored_dataset`` (48 clips of
12 speakers, 4 classes), written once per session; under pytest-xdist once per worker. Tests
read it and never write into it. ``stored_dataset.tiny_config`` / ``tiny_flags`` give the
experiment config that trains on it.
"""

import pytest

from stored_dataset import write_stored_dataset


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfds")
    write_stored_dataset(path)
    return path
