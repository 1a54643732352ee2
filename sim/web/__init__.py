"""capsim serve: a local web app over the Python API (sim/web/app.py builds it; sim/web/runs.py
runs simulations off the request path; sim/web/knobs.py turns knobs into `--set` overrides)."""

from __future__ import annotations

from sim.web.app import create_app

__all__ = ["create_app"]
