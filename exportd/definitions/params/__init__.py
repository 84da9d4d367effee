"""A kind's typed parameters: their specs, how their values are read and checked, how
operators declare them in TOML, and how they are described to Postgres and to clients.

- ``spec``: ParamType, ParamSpec, and the errors a job's params can have;
- ``values``: one value of each type read from JSON or text, and written back;
- ``validation``: a job's whole params checked against its kind's specs;
- ``declarations``: a ``[kinds.<kind>.params.<name>]`` table turned into a ParamSpec;
- ``schema``: the Postgres cast and the JSON Schema of a declared parameter, and the
  value ``exportd check`` binds for it.
"""
