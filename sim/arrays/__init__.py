"""Compiled array primitives the array engines share (sim/fast, sim/calendar): FIFO multi-server
stations served on arrival (station.py), counter-based random numbers (rng.py), bulk recording in
the shapes sim/result.py reads (record.py), and faults as stations' capacity windows (windows.py).
Neither engine owns them; no engine is imported here."""
