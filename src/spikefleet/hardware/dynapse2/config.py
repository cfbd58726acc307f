r"""DYNAP-SE2 configuration from a trained network: validate → place → quantise → route → bias codes.

:func:`deploy` turns a :class:`~spikefleet.models.dynapse2.DynapSE2Network` into a
:class:`Deployment` whose ``config`` is a :class:`HardwareConfig`:

* ``configuration``: the samna-free alias :class:`~.samna_alias.Dynapse2Configuration` (Çakal et al. 2024: samna classes and fields):
  ``chips[chip].cores[core]`` holds the core's 23 simulated biases as ``parameters[chip bias name]``
  = (coarse, fine, type), and ``neurons[local id]`` its CAM (``synapses``, 64) and SRAM
  (``destinations``, 4) as laid out in :mod:`.routing`;
* ``input_channel_map`` {channel: destinations} and ``output_channel_map`` {neuron: OutputChannel};
* ``metadata``: format version, the :class:`~.constraints.HardwareSpec`, sizes, I_scale, dt, the
  placement summary, quantisation method/losses, per-core calibration provenance and bias
  translations (requested vs read-back currents), per-core layout constants, DC latches and the list
  of corrected reference defects (``mode = "corrected"``).

**Pipeline** (Çakal et al. 2024: mapper to configuration from specification, Çakal et al. 2024: implementation notes). 1. Place (:mod:`.mapping`) and validate everything that does not
depend on quantisation (capacity, tags, per-core parameters, fan-in/fan-out/hops of the non-zero
float weights — zero weights are never allocated — and the DAC range of the non-weight biases). 2.
Quantise per post-synaptic core (:func:`~.quantize.quantize`, ``core = placement.global_core``) unless
a ``quantization`` is given. 3. Validate masks, signs, base currents and the Iw biases. 4. Route
(:mod:`.routing`). 5. Translate each used core's currents to codes (:func:`~.biases.currents_to_codes`):
Idc, If_nmda, Igain_ahp, Igain_mem, Ipulse_ahp, Ipulse, Iref, Ispkthr, Itau_ahp, Itau_mem, Iw_ahp
from the core's parameters; Igain_syn / Itau_syn copied to all four dendrites (AMPA, GABA, NMDA,
SHUNT; Çakal et al. 2024: configuration from specification); Iw_0..Iw_3 from quantisation. Every violation found in a stage is raised together
as :class:`~.constraints.HardwareLimitError`; nothing is exported while any remain.

Corrected reference defects (Çakal et al. 2024: reference-implementation defects and quirks; recorded in ``metadata["corrections"]``): 1 complete chip
positions; 2 ⌈N/256⌉ balanced cores; 3 core-local neuron ids, ``latch_so_dc`` only when
Idc > ``dc_latch_factor``·Io, one merged input channel map; 4 one SRAM entry per destination chip;
5 CAM overflow reported as CAM (``fan_in``); 6 Iw_ahp kept (per core, read back by the reverse
mapping); 10 an output channel map and a check that every neuron appears; 11 tags 0..2047.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Optional

import numpy as np

from spikefleet._version import __version__
from spikefleet.errors import ConfigError, expect, is_finite_number
from spikefleet.io import atomic_write_text, parse_json, read_text, to_jsonable
from spikefleet.models.dynapse2 import DynapSE2Network
from spikefleet.neurons.dynapse2 import DynapSE2, WEIGHT_BITS
from spikefleet.neurons.dynapse2_soma import SURROGATES
from spikefleet.hardware.dynapse2.biases import BIASES, BiasGenerator, BiasTranslation, currents_to_codes, parametric_generator
from spikefleet.hardware.dynapse2.calibration import select_generator
from spikefleet.hardware.dynapse2.constraints import LAYOUT_PARAMETERS, HardwareSpec, raise_if, validate
from spikefleet.hardware.dynapse2.mapping import Placement, plan
from spikefleet.hardware.dynapse2.quantize import CoreQuantization, quantize
from spikefleet.hardware.dynapse2.reverse import network_from_config
from spikefleet.hardware.dynapse2.routing import OutputChannel, Routing, mask_to_bits, route
from spikefleet.hardware.dynapse2.samna_probe import SamnaUnavailableError, import_samna
from spikefleet.hardware.dynapse2.samna_alias import (EMPTY_DESTINATION, EMPTY_NEURON, EMPTY_SYNAPSE, Dynapse2Chip, Dynapse2Configuration,
                          Dynapse2Core, Dynapse2Destination, Dynapse2Neuron, Dynapse2Parameter, Dynapse2Synapse,
                          from_json_obj, to_json_obj)

__all__ = ["HardwareConfig", "Deployment", "deploy", "to_samna", "SamnaUnavailableError", "core_bias_currents",
           "CONFIG_FORMAT", "CONFIG_VERSION", "CORRECTIONS", "Dynapse2Configuration", "Dynapse2Chip", "Dynapse2Core",
           "Dynapse2Neuron", "Dynapse2Synapse", "Dynapse2Destination", "Dynapse2Parameter"]

#: format name and version written to ``metadata`` of every configuration
CONFIG_FORMAT, CONFIG_VERSION = "spikefleet-dynapse2-config", 1
#: reference defects corrected by :func:`deploy` (Çakal et al. 2024: reference-implementation defects and quirks row -> what), stored in ``metadata``
CORRECTIONS = MappingProxyType({
    "1": "complete chip-position table; multi-chip hops", "2": "ceil(N/256) cores, balanced contiguous blocks",
    "3": "core-local neuron ids; latch_so_dc only when Idc > dc_latch_factor*Io; merged input channel map",
    "4": "one SRAM destination per target chip", "5": "CAM overflow reported as CAM (fan_in)",
    "6": "Iw_ahp carried per core", "10": "output channel map; every mapped neuron has a monitor entry",
    "11": "tags strictly 0..2047"})




def _destination(d) -> Dynapse2Destination:
    return Dynapse2Destination(tuple(d.core), int(d.x_hop), int(d.y_hop), int(d.tag))


@dataclass(frozen=True, eq=False)
class HardwareConfig:
    """A deployable configuration: alias ``configuration`` + channel maps + ``metadata`` (module docstring)."""

    configuration: Dynapse2Configuration
    input_channel_map: Mapping[int, tuple]
    output_channel_map: Mapping[int, OutputChannel]
    metadata: Mapping
    source: str = "<configuration>"  # where it was read from (named by errors of the reverse mapping)

    def __post_init__(self):
        expect(type(self.configuration) is Dynapse2Configuration, "HardwareConfig.configuration",
               "a Dynapse2Configuration", type(self.configuration).__name__)
        object.__setattr__(self, "input_channel_map", MappingProxyType(
            {int(k): tuple(_destination(d) for d in v) for k, v in self.input_channel_map.items()}))
        object.__setattr__(self, "output_channel_map", MappingProxyType(
            {int(k): OutputChannel(*(int(x) for x in v)) for k, v in self.output_channel_map.items()}))
        object.__setattr__(self, "metadata", MappingProxyType(to_jsonable(self.metadata)))
        n_chips = len(self.configuration.chips)
        for n, o in self.output_channel_map.items():
            chip0 = self.configuration.chips[0]
            ok = 0 <= o.chip < n_chips and 0 <= o.core < len(chip0.cores) and 0 <= o.local < len(chip0.cores[0].neurons)
            expect(ok, f"output_channel_map[{n}]", f"an address on chips 0..{n_chips - 1}", o)
            first = self.configuration.chips[o.chip].cores[o.core].neurons[o.local].destinations[0]
            expect(first.tag == o.tag and not first.empty, f"output_channel_map[{n}]",
                   f"a neuron whose first SRAM entry is its monitor entry (tag {o.tag}) (defect 10 check)", first)

    @property
    def spec(self) -> HardwareSpec:
        return HardwareSpec.from_dict(self.metadata["spec"]) if "spec" in self.metadata else HardwareSpec(
            n_chips=len(self.configuration.chips))

    def to_json(self) -> str:
        doc = {"format": CONFIG_FORMAT, "version": CONFIG_VERSION, "value0": to_json_obj(self.configuration),
               "spikefleet": {
                   "inputChannelMap": [{"key": k, "value": [to_json_obj(d) for d in v]}
                                       for k, v in sorted(self.input_channel_map.items())],
                   "outputChannelMap": [{"key": k, "value": v._asdict()} for k, v in
                                        sorted(self.output_channel_map.items())],
                   "metadata": dict(self.metadata)}}
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, *, source: str = "<string>") -> "HardwareConfig":
        """Parse and validate; errors name ``source`` and the offending field."""
        return cls.from_json_doc(parse_json(text, source), source=source)

    @classmethod
    def from_json_doc(cls, doc, *, source: str = "<document>") -> "HardwareConfig":
        """Validate an already parsed JSON document (see :meth:`from_json`)."""
        try:
            expect(isinstance(doc, dict), "top level", "a JSON object", type(doc).__name__)
            expect(doc.get("format") == CONFIG_FORMAT, "format", repr(CONFIG_FORMAT), doc.get("format"))
            expect(doc.get("version") == CONFIG_VERSION, "version", CONFIG_VERSION, doc.get("version"))
            expect("value0" in doc, "value0", "the configuration object", "nothing")
            config = from_json_obj(Dynapse2Configuration, doc["value0"], "value0")
            extra = doc.get("spikefleet")
            expect(isinstance(extra, dict) and {"inputChannelMap", "outputChannelMap", "metadata"} <= set(extra),
                   "spikefleet", "an object with inputChannelMap, outputChannelMap, metadata", extra)
            imap = {}
            for i, e in enumerate(_pairs(extra["inputChannelMap"], "spikefleet.inputChannelMap")):
                expect(isinstance(e["value"], list), f"spikefleet.inputChannelMap[{i}].value", "a list",
                       e["value"])
                imap[e["key"]] = tuple(from_json_obj(Dynapse2Destination, d, f"spikefleet.inputChannelMap[{i}]"
                                                     f".value[{j}]") for j, d in enumerate(e["value"]))
            omap = {}
            for i, e in enumerate(_pairs(extra["outputChannelMap"], "spikefleet.outputChannelMap")):
                v = e["value"]
                ok = isinstance(v, dict) and set(v) == set(OutputChannel._fields) and all(
                    isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v.values())
                expect(ok, f"spikefleet.outputChannelMap[{i}].value", f"non-negative integers {OutputChannel._fields}",
                       v)
                omap[e["key"]] = OutputChannel(**v)
            expect(isinstance(extra["metadata"], dict), "spikefleet.metadata", "an object", extra["metadata"])
            check_metadata(extra["metadata"], n_chips=len(config.chips))
            return cls(config, imap, omap, extra["metadata"], source=source)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def save(self, path) -> Path:
        """Write the JSON atomically (:func:`spikefleet.io.atomic_write_text`)."""
        path = Path(path)
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def load(cls, path) -> "HardwareConfig":
        """Read and validate a configuration file (:meth:`from_json`); errors name the file."""
        path = Path(path)
        return cls.from_json(read_text(path, "hardware configuration file (JSON)"), source=str(path))


#: a metadata number: finite and strictly within ±1e300 (a hostile file's 1e308 or 10**400 is refused cleanly)
_is_num = partial(is_finite_number, bound=1e300)


def _mapping_of(value, path: str, check_item) -> None:
    expect(isinstance(value, dict), path, "an object", type(value).__name__)
    for k, v in value.items():
        check_item(v, f"{path}.{k}")


def _nesting(value, stop: int = 33) -> int:
    """Nesting depth of a JSON value (iterative; stops counting at ``stop``)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest >= stop:
            break
        if isinstance(v, Mapping):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend((x, d + 1) for x in v)
    return deepest


