"""The foundation: files written atomically and read safely, run folders with their one-writer locks,
repository paths, presets (smoke / quick / paper), provenance, the compute device, saving figures and
running notebooks. Uses nothing else in ``src``."""
