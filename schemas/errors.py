"""The root of the project's exceptions. Each area defines a small hierarchy under it; the CLI
maps them to a message and an exit code in one place (streams/cli.py)."""


class BclError(Exception):
    """Something the user or operator can act on; the message says what was wrong."""