def check_metadata(meta: Mapping, *, n_chips: int) -> None:
    """Validate the ``spikefleet.metadata`` fields that inspection and the reverse mapping read.

    Every field is optional (:func:`deploy` writes all of them; older or hand-made files may not);
    present ones must have the documented types: ``spec`` a :class:`HardwareSpec` dict with the
    alias layout (4 cores × 256 neurons, 64 CAM, 4 SRAM per neuron) and ``n_chips`` = the number of
    chips; ``i_scale`` (A) and ``dt`` (s) positive numbers; ``recurrent`` a boolean; ``surrogate`` a
    DynapSim surrogate; ``max_spikes`` null or an integer >= 1; ``layout`` {core: {layout constant:
    positive number}}; ``calibration`` {core: object}; ``bias_translation`` {core: {"requested": {bias:
    number or null}, "codes": {bias: [coarse, fine]}}}; ``quantization`` {"loss": [numbers], "notes": [...]}.
    """
    m = "spikefleet.metadata"
    expect(_nesting(meta) <= 32, m, "objects and arrays nested at most 32 levels deep", "deeper nesting")
    if "spec" in meta:
        try:
            spec = HardwareSpec.from_dict(meta["spec"])
        except (TypeError, ValueError, OverflowError) as exc:  # ConfigError is a ValueError
            raise ConfigError(f"{m}.spec: expected a HardwareSpec object, got an invalid one ({exc})") from None
        layout = ("cores_per_chip", "neurons_per_core", "cam_per_neuron", "sram_per_neuron", "n_tags", "max_hop",
                  "weight_bits", "n_coarse", "n_fine")
        default = HardwareSpec()
        differ = [f for f in layout if getattr(spec, f) != getattr(default, f)]
        expect(not differ, f"{m}.spec", f"the DYNAP-SE2 layout of the configuration ({', '.join(layout)} as in "
               "HardwareSpec())", {f: getattr(spec, f) for f in differ})
        expect(spec.n_chips == n_chips, f"{m}.spec.n_chips", f"the number of chips in value0 ({n_chips})",
               spec.n_chips)
    for key in ("i_scale", "dt"):
        if key in meta:
            expect(_is_num(meta[key]) and meta[key] > 0, f"{m}.{key}", "a positive number", meta[key])
    if "recurrent" in meta:
        expect(isinstance(meta["recurrent"], bool), f"{m}.recurrent", "true or false", meta["recurrent"])
    if "surrogate" in meta:
        expect(meta["surrogate"] in SURROGATES, f"{m}.surrogate", f"one of {list(SURROGATES)}", meta["surrogate"])
    if meta.get("max_spikes") is not None:
        v = meta["max_spikes"]
        expect(isinstance(v, int) and not isinstance(v, bool) and v >= 1, f"{m}.max_spikes", "null or an integer >= 1",
               v)

    def layout_item(v, path):
        _mapping_of(v, path, lambda x, p: expect(_is_num(x) and x > 0, p, "a positive number", x))
        unknown = sorted(set(v) - set(LAYOUT_PARAMETERS))
        expect(not unknown, path, f"layout constants from {list(LAYOUT_PARAMETERS)}", unknown)

    def translation_item(v, path):
        expect(isinstance(v, dict), path, "an object", type(v).__name__)
        if "requested" in v:
            _mapping_of(v["requested"], f"{path}.requested",
                        lambda x, p: expect(x is None or _is_num(x), p, "a current in A or null", x))
        if "codes" in v:
            _mapping_of(v["codes"], f"{path}.codes", lambda x, p: expect(
                isinstance(x, list) and len(x) == 2 and all(isinstance(c, int) and not isinstance(c, bool) for c in x),
                p, "a [coarse, fine] pair of integers", x))

    if "layout" in meta:
        _mapping_of(meta["layout"], f"{m}.layout", layout_item)
    if "calibration" in meta:
        _mapping_of(meta["calibration"], f"{m}.calibration",
                    lambda v, p: expect(isinstance(v, dict), p, "an object (calibration provenance)", v))
    if "bias_translation" in meta:
        _mapping_of(meta["bias_translation"], f"{m}.bias_translation", translation_item)
    if "quantization" in meta:
        q = meta["quantization"]
        expect(isinstance(q, dict), f"{m}.quantization", "an object", type(q).__name__)
        if "loss" in q:
            expect(isinstance(q["loss"], list) and all(_is_num(x) for x in q["loss"]), f"{m}.quantization.loss",
                   "a list of numbers (one per core)", q["loss"])
        if "notes" in q:
            expect(isinstance(q["notes"], list), f"{m}.quantization.notes", "a list", q["notes"])


