"""Hardware back-ends of spikefleet (bias translation, configuration, runners)."""
