"""spikefleet: spiking neural networks that work on every chip of a mixed-signal neuromorphic processor.

Train designs (:mod:`spikefleet.train`), realise and evaluate them over fleets of simulated chips
(:mod:`spikefleet.fleet`), and deploy them to DYNAP-SE2 (:mod:`spikefleet.hardware.dynapse2`). The
package imports nothing by itself; import the modules you need (see the API reference).
"""
