"""Shared pytest configuration for crosslens tests. Keep this small."""

from __future__ import annotations

import pytest

from _browser import lab, page  # noqa: F401  (the real-browser fixtures, shared by every browser test)
from crosslens import kernel_side as ks


@pytest.fixture(scope="module")
def digits():
    """The fixed digits split: (x_train, y_train, x_test, y_test), loaded once per module."""
    return ks.load_digits_split()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Expose each phase's report on the item (item.rep_setup / rep_call / rep_teardown),
    # so fixtures can act on failure (e.g. the browser test saves a screenshot).
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep
