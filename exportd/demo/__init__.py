"""Demo data and definitions used by ``exportd dev``."""
