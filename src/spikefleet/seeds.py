"""Named random streams: every random draw derives from the user's seed and a stream number.

``seed_stream(seed, stream, index)`` is an independent 32-bit seed per ``(seed, stream, index)``
(NumPy ``SeedSequence``). The streams in use (one place, so no two uses collide):

======  ================================  ==========================================
stream  name                              used for
======  ================================  ==========================================
1       ``TRAIN``                         training trial/batch ``index``
2       ``VAL``                           validation trials
3       ``TEST``                          test trials (``spikefleet evaluate``)
4       ``ROBUST``                        chips/attacks of robust objectives
5       ``ADS_INIT``                      Network ADS decoder and initial potentials
6       ``GAIN_VAL``                      validation trials of the output-gain re-fit
7       ``GAIN_CHIPS``                    validation chips of the output-gain re-fit
8       ``RUN_NOISE``                     runtime noise during fleet evaluation
9       ``FORCE_INIT``                    FORCE network instance (weights, encoders, V[0])
10      ``RESERVOIR_INIT``                reservoir liquid (connectivity, time constants, V[0])
11      ``DYNAPSE2_INIT``                 DYNAP-SE2 network weights (Kaiming-uniform)
12      ``WEIGHT_NOISE``                  DYNAP-SE2 weight-noise injection during training
======  ================================  ==========================================

Chips themselves are ``split(PRNGKey(seed), n_chips)`` (:func:`spikefleet.fleet.chip.fleet_keys`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["seed_stream", "TRAIN", "VAL", "TEST", "ROBUST", "ADS_INIT", "GAIN_VAL", "GAIN_CHIPS", "RUN_NOISE",
           "FORCE_INIT", "RESERVOIR_INIT", "DYNAPSE2_INIT", "WEIGHT_NOISE"]

TRAIN, VAL, TEST, ROBUST, ADS_INIT, GAIN_VAL, GAIN_CHIPS, RUN_NOISE, FORCE_INIT = 1, 2, 3, 4, 5, 6, 7, 8, 9
RESERVOIR_INIT = 10
DYNAPSE2_INIT, WEIGHT_NOISE = 11, 12


def seed_stream(seed: int, stream: int, index: int = 0) -> int:
    """A 32-bit integer seed derived from ``(seed, stream, index)`` (independent streams)."""
    return int(np.random.SeedSequence([seed, stream, index]).generate_state(1)[0])
