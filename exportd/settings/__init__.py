"""Settings: the ``EXPORTD_*`` environment read into one validated model.

- ``model``: ``Settings``, every setting with the reason it exists, and ``SettingsError``;
- ``environment``: ``load_settings``, which reads the environment and an optional ``.env``.
"""