def _pairs(v, path):
    expect(isinstance(v, list), path, 'a list of {"key": int, "value": …}', type(v).__name__)
    for i, e in enumerate(v):
        ok = isinstance(e, dict) and set(e) == {"key", "value"} and isinstance(e["key"], int) and e["key"] >= 0
        expect(ok, f"{path}[{i}]", 'an object {"key": non-negative int, "value": …}', e)
    return v


def core_bias_currents(params: Mapping[str, float], base_currents) -> dict:
    """The 23 bias currents (A, simulator names) of a core from its DynapSim parameters and Iw_0..Iw_3."""
    out = {k: float(params[k]) for k in ("Idc", "If_nmda", "Igain_ahp", "Igain_mem", "Ipulse_ahp", "Ipulse", "Iref",
                                         "Ispkthr", "Itau_ahp", "Itau_mem", "Iw_ahp")}
    for d in ("ampa", "gaba", "nmda", "shunt"):
        out[f"Igain_{d}"], out[f"Itau_{d}"] = float(params["Igain_syn"]), float(params["Itau_syn"])
    out.update({f"Iw_{b}": float(base_currents[b]) for b in range(4)})
    return {b.sim_name: out[b.sim_name] for b in BIASES}


@dataclass(frozen=True, eq=False)
class Deployment:
    """Everything :func:`deploy` produced: ``config`` (export this), and the intermediate ``placement``,
    ``quantization``, ``routing`` and per-core ``translations`` {global core: BiasTranslation}."""

    config: HardwareConfig
    placement: Placement
    quantization: CoreQuantization
    routing: Routing
    translations: Mapping[int, BiasTranslation]

    def save(self, path) -> Path:
        return self.config.save(path)

    def network(self, **kwargs):
        """The simulator of what was deployed (:func:`~.reverse.network_from_config`)."""
        return network_from_config(self.config, **kwargs)


