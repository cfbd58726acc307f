"""Every network of spikefleet, with the model-kind registry beside the types.

* :mod:`.spiking` — LIF population with a linear readout (:class:`~.spiking.SpikingNetwork`);
* :mod:`.rate` — the tanh rate teacher (:class:`~.rate.RateNetwork`);
* :mod:`.dynapse2` — a network of DYNAP-SE2 neurons (:class:`~.dynapse2.DynapSE2Network`);
* :mod:`.ads` — the Network ADS design (:class:`~.ads.ADSNetwork`);
* :mod:`.force` — the FORCE baseline design (:class:`~.force.FORCENetwork`);
* :mod:`.composite` — what the two teacher-based designs share; :mod:`.propagation` — dense or
  event-driven recurrent propagation; :mod:`.base` — the :class:`~.base.Model` base and its hooks;
  :mod:`.config` — shared config checks;
* :mod:`.registry` — kind name -> network class and config class (what checkpoints store).

Importing this package imports the built-in model modules, so each has registered its kind.
"""

from spikefleet.models import ads, dynapse2, force, rate, spiking  # noqa: F401  (each registers its kind)
