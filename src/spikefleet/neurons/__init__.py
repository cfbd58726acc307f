"""Neuron models: LIF (abstract units), tanh rate units (teacher), surrogate spike functions, the
DYNAP-SE2 DynapSim neuron in physical units and its four-dendrite circuit variant."""
