"""Processors, the municipal adapter, the synthetic register and the `bcl` command line."""
