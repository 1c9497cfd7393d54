"""The colours every view and every static figure use, defined once.

They travel to the browser in each payload's metadata (``meta["palette"]``), where
``crosslens.explorer`` turns them into CSS custom properties and colour maps, and
``to_figure`` draws with the same values, so a saved figure looks like the live view.
"""

from __future__ import annotations

__all__ = ["CLASS_COLORS", "PALETTE", "SOURCE_COLOR", "TARGET_COLOR", "colormap"]

# Categorical class colours (Tableau 10): readable on light and dark backgrounds.
CLASS_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]
# The predicted class of the input and the class it is asked to become (the views use the
# theme's brand and warning colours where the theme defines them).
SOURCE_COLOR, TARGET_COLOR = "#1976d2", "#ef6c00"
PALETTE = {
    "classes": CLASS_COLORS,
    "source": SOURCE_COLOR,
    "target": TARGET_COLOR,
    # Signed maps: ColorBrewer RdBu reversed, negative blue, zero white, positive red.
    "diverging": ["#2166ac", "#67a9cf", "#d1e5f0", "#f7f7f7", "#fddbc7", "#ef8a62", "#b2182b"],
    # Magnitudes: magma reversed, starting at white, so zero is white.
    "sequential": ["#ffffff", "#fcfdbf", "#fe9f6d", "#de4968", "#8c2981", "#3b0f70"],
    # One colour per method: the counterfactual explorer's search spaces; the attribution
    # explorer's methods, each S-method a light tint of its D-method's hue (Tableau 20).
    "methods": {
        "latent": "#00897b", "pixel": "#ab47bc",
        "ig": "#a0cbe8", "d_ig": "#4e79a7", "ingrad": "#ffbe7d", "d_ingrad": "#f28e2b", "dl": "#8cd17d",
        "d_dl": "#59a14f", "gc": "#d4a6c8", "d_gc": "#b07aa1", "random": "#bab0ac", "residual": "#9c755f",
    },
}


def colormap(name: str):
    """The matplotlib colormap of ``PALETTE[name]`` ("diverging" or "sequential")."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(f"crosslens-{name}", PALETTE[name])
