"""The one exception type a user sees: the CLI prints it as a single line and exits 2."""

__all__ = ["DfsweepError"]


class DfsweepError(Exception):
    """Bad input from the user (config, data, model file). Printed as `dfsweep: error: <msg>`."""
