"""The load factor over time from a scenario's `load_spike` faults, for the array engines' arrivals."""

from __future__ import annotations

import numpy as np

from sim.scenario import Scenario


class Load:
    """The load factor over time, from the scenario's `load_spike` faults (overlapping spikes
    multiply, as in the DES): arrivals are drawn at the flow's base rate in "load time" s, where
    ds = factor(t) dt, and mapped back to t, which gives a Poisson stream of rate factor(t) x rate."""

    def __init__(self, scenario: Scenario) -> None:
        spikes = [(f.start_s, f.end_s, f.factor or 1.0) for f in scenario.faults if f.kind == "load_spike"]
        edges = sorted({0.0, *(a for a, _, _ in spikes), *(b for _, b, _ in spikes)})
        factor = [float(np.prod([x for a, b, x in spikes if a <= t < b])) for t in edges]
        self.t = np.array(edges)
        self.factor = np.array(factor)
        self.s = np.concatenate([[0.0], np.cumsum(np.diff(self.t) * self.factor[:-1])])

    def to_load(self, t: float) -> float:
        i = int(np.searchsorted(self.t, t, side="right")) - 1
        return float(self.s[i] + (t - self.t[i]) * self.factor[i])

    def to_time(self, s: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.s, s, side="right") - 1
        return self.t[i] + (s - self.s[i]) / self.factor[i]
