"""The HTTP API: routes, request parsing, middleware, the OpenAPI document and the job view.

It reaches jobs only through the queue (``PgJobStore``); of the export package it
reads only the key layout.
"""
