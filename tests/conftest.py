"""Shared pytest configuration for crosslens tests. Keep this small."""

from __future__ import annotations

import pytest
import torch

from _browser import lab, page  # noqa: F401  (the real-browser fixtures, shared by every browser test)
from crosslens import kernel_side as ks


@pytest.fixture(scope="module")
def digits():
    """The fixed digits split: (x_train, y_train, x_test, y_test), loaded once per module."""
    return ks.load_digits_split()


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module (given back after): thousands of small ops run fastest
    so, and on a busy 2-core machine two threads made such modules 10x slower (each parallel op
    waited ~4 ms for the other). Use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Expose each phase's report on the item (item.rep_setup / rep_call / rep_teardown),
    # so fixtures can act on failure (e.g. the browser test saves a screenshot).
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep
