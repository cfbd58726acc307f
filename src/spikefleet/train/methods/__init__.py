"""Training methods, one module each (teacher, bptt, ads, force, reservoir, dynapse2) on :mod:`.base`;
:mod:`spikefleet.train.registry` holds them by name."""
