"""The task interface: what every task declares, and all that the engine may ask of a task.

A task is a frozen dataclass deriving from :class:`Task`. It defines

* ``name``, ``n_in``, ``n_out`` (channels of a sample ``[T, n_in]`` and of the output ``[T, n_out]``)
  and ``dt`` (s);
* ``generate(n, seed) -> batch`` with ``inputs [n, T, n_in]``, ``targets [n, T, n_out]``,
  ``labels [n]``;
* ``decide(outputs) -> labels`` (NumPy) and ``decide_jax(outputs)`` (JAX, jit/vmap-able), the
  decision rule on outputs ``[..., T, n_out]``;
* ``trial_steps``: time steps of one trial (the scheduler's cost model).

and may override the defaults below: the accuracy, per-network fleet metrics with their
directions, the neuron model its designs default to, the test set of an experiment seed, fixed
training/validation sets, and per-design decision parameters fitted on validation data (the
wake-phrase integral rule, Büchel et al. 2021, Sci. Rep., Methods "Decision rules"). The engine
(:mod:`spikefleet.experiments`, :mod:`spikefleet.fleet`, the command line) uses only these
names and never branches on a task's name; :func:`spikefleet.tasks.registry.register_task` adds a
new task.
"""

from __future__ import annotations

from typing import ClassVar, Optional

import numpy as np

from spikefleet import seeds
from spikefleet.seeds import seed_stream

__all__ = ["Task"]


class Task:
    """Base class of the tasks: the required members raise, the optional ones have neutral defaults."""

    #: neuron model of the designs trained for this task (``"lif"``: teacher, BPTT, ADS, FORCE,
    #: reservoir; ``"dynapse2"``: DYNAP-SE2 networks); methods declare the model they train
    default_model: ClassVar[str] = "lif"
    #: initial input-weight scale of the BPTT recipe relative to XOR (small inputs ask for more)
    input_gain: ClassVar[float] = 1.0
    #: extra per-network fleet metrics ``((name, higher_is_better), ...)`` computed by :meth:`metrics_jax`
    metric_directions: ClassVar[tuple] = ()
    #: the keys an experiment file's ``[task]`` table may set (``None``: the fields of the task's
    #: ``config`` dataclass, or of the task itself if it has none)
    experiment_options: ClassVar[Optional[tuple]] = None

    # ---------------------------------------------------------------------------- required
    def generate(self, n: int, seed: int):
        raise NotImplementedError(f"{type(self).__name__}.generate")

    def decide(self, outputs) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.decide")

    def decide_jax(self, outputs):
        raise NotImplementedError(f"{type(self).__name__}.decide_jax")

    @property
    def trial_steps(self) -> float:
        """Time steps of one trial."""
        raise NotImplementedError(f"{type(self).__name__}.trial_steps")

    # ---------------------------------------------------------------------------- metrics
    def accuracy(self, outputs, labels) -> float:
        """Fraction of trials whose decision equals the label."""
        return float(np.mean(self.decide(outputs) == np.asarray(labels).reshape(-1)))

    def metrics_jax(self, outputs, labels) -> dict:
        """Per-network metrics of one chip's outputs ``[trials, T, n_out]`` (JAX scalars), named in
        :attr:`metric_directions`; none by default."""
        return {}

    def test_metrics(self, outputs, batch) -> dict:
        """Extra test metrics of one network's outputs on the test ``batch`` (JSON-ready); none by default."""
        return {}

    def rule_info(self) -> dict:
        """What a test record says about the decision rule in use; nothing by default."""
        return {}

    # ---------------------------------------------------------------------------- data sets
    def test_set(self, trials: int, seed: int, cache_dir=None):
        """The test trials of experiment seed ``seed``: ``trials`` fresh ones from ``seed_stream(seed, TEST)``."""
        return self.generate(trials, seed_stream(seed, seeds.TEST))

    def training_data(self, seed: int, cache_dir=None):
        """Fixed training and validation sets of seed ``seed`` (an object with ``train`` and
        ``validation`` batches), or ``None``: the methods draw fresh trials from their seed streams."""
        return None

    def training_task(self) -> "Task":
        """The task as training draws from and scores it (by default the task itself)."""
        return self

    def selection_task(self) -> "Task":
        """The task as gradient model selection scores a design whose decision parameters are fitted
        after training (by default the task itself)."""
        return self

    # ---------------------------------------------------------------------------- decisions
    def fit_decision(self, model, validation) -> dict:
        """Decision parameters of a trained ``model`` fitted on the ``validation`` batch, recorded in
        the design's info (none by default: the rule is fixed)."""
        return {}

    def judge(self, info: dict) -> "Task":
        """The task as it judges a design whose info holds the parameters of :meth:`fit_decision`
        (``judge({})``: the reference rule, e.g. a teacher's)."""
        return self
