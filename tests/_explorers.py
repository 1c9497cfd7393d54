"""Checks of the protocol every explorer shares (crosslens._explorer.Explorer), for its tests."""

from __future__ import annotations

import pytest
import traitlets


def assert_bad_targets_refused(explorer, row: int) -> None:
    """Bad targets for input ``row`` (selected) raise a clear error, from Python or from the view,
    and change nothing: not the payload, not the requested target, not the busy state."""
    explorer.index = row
    payload, target = explorer.payload, explorer.target
    with pytest.raises(ValueError, match=r"target must be None or a class index in \[0, 9\], got 99"):
        explorer.target = 99
    with pytest.raises(ValueError, match=f"target must differ from the predicted class of input {row}"):
        explorer.target = int(explorer.predicted[row])
    with pytest.raises(traitlets.TraitError, match="target"):
        explorer.target = "3"
    assert explorer.payload is payload and explorer.target == target and not explorer.busy
    errors, replies = [], []
    explorer.observe(lambda change: errors.append(change["new"]), "error")
    explorer.send = replies.append
    explorer._on_custom_msg(explorer, {"event": "target", "index": row, "target": 42}, [])  # from the view
    assert "target" in errors[0] and explorer.target == target and replies == [{"event": "target-done"}]
    explorer.set_trait("error", "")
    del explorer.send
