"""Job options: how a job's file is written (time zone, columns, CSV dialect, JSON
numbers, split parts), beside what it holds (its params). The model is
``exportd.definitions.options.model``."""
