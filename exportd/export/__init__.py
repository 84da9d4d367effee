"""The export engine: one claimed job read from its sources and streamed, in its
format, into an object. Never imports the worker, the API, the CLI, the daemon or
maintenance.
"""
