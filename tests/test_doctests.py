"""The examples in the docstrings run and say what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import crosslens
from crosslens import kernel_side

MODULES = sorted(
    {info.name for info in pkgutil.walk_packages(kernel_side.__path__, "crosslens.kernel_side.")}
    | {f"crosslens.{info.name}" for info in pkgutil.iter_modules(crosslens.__path__) if info.name != "kernel_side"}
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
