"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest

from tinyset import check_tiny_untouched, tiny_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The ``tiny`` preset's dataset, generated once per session; must stay untouched."""
    path = tiny_dataset(tmp_path_factory)
    yield path
    check_tiny_untouched()
