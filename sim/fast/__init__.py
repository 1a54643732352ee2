"""The fast engine: every request of the full fleet with arrays instead of events (`--engine fast`).

engine.py      the engine: wires the stages, chunk by chunk (the flows of sim/des/engine.py)
system.py      the system built once from a scenario: fleets, stations, placement, kernels' parameters
flight.py      a run in flight: request tables, jobs waiting at each fleet, counters
requests.py    arrivals become request rows; token buckets; the first hop
front.py       the gateway and message-service fleets, and their balancers
steps.py       a send's and a read's storage steps, and the Redis-Cassandra cycle
delivery.py    Kafka's produce cycle, the consumers' gates, the group service's inbox fan-out
outcomes.py    acknowledgements, recording, compaction
finish.py      the run's RunState
sources.py     send and read arrival times
order.py       jobs in (station, time) order, cheaply
fleet.py       one pass of a feed-forward fleet over a chunk
slices.py      the one slice-merge kernel, for fleets that feed back into themselves
kafka.py       leader and follower appends, commits (on the slice kernel)
storage.py     Redis and Cassandra: appends, GETs, fills, writes, reads, inbox writes (on the slice kernel)
joins.py       the joins of the storage replies: k-of-n writes, inbox writes
consumers.py   the consumers' backlog (lag in messages)
tables.py      request rows and job lists
support.py     scenario features the fast engine refuses

Shared with the calendar engine, in sim/arrays/: station.py (a FIFO multi-server station as the
Kiefer-Wolfowitz recursion, with capacity windows), rng.py (counter-based random numbers),
record.py (recording for sim/result.py), windows.py (faults as capacity windows), placement.py
(ring, hash slots, partitions, group members, popularity, token buckets).
"""

import sim.arrays  # noqa: F401 - sets the versioned numba cache before any kernel is compiled
