"""Training machinery: in-memory data, the loop, run records, trackers, config checks."""
