"""The paper studies, run on the library and the experiment engine (``spikefleet study NAME``):

* :mod:`~spikefleet.studies.xor_robustness` — the Network ADS paper's methods on temporal XOR, one shared fleet;
* :mod:`~spikefleet.studies.claims` — the Network ADS paper's comparisons checked on a wake-phrase study's
  results (also a table of ``spikefleet report``, registered on import);
* :mod:`~spikefleet.studies.frozen_noise` — DYNAP-SE2 training on frozen noise, with and without weight-noise
  injection, its runs on the engine's backends;
* :mod:`~spikefleet.studies.deploy_frozen_noise` — deployment of those networks to DYNAP-SE2 configurations.
"""

from spikefleet.studies import claims  # noqa: F401 (importing it registers its table of the run report)
