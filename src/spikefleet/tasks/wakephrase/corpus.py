"""What every source of the wake-phrase corpus shares (synthetic generator and WAV folders): the split codes,
the sample length, the corpus record and the target bump (the substitute target signal of Büchel et al. 2021's
Hey Snips task: a smooth bump after the end of the wake phrase; see the wake-phrase docs page)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.interpolate import PchipInterpolator

__all__ = ["SPLITS", "T_STEPS", "Corpus", "target_bump"]

#: split name -> the code mixed into every sample's seed
SPLITS = {"train": 1, "validation": 2, "test": 3}
#: time steps of one 5 s sample at dt = 1 ms
T_STEPS = 5000
_BUMP = PchipInterpolator([0.0, 0.45, 0.95, 1.35, 1.75, 2.0], [0.0, 1.0, 0.51, 0.16, 0.045, 0.0])


def target_bump(t_rel) -> np.ndarray:
    """Target as a function of ``t − t_end`` (s): PCHIP bump, 0 outside ``[0, 2]`` s."""
    t = np.asarray(t_rel, np.float64)
    return np.where((t >= 0) & (t <= 2.0), _BUMP(np.clip(t, 0.0, 2.0)), 0.0)


class Corpus(NamedTuple):
    """Waveforms ``[n, 80000]`` float32, labels ``[n]`` int32, targets ``[n, 5000]`` float32, metadata."""

    waveforms: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    meta: tuple
