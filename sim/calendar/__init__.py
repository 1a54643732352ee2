"""The calendar engine (`--engine calendar`, what `auto` picks for nearly every scenario): the
system's flows (sim/system) run on one compiled event loop, every request, in time order.

engine.py      the engine: builds the program, runs the kernel chunk by chunk, records the outcomes
pools.py       the kernel's pools, heap, worklist and outputs, grown when it asks
arrivals.py    client arrivals: Poisson streams in blocks, load spikes, the requests' keys, a chunk's
program.py     the system as flat tables: nodes of the flows, components, routes, distributions
kernel.py      the event loop: stations served on arrival, frames along flows, joins, quorums, Kafka
tables.py      the kernel's event kinds, pool columns and small compiled operations on them
consumers.py   Kafka consumer groups: who takes which record, and when
cassandra.py   Cassandra's hints, hedged reads and sole copies (the writes a lost disk loses)
edges.py       resilience policies: edge parameters, counters, circuit breakers
support.py     what the engine cannot run yet, each refused in one line

The kernels' numba cache is kept by sim/arrays (keyed by the sources of every compiled package).

Every kernel here (and sim/arrays/station.py's) is compiled with `_nrt=False`, numba's reference
counting off (a private option that numba's own tests use; pyproject.toml bounds numba's version).
They allocate nothing (the engine hands them every array; an allocation would not compile), so
nothing needs counting, and each call stops paying an atomic increment and decrement for every
array it takes: 15% of the loop's time at full scale (378 -> 326 ns per event on the 2-vCPU box).
"""

import sim.arrays  # noqa: F401 - sets the versioned numba cache before any kernel is compiled
