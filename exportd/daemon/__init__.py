"""``exportd run``: the parts assembled into one process, with systemd and health loops."""
