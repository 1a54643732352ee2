"""The station-order engine (`--engine stations`, what `auto` picks for every scenario it runs),
issue 12's redesign: jobs move through the system component by component, each component's jobs
in station order, in chunks of time.

support.py  what it runs (feed-forward designs) and what it refuses, one line each
program.py  a design's flows as node tables, and the component order every flow follows
kernel.py   the compiled passes: group by station, serve in time order, move requests on, settle joins,
            mark marked requests' critical paths (the tail breakdown)
engine.py   the engine: arrivals, components in order chunk by chunk, bulk recording, the RunState

Why station order: the calendar (sim/calendar) takes events one at a time from a heap, so each
event touches a request's rows last seen thousands of events earlier (docs/PERFORMANCE.md, "Where
the loop's time goes"). Here a fleet's jobs for a chunk are grouped by station and served in one
sweep: a station's rows stay in the near caches for all its jobs, draws are made inside the loop,
and the stations of a fleet, independent within a chunk, are split between two threads.

It shares sim/arrays (the Kiefer-Wolfowitz `serve`, counter-based draws, the bulk recorder, the
tail breakdown's sums) with the calendar and imports no engine. The kernels' numba cache is kept by
sim/arrays.
"""

import sim.arrays  # noqa: F401 - sets the versioned numba cache before any kernel is compiled
