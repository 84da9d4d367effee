"""The operator's dashboard, ``GET /ui/``: server-rendered pages over the queue's
interface, served by the daemon itself (``exportd.ui.app``).

- ``tokens``, ``sessions``, ``throttle``: who may log in and how a session is
  kept (pure);
- ``auth``: login, sessions, CSRF and security headers;
- ``pages``, ``actions``, ``live``: what the dashboard shows and does;
- ``present``, ``charts``, ``filters``: numbers, the chart and the jobs
  filters (pure); ``render``: templates (``templates/``) and assets (``static/``).
"""
