"""The fast engine: every request of the full fleet with arrays instead of events (`--engine fast`).

engine.py      chunks of time, fleet by fleet: the flows of sim/des/engine.py
sources.py     send and read arrivals
station.py     a FIFO multi-server station as the Kiefer-Wolfowitz recursion (+ capacity windows)
order.py       jobs in (station, time) order, cheaply
fleet.py       one pass of a feed-forward fleet over a chunk
slices.py      time slices for fleets that feed back into themselves
kafka.py       leader and follower appends, commits
consumers.py   the consumers' backlog (lag in messages)
storage.py     Redis and Cassandra: appends, GETs, fills, writes, reads, inbox writes, joins
placement.py   the ring, hash slots, partitions, group members, popularity, token buckets
rng.py         counter-based random numbers and distributions
tables.py      request rows and job lists
record.py      counters, histograms, windows and fleet views for sim/result.py
faults.py      slow nodes and GC pauses as capacity windows
support.py     scenario features the fast engine refuses
"""
