"""The experiment engine: experiment files (spec), units and their cost (units), local and Ray backends, the
SQLite result store, the one summary of results pooled over seeds, and the HTML report. Studies live in
:mod:`spikefleet.studies`; the command line in :mod:`spikefleet.cli`."""
