"""The ``spikefleet`` command line: thin commands over library calls (``spikefleet --help``)."""

from spikefleet.cli.main import main

__all__ = ["main"]
