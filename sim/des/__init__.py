"""The discrete-event engine on SimPy: one object per real component, callbacks on the hot path."""
