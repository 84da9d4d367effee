"""The ``xlsx`` format: an Office Open XML workbook written as a stream, one sheet per
dataset (and per part of one), its rows formatted by Postgres or, for handler rows,
by the same rules in Python."""
