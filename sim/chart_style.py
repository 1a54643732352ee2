"""One look for every chart capsim draws (the report's and the experiments'): colours per
operation, the matplotlib style, and figures drawn off-screen and saved at one resolution."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

OP_COLORS = {"send": "#1f77b4", "read": "#ff7f0e", "delivery": "#2ca02c"}
DPI = 110
STYLE = {"text.parse_math": False, "axes.grid": True, "axes.axisbelow": True, "grid.alpha": 0.3,
         "axes.titleweight": "bold", "axes.spines.top": False, "axes.spines.right": False,
         "font.size": 9.5}


@contextmanager
def figure(width_in: float, height_in: float) -> Iterator[Figure]:
    """A figure drawn with the Agg canvas (no display needed), in capsim's style."""
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with mpl.rc_context(STYLE):
        fig.savefig(path, dpi=DPI)
    return path