def _generator_for(generator, spec):
    if generator is None:
        gen = parametric_generator("P3")
        return lambda g: gen
    if isinstance(generator, BiasGenerator):
        return lambda g: generator
    tables = tuple(generator)
    expect(all(isinstance(t, BiasGenerator) for t in tables), "generator",
           "None, a BiasGenerator or a sequence of calibration tables (BiasGenerator)", generator)
    return lambda g: select_generator(tables, chip=g // spec.cores_per_chip, core=g % spec.cores_per_chip)


def deploy(net, *, quantization: Optional[CoreQuantization] = None, method: str = "alternating", key=None,
           spec: Optional[HardwareSpec] = None, generator=None, n_cores: Optional[int] = None, share: str = "strict",
           rtol: float = 1e-3, quantize_options: Optional[Mapping] = None) -> Deployment:
    """Deploy ``net`` (module docstring). ``quantization``: a precomputed result whose ``core`` equals
    the placement's ``global_core`` (else it is computed with ``method``, ``key`` (None → PRNGKey(0))
    and ``quantize_options``). ``generator``: None (P3), a ``BiasGenerator``, or calibration tables
    (precedence per core > per chip > global, :func:`~.calibration.select_generator`). ``n_cores``,
    ``share``, ``rtol``: see :func:`~.mapping.plan`. Raises ``HardwareLimitError`` listing all violations.
    """
    spec = HardwareSpec() if spec is None else spec
    expect(isinstance(net, DynapSE2Network) and type(net.neurons) is DynapSE2, "net",
           "a DynapSE2Network with DynapSE2 neurons (the shipped single-synapse model)", type(net).__name__)
    w_in = np.asarray(net.w_in, np.float64)
    w_rec = np.asarray(net.w_rec, np.float64) if net.config.recurrent else np.zeros((w_in.shape[1],) * 2)
    c, n = w_in.shape
    i_scale = float(net.neurons.I_scale)
    gen_for = _generator_for(generator, spec)

    placement, violations = plan(net, spec, n_cores=n_cores, share=share, rtol=rtol)
    violations = validate(spec, n_in=c, n_neurons=n) + [v for v in violations if v.code != "neurons_exceed_capacity"]
    if placement is not None:
        dummy_iw = np.asarray(WEIGHT_BITS)
        fixed = {g: {k: v for k, v in core_bias_currents(p, dummy_iw).items() if not k.startswith("Iw_")}
                 for g, p in placement.core_parameters.items()}
        synapses = dict(weights=(w_in, w_rec)) if quantization is None else dict(
            masks=(quantization.masks_in, quantization.masks_rec))
        violations += validate(spec, n_in=c, n_neurons=n, placement=placement, core_currents=fixed,
                               generator=gen_for, **synapses)
    raise_if(list({str(v): v for v in violations}.values()))  # de-duplicated, in order

    g_core = placement.global_core
    if quantization is None:
        quantization = quantize(w_in, w_rec, g_core, method=method, key=key, n_cores=spec.n_cores, i_scale=i_scale,
                                **dict(quantize_options or {}))
    else:
        q = quantization
        expect(isinstance(q, CoreQuantization), "quantization", "a CoreQuantization", type(q).__name__)
        expect(q.masks_in.shape == (c, n) and q.masks_rec.shape == (n, n), "quantization masks",
               f"shapes ({c}, {n}) and ({n}, {n})", (q.masks_in.shape, q.masks_rec.shape))
        expect(np.array_equal(q.core, g_core), "quantization.core", "the placement's global cores "
               "(quantise with core=place(net, spec).global_core and n_cores=spec.n_cores)", q.core)
        expect(q.n_cores <= spec.n_cores, "quantization.n_cores", f"at most spec.n_cores = {spec.n_cores}", q.n_cores)
    iw = np.tile(np.asarray(WEIGHT_BITS, np.float64), (spec.n_cores, 1))
    iw[:quantization.n_cores] = quantization.base_currents
    currents = {g: core_bias_currents(placement.core_parameters[g], iw[g]) for g in placement.used_cores}
    raise_if(validate(spec, n_in=c, n_neurons=n, placement=placement,
                      masks=(quantization.masks_in, quantization.masks_rec),
                      signs=(quantization.signs_in, quantization.signs_rec), base_currents=iw,
                      core_currents=currents, generator=gen_for))

    routing = route(placement, quantization.masks_in, quantization.masks_rec, quantization.signs_in,
                    quantization.signs_rec, spec)
    translations = {g: currents_to_codes(currents[g], generator=gen_for(g), max_overrange=spec.max_overrange,
                                         require_all=True) for g in placement.used_cores}
    latch = {g: placement.core_parameters[g]["Idc"] > spec.dc_latch_factor * placement.core_parameters[g]["Io"]
             for g in placement.used_cores}
    config = _build_configuration(spec, placement, routing, translations, latch)
    meta = {
        "format": CONFIG_FORMAT, "version": CONFIG_VERSION, "spikefleet_version": __version__, "mode": "corrected",
        "corrections": dict(CORRECTIONS), "spec": spec.to_dict(), "n_in": c, "n_neurons": n, "i_scale": i_scale,
        "dt": float(net.config.dt), "recurrent": bool(net.config.recurrent), "surrogate": net.config.surrogate,
        "max_spikes": net.config.max_spikes, "placement": placement.summary(),
        "quantization": {"method": quantization.method, "loss": quantization.loss.tolist(),
                         "notes": list(quantization.notes)},
        "calibration": {str(g): dict(t.provenance) for g, t in translations.items()},
        "bias_translation": {str(g): t.to_dict() for g, t in translations.items()},
        "layout": {str(g): {k: placement.core_parameters[g][k] for k in LAYOUT_PARAMETERS}
                   for g in placement.used_cores},
        "latch_so_dc": {str(g): bool(v) for g, v in latch.items()}}
    hc = HardwareConfig(config, {i: tuple(_destination(d) for d in v) for i, v in routing.input_channel_map.items()},
                        dict(routing.output_channel_map), meta)
    return Deployment(hc, placement, quantization, routing, MappingProxyType(translations))


def _build_configuration(spec, placement, routing, translations, latch) -> Dynapse2Configuration:
    chips = []
    for ch in range(spec.n_chips):
        cores = []
        for k in range(spec.cores_per_chip):
            g = ch * spec.cores_per_chip + k
            codes = translations[g].codes if g in translations else {}
            params = {b.chip_name: Dynapse2Parameter(*codes.get(b.chip_name, (0, 0)), type=b.type,
                                                     initial_type=b.type) for b in BIASES}
            neurons = [EMPTY_NEURON] * spec.neurons_per_core
            for j in (placement.neurons_on(g) if g in translations else ()):
                syn = [Dynapse2Synapse(e.dendrite, mask_to_bits(e.mask, spec.weight_bits), e.tag)
                       for e in routing.cam[j]]
                dst = [_destination(d) for d in routing.sram[j]]
                neurons[int(placement.neuron[j])] = Dynapse2Neuron(
                    tuple(syn) + (EMPTY_SYNAPSE,) * (spec.cam_per_neuron - len(syn)),
                    tuple(dst) + (EMPTY_DESTINATION,) * (spec.sram_per_neuron - len(dst)), latch_so_dc=latch[g])
            cores.append(Dynapse2Core(params, tuple(neurons), id=k))
        chips.append(Dynapse2Chip(tuple(cores)))
    return Dynapse2Configuration(tuple(chips))


def to_samna(config):
    """A real ``samna.dynapse2.Dynapse2Configuration`` from a :class:`HardwareConfig` (or alias configuration).

    samna is imported here, lazily (its public package may download resources at import time), and
    objects are built field by field. Raises :class:`SamnaUnavailableError` when samna is missing.
    Not exercised by the test-suite (no samna/board there).
    """
    d2 = import_samna("to_samna").dynapse2  # checks for the real package before importing it
    alias = config.configuration if isinstance(config, HardwareConfig) else config
    expect(type(alias) is Dynapse2Configuration, "config", "a HardwareConfig or Dynapse2Configuration", type(alias))
    out = d2.Dynapse2Configuration()

    def destination(d):
        s = d2.Dynapse2Destination()
        s.core, s.x_hop, s.y_hop, s.tag = list(d.core), d.x_hop, d.y_hop, d.tag
        return s

    for ch, chip in enumerate(alias.chips):
        for k, core in enumerate(chip.cores):
            target = out.chips[ch].cores[k]
            for name, p in core.parameters.items():
                target.parameters[name].coarse_value = p.coarse_value
                target.parameters[name].fine_value = p.fine_value
            for j, neuron in enumerate(core.neurons):
                if neuron is EMPTY_NEURON or neuron == EMPTY_NEURON:
                    continue
                syns = []
                for s in neuron.synapses:
                    x = d2.Dynapse2Synapse()
                    x.dendrite, x.weight, x.tag = d2.Dendrite(s.dendrite), list(s.weight), s.tag
                    x.stp, x.precise_delay, x.mismatched_delay = s.stp, s.precise_delay, s.mismatched_delay
                    syns.append(x)
                target.neurons[j].synapses = syns
                target.neurons[j].destinations = [destination(d) for d in neuron.destinations]
                target.neurons[j].latch_so_dc = neuron.latch_so_dc
    return out
