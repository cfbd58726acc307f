"""The installed version of spikefleet."""

#: the package version (PEP 440), also ``spikefleet --version``
__version__ = "0.1.0"
