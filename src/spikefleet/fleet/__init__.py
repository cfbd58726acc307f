"""How one design varies across chips and conditions: mismatch profiles, quantisation, runtime noise,
neuron death, chip realisation, vectorised fleet evaluation, statistics, sweeps and plots."""
