"""Training: the generic fit loop (:mod:`.loop`), robust objectives (:mod:`.objectives`), the
gradient recipes (:mod:`.gradient`), Network ADS, FORCE, the reservoir and the DYNAP-SE2 recipe,
the training methods on top of them (:mod:`.methods`, by name in :mod:`.registry`), per-task
recipes (:mod:`.presets`) and the train-and-test entry point (:mod:`.design`)."""
