"""DYNAP-SE2 hardware layer (Çakal et al. 2024: weight quantisation to mapping and hardware configuration, Çakal et al. 2024: reference-implementation defects and quirks).

- :mod:`.biases`: bias-name table, parametric bias generator, current ↔ (coarse, fine) translation;
- :mod:`.calibration`: user-supplied calibration tables (CSV/JSON) and their precedence;
- :mod:`.constraints`: hardware limits as data (``HardwareSpec``) and a validator reporting every violation;
- :mod:`.mapping`: placement of a network's neurons on chips and cores, per-core shared parameters;
- :mod:`.quantize`: per-core weight quantisation (4 base currents, 4-bit masks, signs), both methods;
- :mod:`._alternating`: kernel of the alternating exact-mask / NNLS-current quantiser;
- :mod:`._autoencoder`: kernel of the reference's unsupervised autoencoder quantiser;
- :mod:`.routing`: tag layout, CAM (fan-in) and SRAM (fan-out) contents, input/output channel maps;
- :mod:`.samna_alias`: samna-free stand-ins for samna's configuration objects and their JSON;
- :mod:`.config`: ``deploy(net) -> Deployment``, the ``HardwareConfig`` file format, ``to_samna``;
- :mod:`.reverse`: configuration → recovered design and the simulator of what was deployed;
- :mod:`.summary`: a configuration validated and described (cores, CAM/SRAM, tags, bias read-back), as text;
- :mod:`.runner`: running a deployment on a board (events, binning, discharge configuration).

Command line: ``spikefleet deploy`` / ``spikefleet inspect`` (:mod:`spikefleet.cli.deploy`, over :mod:`.summary`).
Submodules are imported explicitly so that importing this package stays cheap.
"""
