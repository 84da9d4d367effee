"""The ``exportd`` command line: argument parsing, the verbs, and ``exportd dev``."""
