"""Training methods: gradient recipes and robust objectives, Network ADS, FORCE, the reservoir baseline,
the DYNAP-SE2 recipe, and the high-level calls the command line uses (:mod:`.api`)."""
