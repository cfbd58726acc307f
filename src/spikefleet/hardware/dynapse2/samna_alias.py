r"""samna-free stand-ins for the samna ``dynapse2`` configuration objects (Çakal et al. 2024: samna classes and fields), and their JSON.

Plain frozen dataclasses with samna's field names; the hierarchy is::

    Dynapse2Configuration.chips[i]            Dynapse2Chip   (cores[4], global_parameters, pg flags)
      .cores[j]                               Dynapse2Core   (parameters {chip bias name: Dynapse2Parameter},
                                                              neurons[256], monitoring flags, id)
        .neurons[k]                           Dynapse2Neuron (synapses[64], destinations[4], 14 latches)
          .synapses[s]                        Dynapse2Synapse    (dendrite, weight[4], tag, stp, delays)
          .destinations[d]                    Dynapse2Destination (core[4], x_hop, y_hop, tag)

``k`` is the **core-local** neuron id. Sizes are fixed as on the chip (4 cores, 256 neurons, 64
synapses, 4 destinations), unused slots hold the empty objects :data:`EMPTY_SYNAPSE`,
:data:`EMPTY_DESTINATION`, :data:`EMPTY_NEURON` (immutable, so shared). Constructors check every
field (types and ranges: dendrite one of the samna enum integers, tag 0..2047 (0..4095 in a monitor
destination), hops −7..7, coarse 0..5, fine 0..255, type N/P) and raise :class:`~spikefleet.errors.ConfigError`.

**JSON** (samna's conventions, Çakal et al. 2024: samna classes and fields): a top-level ``"value0"``; snake_case field names become
camelCase (``latch_so_dc`` → ``latchSoDc``); samna's private fields keep a leading underscore
(``_address``, ``_cookie``, ``_initialType``, ``_switchableType``, ``_id``); a parameter's type
character is stored as its code point (``'N'`` → 78); parameter maps are lists of
``{"key": name, "value": …}``. Lists are JSON arrays (cereal writes ``{"value0": …}`` objects; samna
objects are therefore built field by field in :func:`~.config.to_samna`, not through ``from_json``).
Not modelled (absent from the JSON): chip ``shared_parameters01/23``, ``sadc_group_parameters01/23``,
``sadc_enables``, ``dvs_if``, ``bioamps``, and the cores' ``sadc_enables``. :func:`from_json_obj`
names the offending field on malformed input, e.g. ``value0.chips[0].cores[1].neurons[3].synapses[5].tag``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Mapping

from spikefleet.errors import ConfigError, expect, is_int, shown
from spikefleet.io import parse_json
from spikefleet.hardware.dynapse2.constraints import MONITOR_TAGS, Dendrite, HardwareSpec

__all__ = ["Dynapse2Parameter", "Dynapse2Synapse", "Dynapse2Destination", "Dynapse2Neuron", "Dynapse2Core",
           "Dynapse2Chip", "Dynapse2Configuration", "EMPTY_SYNAPSE", "EMPTY_DESTINATION", "EMPTY_NEURON",
           "to_json_obj", "from_json_obj", "LATCHES"]

_HW = HardwareSpec()
N_SYNAPSES, N_DESTINATIONS = _HW.cam_per_neuron, _HW.sram_per_neuron
N_NEURONS, N_CORES = _HW.neurons_per_core, _HW.cores_per_chip
_DENDRITES = frozenset(int(d) for d in Dendrite)
#: the 14 per-neuron latch flags of a samna ``Dynapse2Neuron``
LATCHES = ("latch_so_dc", "latch_so_adaptation", "latch_soif_kill", "latch_coho_ca_mem", "latch_ho_enable",
           "latch_ho_so_de", "latch_deam_ampa", "latch_denm_nmda", "latch_de_conductance", "latch_deam_alpha",
           "latch_denm_alpha", "latch_de_mux", "latch_soif_type", "latch_ho_active")


def _bools(value, n: int, name: str) -> tuple:
    ok = isinstance(value, (tuple, list)) and len(value) == n and all(isinstance(b, bool) for b in value)
    expect(ok, name, f"a list of {n} booleans", value)
    return tuple(value)


def _flag(obj, *names):
    for f in names:
        expect(isinstance(getattr(obj, f), bool), f"{type(obj).__name__}.{f}", "true or false", getattr(obj, f))


@dataclass(frozen=True)
class Dynapse2Parameter:
    """A bias: ``coarse_value`` 0..5, ``fine_value`` 0..255, transistor ``type`` 'N' or 'P'."""

    coarse_value: int = 0
    fine_value: int = 0
    type: str = "N"
    address: int = 0
    cookie: int = 0
    initial_type: str = "N"
    switchable_type: bool = False

    def __post_init__(self):
        n = "Dynapse2Parameter"
        expect(is_int(self.coarse_value) and 0 <= self.coarse_value < _HW.n_coarse, f"{n}.coarse_value",
               f"an integer 0..{_HW.n_coarse - 1}", self.coarse_value)
        expect(is_int(self.fine_value) and 0 <= self.fine_value < _HW.n_fine, f"{n}.fine_value",
               f"an integer 0..{_HW.n_fine - 1}", self.fine_value)
        for f in ("type", "initial_type"):
            expect(getattr(self, f) in ("N", "P"), f"{n}.{f}", "'N' or 'P'", getattr(self, f))
        for f in ("address", "cookie"):
            expect(is_int(getattr(self, f)), f"{n}.{f}", "an integer", getattr(self, f))
        _flag(self, "switchable_type")

    @property
    def code(self) -> tuple[int, int]:
        return self.coarse_value, self.fine_value


@dataclass(frozen=True)
class Dynapse2Synapse:
    """A CAM entry: ``dendrite`` (samna enum int), ``weight`` (4 bools, element b selects Iw_b), ``tag``."""

    dendrite: int = 0
    weight: tuple = (False, False, False, False)
    tag: int = 0
    stp: bool = False
    precise_delay: bool = False
    mismatched_delay: bool = False

    def __post_init__(self):
        n = "Dynapse2Synapse"
        expect(self.dendrite in _DENDRITES and is_int(self.dendrite), f"{n}.dendrite",
               f"one of {sorted(_DENDRITES)} (none/shunt/nmda/gaba/ampa)", self.dendrite)
        object.__setattr__(self, "weight", _bools(self.weight, 4, f"{n}.weight"))
        expect(is_int(self.tag) and 0 <= self.tag < _HW.n_tags, f"{n}.tag", f"an integer 0..{_HW.n_tags - 1}",
               self.tag)
        _flag(self, "stp", "precise_delay", "mismatched_delay")


@dataclass(frozen=True)
class Dynapse2Destination:
    """An SRAM entry: ``core`` (4 bools, core 0 first), ``x_hop``/``y_hop`` (−7..7), ``tag``."""

    core: tuple = (False, False, False, False)
    x_hop: int = 0
    y_hop: int = 0
    tag: int = 0

    def __post_init__(self):
        n = "Dynapse2Destination"
        object.__setattr__(self, "core", _bools(self.core, N_CORES, f"{n}.core"))
        for f in ("x_hop", "y_hop"):
            v = getattr(self, f)
            expect(is_int(v) and abs(v) <= _HW.max_hop, f"{n}.{f}", f"an integer -{_HW.max_hop}..{_HW.max_hop}", v)
        monitor = (self.x_hop, self.y_hop) == tuple(_HW.monitor_hop)  # tag = network index, 12-bit field
        top = MONITOR_TAGS if monitor else _HW.n_tags
        expect(is_int(self.tag) and 0 <= self.tag < top, f"{n}.tag", f"an integer 0..{top - 1}"
               + (" (a monitor entry)" if monitor else ""), self.tag)

    @property
    def empty(self) -> bool:
        return not any(self.core)

    def hash24(self) -> int:
        """24-bit key: core mask (core 0 = LSB) << 20 | (x_hop + 7) << 16 | (y_hop + 7) << 12 | tag."""
        mask = sum(1 << k for k, on in enumerate(self.core) if on)
        return (mask << 20) | ((self.x_hop + 7) << 16) | ((self.y_hop + 7) << 12) | self.tag

    def __hash__(self):
        return self.hash24()


EMPTY_SYNAPSE = Dynapse2Synapse()
EMPTY_DESTINATION = Dynapse2Destination()


@dataclass(frozen=True)
class Dynapse2Neuron:
    """``synapses`` (exactly 64), ``destinations`` (exactly 4) and the 14 latches (:data:`LATCHES`)."""

    synapses: tuple = (EMPTY_SYNAPSE,) * N_SYNAPSES
    destinations: tuple = (EMPTY_DESTINATION,) * N_DESTINATIONS
    latch_so_dc: bool = False
    latch_so_adaptation: bool = False
    latch_soif_kill: bool = False
    latch_coho_ca_mem: bool = False
    latch_ho_enable: bool = False
    latch_ho_so_de: bool = False
    latch_deam_ampa: bool = False
    latch_denm_nmda: bool = False
    latch_de_conductance: bool = False
    latch_deam_alpha: bool = False
    latch_denm_alpha: bool = False
    latch_de_mux: bool = False
    latch_soif_type: bool = False
    latch_ho_active: bool = False

    def __post_init__(self):
        n = "Dynapse2Neuron"
        for f, cls, size in (("synapses", Dynapse2Synapse, N_SYNAPSES),
                             ("destinations", Dynapse2Destination, N_DESTINATIONS)):
            v = getattr(self, f)
            expect(isinstance(v, (tuple, list)) and len(v) == size and all(type(x) is cls for x in v), f"{n}.{f}",
                   f"exactly {size} {cls.__name__} objects", f"{len(v) if isinstance(v, (tuple, list)) else v}")
            object.__setattr__(self, f, tuple(v))
        _flag(self, *LATCHES)


EMPTY_NEURON = Dynapse2Neuron()


@dataclass(frozen=True)
class Dynapse2Core:
    """``parameters`` {chip bias name: Dynapse2Parameter} (shared by the core), ``neurons`` (exactly 256)."""

    parameters: Mapping = field(default_factory=dict)
    neurons: tuple = (EMPTY_NEURON,) * N_NEURONS
    neuron_monitoring_on: bool = False
    monitored_neuron: int = 0
    enable_syaw_stdbuf_an: bool = False
    enable_pulse_extender_monitor1: bool = False
    enable_pulse_extender_monitor2: bool = False
    id: int = 0
    cookie: int = 0

    def __post_init__(self):
        n = "Dynapse2Core"
        p = self.parameters
        expect(isinstance(p, Mapping) and all(isinstance(k, str) and type(v) is Dynapse2Parameter
                                              for k, v in p.items()), f"{n}.parameters",
               "a mapping of bias names to Dynapse2Parameter", p)
        object.__setattr__(self, "parameters", MappingProxyType(dict(p)))
        v = self.neurons
        expect(isinstance(v, (tuple, list)) and len(v) == N_NEURONS and all(type(x) is Dynapse2Neuron for x in v),
               f"{n}.neurons", f"exactly {N_NEURONS} Dynapse2Neuron objects", len(v) if hasattr(v, "__len__") else v)
        object.__setattr__(self, "neurons", tuple(v))
        for f in ("monitored_neuron", "id", "cookie"):
            expect(is_int(getattr(self, f)) and getattr(self, f) >= 0, f"{n}.{f}", "an integer >= 0", getattr(self, f))
        _flag(self, "neuron_monitoring_on", "enable_syaw_stdbuf_an", "enable_pulse_extender_monitor1",
              "enable_pulse_extender_monitor2")

    def codes(self) -> dict:
        """{chip bias name: (coarse, fine)}."""
        return {k: v.code for k, v in self.parameters.items()}


@dataclass(frozen=True)
class Dynapse2Chip:
    """``cores`` (exactly 4) plus the chip-level flags that spikefleet models."""

    cores: tuple = ()
    global_parameters: Mapping = field(default_factory=dict)
    enable_pg0_reference_monitor: bool = False
    enable_pg1_reference_monitor: bool = False
    param_gen0_powerdown: bool = False
    param_gen1_powerdown: bool = False

    def __post_init__(self):
        n = "Dynapse2Chip"
        cores = self.cores or tuple(Dynapse2Core(id=k) for k in range(N_CORES))
        expect(isinstance(cores, (tuple, list)) and len(cores) == N_CORES and all(type(c) is Dynapse2Core for c in cores),
               f"{n}.cores", f"exactly {N_CORES} Dynapse2Core objects", cores)
        object.__setattr__(self, "cores", tuple(cores))
        g = self.global_parameters
        expect(isinstance(g, Mapping) and all(type(v) is Dynapse2Parameter for v in g.values()),
               f"{n}.global_parameters", "a mapping of bias names to Dynapse2Parameter", g)
        object.__setattr__(self, "global_parameters", MappingProxyType(dict(g)))
        _flag(self, "enable_pg0_reference_monitor", "enable_pg1_reference_monitor", "param_gen0_powerdown",
              "param_gen1_powerdown")


@dataclass(frozen=True)
class Dynapse2Configuration:
    """``chips``: one :class:`Dynapse2Chip` per chip on the board."""

    chips: tuple = ()

    def __post_init__(self):
        c = self.chips
        expect(isinstance(c, (tuple, list)) and len(c) >= 1 and all(type(x) is Dynapse2Chip for x in c),
               "Dynapse2Configuration.chips", "a non-empty list of Dynapse2Chip objects", c)
        object.__setattr__(self, "chips", tuple(c))

    def to_json(self) -> str:
        """samna-style JSON ``{"value0": …}`` (module docstring)."""
        return json.dumps({"value0": to_json_obj(self)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, *, source: str = "Dynapse2Configuration JSON") -> "Dynapse2Configuration":
        """Parse samna-style JSON (:meth:`to_json`); errors name ``source`` (e.g. the file) and the field."""
        doc = parse_json(text, source)
        try:
            expect(isinstance(doc, dict) and "value0" in doc, "top level", 'an object {"value0": …}',
                   type(doc).__name__)
            return from_json_obj(cls, doc["value0"], "value0")
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None


# ------------------------------------------------------------------------------------- JSON

_PRIVATE = {"address", "cookie", "initial_type", "switchable_type", "id"}
_CHAR_FIELDS = {"type", "initial_type"}
_CLASSES = {"chips": Dynapse2Chip, "cores": Dynapse2Core, "neurons": Dynapse2Neuron, "synapses": Dynapse2Synapse,
            "destinations": Dynapse2Destination}
_PARAM_MAPS = {"parameters", "global_parameters"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    key = head + "".join(w[:1].upper() + w[1:] for w in rest)
    return "_" + key if name in _PRIVATE else key


_KEYS = {cls: tuple((f.name, _camel(f.name)) for f in fields(cls))
         for cls in (Dynapse2Parameter, *_CLASSES.values(), Dynapse2Configuration)}


def to_json_obj(obj, _memo=None):
    """A JSON-ready dict of an alias object (identical sub-objects are converted once)."""
    memo = {} if _memo is None else _memo
    key = id(obj)
    if key in memo:
        return memo[key]
    out = {}
    for name, jkey in _KEYS[type(obj)]:
        v = getattr(obj, name)
        if name in _CHAR_FIELDS:
            v = ord(v)
        elif name in _PARAM_MAPS:
            v = [{"key": k, "value": to_json_obj(p, memo)} for k, p in v.items()]
        elif name in _CLASSES:
            v = [to_json_obj(x, memo) for x in v]
        elif isinstance(v, tuple):
            v = list(v)
        out[jkey] = v
    memo[key] = out
    return out


_EMPTY_NEURON_JSON = to_json_obj(EMPTY_NEURON)


def _freeze(v):
    """A hashable cache key part of a leaf field value: scalars, or a flat list of scalars (anything else, e.g.
    a hostile list nested 900 deep, raises TypeError: no caching, the field check reports it)."""
    if isinstance(v, list):
        if any(isinstance(x, (list, dict)) for x in v):
            raise TypeError("not a flat list")
        return tuple(v)
    return v


def from_json_obj(cls, data, path: str, _cache=None):
    """Rebuild an alias object of class ``cls`` from its JSON dict; errors name the field ``path``."""
    cache = {} if _cache is None else _cache
    expect(isinstance(data, dict), path, f"a JSON object ({cls.__name__})", type(data).__name__)
    keys = _KEYS[cls]
    want = {j for _, j in keys}
    missing, extra = sorted(want - set(data)), sorted(set(data) - want)
    expect(not missing and not extra, path, f"the {cls.__name__} fields {sorted(want)}",
           f"missing {shown(missing)}, unknown {shown(extra)}")
    if cls is Dynapse2Neuron and data == _EMPTY_NEURON_JSON:
        return EMPTY_NEURON  # most neurons of a configuration are unused: one C-level comparison
    leaf = cls in (Dynapse2Synapse, Dynapse2Destination, Dynapse2Parameter)
    if leaf:
        try:
            ck = (cls, tuple((k, _freeze(v)) for k, v in data.items()))
            if ck in cache:
                return cache[ck]
        except TypeError:
            ck = None
    kwargs = {}
    for name, jkey in keys:
        v, here = data[jkey], f"{path}.{jkey}"
        if name in _CHAR_FIELDS:
            expect(v in (78, 80), here, "the code point of 'N' (78) or 'P' (80)", v)
            v = chr(v)
        elif name in _PARAM_MAPS:
            expect(isinstance(v, list), here, 'a list of {"key": name, "value": parameter}', type(v).__name__)
            items = {}
            for i, e in enumerate(v):
                ok = isinstance(e, dict) and set(e) == {"key", "value"} and isinstance(e["key"], str)
                expect(ok, f"{here}[{i}]", 'an object {"key": bias name, "value": parameter}', e)
                items[e["key"]] = from_json_obj(Dynapse2Parameter, e["value"], f"{here}[{e['key']}]", cache)
            v = items
        elif name in _CLASSES:
            expect(isinstance(v, list), here, f"a list of {_CLASSES[name].__name__}", type(v).__name__)
            v = tuple(from_json_obj(_CLASSES[name], x, f"{here}[{i}]", cache) for i, x in enumerate(v))
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[name] = v
    try:
        obj = cls(**kwargs)
    except ConfigError as exc:
        msg = str(exc)
        attr = msg.split(":", 1)[0].split(".", 1)[-1]
        raise ConfigError(f"{path}.{_camel(attr)}: {msg.split(':', 1)[1].strip()}") from None
    if leaf and ck is not None:
        cache[ck] = obj
    return obj
