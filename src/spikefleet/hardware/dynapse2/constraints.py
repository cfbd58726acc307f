r"""DYNAP-SE2 hardware constraints as data, and a validator that reports *every* violation at once.

**Hardware facts** (Çakal et al. 2024: DYNAP-SE2 hardware facts used by the pipeline) live in the frozen :class:`HardwareSpec`: ``n_chips`` chips (default 1,
4 modelled) of 4 cores × 256 neurons; per neuron 64 CAM entries (fan-in) and 4 SRAM entries
(fan-out: 1 monitor entry + at most 3 destination chips); 2048 tags 0..2047 (strict, corrected
defect 11); hops |x|, |y| ≤ 7; 4 weight bits per synapse (masks 0..15) selecting the 4 per-core base
currents Iw_0..Iw_3; bias codes coarse 0..5, fine 0..255. All 24 DynapSim parameters are shared per
core (:data:`SHARED_PARAMETERS`; the 13 currents are set by the core's bias generator, the 11 layout
constants are silicon properties). Dendrites and their samna enum integers are :class:`Dendrite`.

**Chip positions** (corrected defect 1). The reference defines its position table twice and the
effective copy omits chip 2, so only single-chip use is safe there. Here ``chip_positions[i]`` is the
(x, y) grid position of chip ``i`` for *every* modelled chip (default ``(1,0), (2,0), (3,0), (4,0)``,
the FPGA at ``(0,0)``), and a hop is ``position(destination chip) − position(source chip)``.

**Violations.** :func:`validate` checks whatever it is given (sizes, a placement, float weights or
integer masks and signs, per-neuron parameters, base currents, bias currents or codes) and returns a
list of :class:`Violation` records (code, where, limit, value, hint, location). Codes:

=========================== ==============================================================
``neurons_exceed_capacity`` more neurons than ``n_chips × 4 × 256``
``cores_exhausted``         a placement needs more cores than the chips have
``placement_invalid``       chip/core/neuron id out of range, or two neurons at one address
``tags_exhausted``          a chip hears more than 2048 sources (input channels + pre-synaptic neurons
                            with a synapse onto one of its neurons; tags are allocated per chip
                            when the global layout ``n_in + 2N ≤ 2048`` does not fit), or more
                            than 4096 neurons for the 12-bit monitor tags
``fan_in``                  more than 64 allocated incoming synapses (CAM) on a neuron
``fan_out``                 more than 4 SRAM entries (1 monitor + destination chips) on a neuron
``hop_out_of_range``        a route whose |x_hop| or |y_hop| exceeds 7
``core_parameters_differ``  neurons on one core with different parameters (strict sharing)
``parameter_invalid``       a non-finite or negative parameter
``weight_not_finite``       NaN / inf weights
``mask_out_of_range``       a weight mask outside 0..15
``sign_invalid``            a sign outside {−1, 0, +1}, or an allocated mask without a sign
``base_current_invalid``    a used core with a base current Iw_b ≤ 0 A (or non-finite)
``bias_out_of_range``       a bias current the DAC cannot produce (negative, or above its range)
``bias_code_out_of_range``  coarse ∉ 0..5 or fine ∉ 0..255, or an unknown bias name
=========================== ==============================================================

:class:`HardwareLimitError` (a :class:`ConfigError`) carries the list and prints every violation
with its hint; nothing is exported while any remain.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Mapping, Optional, Sequence

import numpy as np

from spikefleet.errors import ConfigError, expect, is_finite_number, is_positive_int
from spikefleet.neurons.dynapse2 import PARAMETER_NAMES
from spikefleet.hardware.dynapse2.biases import BIASES, get_bias, parametric_generator

__all__ = [
    "HardwareSpec", "Dendrite", "DENDRITE_SIGN", "SHARED_PARAMETERS", "CONFIGURABLE_CURRENTS", "LAYOUT_PARAMETERS",
    "Violation", "HardwareLimitError", "VIOLATION_CODES", "validate", "hop", "raise_if", "group_parameters",
    "MONITOR_TAGS",
]

#: The 13 per-core currents set through the bias generator (the other 11 parameters are layout constants).
CONFIGURABLE_CURRENTS = ("Idc", "If_nmda", "Igain_ahp", "Igain_mem", "Igain_syn", "Ipulse_ahp", "Ipulse", "Iref",
                         "Ispkthr", "Itau_ahp", "Itau_mem", "Itau_syn", "Iw_ahp")
#: the 11 layout constants (capacitances, Io, κ, U_T, V_th): silicon properties, not set by biases
LAYOUT_PARAMETERS = tuple(p for p in PARAMETER_NAMES if p not in CONFIGURABLE_CURRENTS)
#: Every DynapSim parameter is one value per core on the chip.
SHARED_PARAMETERS = PARAMETER_NAMES
_NON_NEGATIVE = ("Idc", "If_nmda", "Iw_ahp")
#: tags a monitor entry can carry (tag = network index; 12-bit tag field of a destination).
MONITOR_TAGS = 1 << 12


class Dendrite(enum.IntEnum):
    """samna ``Dendrite`` enum integers (Çakal et al. 2024: DYNAP-SE2 hardware facts used by the pipeline)."""

    none = 0
    ampa = 1024
    gaba = 512
    nmda = 256
    shunt = 128


#: Sign of a synapse on each dendrite (AMPA/NMDA excitatory, GABA/SHUNT inhibitory; none → 0).
DENDRITE_SIGN = MappingProxyType({Dendrite.none: 0, Dendrite.ampa: 1, Dendrite.nmda: 1,
                                  Dendrite.gaba: -1, Dendrite.shunt: -1})

#: every code a :class:`Violation` can carry (table in the module docstring)
VIOLATION_CODES = (
    "neurons_exceed_capacity", "cores_exhausted", "placement_invalid", "tags_exhausted", "fan_in", "fan_out",
    "hop_out_of_range", "core_parameters_differ", "parameter_invalid", "weight_not_finite", "mask_out_of_range",
    "sign_invalid", "base_current_invalid", "bias_out_of_range", "bias_code_out_of_range",
)


def _int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


@dataclass(frozen=True)
class HardwareSpec:
    """Limits and layout of a DYNAP-SE2 board (Çakal et al. 2024: DYNAP-SE2 hardware facts used by the pipeline); every field is plain data.

    ``chip_positions[i]``: (x, y) of chip ``i`` (complete table, corrected defect 1; ``n_chips`` ≤ its
    length). ``input_origin_chip``: input events from the host are routed as if sent from this chip
    (the reference computes input hops relative to chip 0). ``monitor_hop``: the hop of the monitor
    SRAM entry that the FPGA catches. ``dc_latch_factor``: ``latch_so_dc`` is set only when the core's
    Idc exceeds this multiple of Io (corrected defect 3; the reference latches whenever Idc > 0).
    ``max_overrange``: bias requests up to this fraction above the DAC maximum are clamped (see
    :mod:`.biases`), beyond it they are violations.
    """

    n_chips: int = 1
    cores_per_chip: int = 4
    neurons_per_core: int = 256
    cam_per_neuron: int = 64
    sram_per_neuron: int = 4
    n_tags: int = 2048
    max_hop: int = 7
    weight_bits: int = 4
    n_coarse: int = 6
    n_fine: int = 256
    chip_positions: tuple = ((1, 0), (2, 0), (3, 0), (4, 0))
    fpga_position: tuple = (0, 0)
    input_origin_chip: int = 0
    monitor_hop: tuple = (-7, -7)
    control_tag: int = 2047
    dc_latch_factor: float = 2.0
    max_overrange: float = 0.25

    def __post_init__(self):
        name = "HardwareSpec"
        pos = tuple(tuple(int(v) for v in p) if isinstance(p, (tuple, list)) else p for p in self.chip_positions)
        object.__setattr__(self, "chip_positions", pos)
        for f in ("fpga_position", "monitor_hop"):
            v = getattr(self, f)
            expect(isinstance(v, (tuple, list)) and len(v) == 2 and all(_int(x) for x in v), f"{name}.{f}",
                   "an (x, y) pair of integers", v)
            object.__setattr__(self, f, tuple(int(x) for x in v))
        for f in ("cores_per_chip", "neurons_per_core", "cam_per_neuron", "sram_per_neuron", "n_tags", "max_hop",
                  "weight_bits", "n_coarse", "n_fine"):
            expect(is_positive_int(getattr(self, f)), f"{name}.{f}", "a positive integer", getattr(self, f))
        expect(all(isinstance(p, tuple) and len(p) == 2 for p in pos), f"{name}.chip_positions",
               "a tuple of (x, y) integer pairs, one per chip", self.chip_positions)
        expect(len(set(pos)) == len(pos) and self.fpga_position not in pos, f"{name}.chip_positions",
               "distinct positions, none equal to fpga_position", pos)
        expect(is_positive_int(self.n_chips) and self.n_chips <= len(pos), f"{name}.n_chips",
               f"an integer in 1..{len(pos)} (one chip position per chip)", self.n_chips)
        expect(_int(self.input_origin_chip) and 0 <= self.input_origin_chip < self.n_chips,
               f"{name}.input_origin_chip", f"a chip id in 0..{self.n_chips - 1}", self.input_origin_chip)
        expect(all(abs(h) <= self.max_hop for h in self.monitor_hop), f"{name}.monitor_hop",
               f"hops within ±{self.max_hop}", self.monitor_hop)
        expect(_int(self.control_tag) and 0 <= self.control_tag < self.n_tags, f"{name}.control_tag",
               f"a tag in 0..{self.n_tags - 1}", self.control_tag)
        expect(is_finite_number(self.dc_latch_factor) and self.dc_latch_factor >= 1, f"{name}.dc_latch_factor",
               "a number >= 1", self.dc_latch_factor)
        expect(is_finite_number(self.max_overrange) and self.max_overrange >= 0, f"{name}.max_overrange",
               "a number >= 0", self.max_overrange)

    # ------------------------------------------------------------------------ derived
    @property
    def n_cores(self) -> int:
        """Cores available on all chips (global core g → chip g // cores_per_chip, core g % cores_per_chip)."""
        return self.n_chips * self.cores_per_chip

    @property
    def capacity(self) -> int:
        return self.n_cores * self.neurons_per_core

    @property
    def n_mask_values(self) -> int:
        return 1 << self.weight_bits

    @property
    def dendrites(self) -> Mapping[str, int]:
        return MappingProxyType({d.name: int(d) for d in Dendrite})

    @property
    def shared_parameters(self) -> tuple:
        return SHARED_PARAMETERS

    def hop(self, src_chip: int, dst_chip: int) -> tuple[int, int]:
        """(x_hop, y_hop) = position(dst) − position(src)."""
        (sx, sy), (dx, dy) = self.chip_positions[src_chip], self.chip_positions[dst_chip]
        return dx - sx, dy - sy

    def hop_ok(self, h: tuple[int, int]) -> bool:
        return abs(h[0]) <= self.max_hop and abs(h[1]) <= self.max_hop

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: [list(p) for p in v] if k == "chip_positions" else list(v) if isinstance(v, tuple) else v
                for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping) -> "HardwareSpec":
        expect(isinstance(d, Mapping), "HardwareSpec", "a mapping of field names to values", type(d).__name__)
        known = set(cls.__dataclass_fields__)
        expect(set(d) <= known, "HardwareSpec fields", f"names in {sorted(known)}", sorted(set(d) - known))
        conv = {k: tuple(tuple(p) for p in v) if k == "chip_positions" else tuple(v) if isinstance(v, list) else v
                for k, v in d.items()}
        return cls(**conv)


def hop(spec: HardwareSpec, src_chip: int, dst_chip: int) -> tuple[int, int]:
    """Module-level alias of :meth:`HardwareSpec.hop`."""
    return spec.hop(src_chip, dst_chip)


# ------------------------------------------------------------------------------ violations

@dataclass(frozen=True)
class Violation:
    """One broken hardware rule: ``code`` (see :data:`VIOLATION_CODES`), ``where`` (readable place),
    ``limit`` and ``value`` (the rule and what was found), ``hint`` (how to fix it) and ``location``
    (machine-readable: any of neuron, pre, post, chip, core, bias, channel)."""

    code: str
    where: str
    limit: object
    value: object
    hint: str
    location: Mapping = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "location", MappingProxyType(dict(self.location)))

    def __str__(self) -> str:
        return f"[{self.code}] {self.where}: limit {self.limit}, got {self.value}. Fix: {self.hint}"


class HardwareLimitError(ConfigError):
    """The design breaks hardware rules; ``violations`` lists all of them (each with a hint)."""

    def __init__(self, violations: Sequence[Violation], context: str = "DYNAP-SE2 deployment"):
        self.violations = tuple(violations)
        counts = Counter(v.code for v in self.violations)
        head = (f"{context}: expected a design within the hardware limits, got {len(self.violations)} violation(s) "
                f"({', '.join(f'{c} x{n}' for c, n in counts.items())}); nothing was exported:")
        super().__init__("\n".join([head] + [f"  - {v}" for v in self.violations]))


def raise_if(violations: Sequence[Violation], context: str = "DYNAP-SE2 deployment") -> None:
    """Raise :class:`HardwareLimitError` listing ``violations`` unless the list is empty."""
    if violations:
        raise HardwareLimitError(violations, context)


def _addr(n: int, chip, core, neuron) -> str:
    if chip is None:
        return f"neuron {n}"
    return f"neuron {n} (chip {int(chip[n])}, core {int(core[n])}, neuron {int(neuron[n])})"


def _matrix(x, name, shape, dtype=None):
    a = np.asarray(x) if dtype is None else np.asarray(x, dtype)
    expect(a.shape == shape, name, f"shape {shape}", a.shape)
    return a


def validate(spec: Optional[HardwareSpec] = None, *, n_in: int, n_neurons: int, placement=None, weights=None,
             masks=None, signs=None, parameters: Optional[Mapping] = None, share: str = "strict",
             rtol: float = 1e-3, base_currents=None, core_currents: Optional[Mapping] = None,
             bias_codes: Optional[Mapping] = None, generator=None) -> list[Violation]:
    """Every violation of ``spec``'s limits by the given design parts (all but the sizes optional).

    ``placement``: an object with ``chip``, ``core``, ``neuron`` arrays [N] (e.g. a mapping
    ``Placement``) or a ``(chip, core, neuron)`` tuple. Synapses are the non-zero ``masks``
    ``(masks_in [C, N], masks_rec [N, N])`` when given, else the non-zero float ``weights``
    ``(w_in, w_rec)`` (zero weights are never allocated). ``signs`` ``(signs_in, signs_rec)``.
    ``parameters``: {name: [N] per-neuron values}; with ``share="strict"`` neurons on one core must
    agree within a relative range ``(max − min)/|mean| ≤ 2·rtol`` (with ``"average"`` they are averaged,
    see :mod:`.mapping`). ``base_currents``: [spec.n_cores, 4] A, indexed by global core.
    ``core_currents``: {global core: {simulator bias name: A}} checked against the DAC range of
    ``generator`` (default P3). ``bias_codes``: {global core: {chip bias name: (coarse, fine)}}.
    """
    spec = HardwareSpec() if spec is None else spec
    expect(_int(n_in) and n_in >= 0, "n_in", "an integer >= 0", n_in)
    expect(_int(n_neurons) and n_neurons > 0, "n_neurons", "a positive integer", n_neurons)
    c, n = int(n_in), int(n_neurons)
    out: list[Violation] = []
    add = out.append

    if n > spec.capacity:
        add(Violation("neurons_exceed_capacity", f"network of {n} neurons", spec.capacity, n,
                      f"use more chips (HardwareSpec(n_chips=...), at most {len(spec.chip_positions)} modelled; each "
                      f"adds {spec.cores_per_chip * spec.neurons_per_core} neurons) or fewer neurons",
                      {"n_neurons": n}))
    if c + 2 * n > spec.n_tags and MONITOR_TAGS < n <= spec.capacity:  # (beyond capacity: reported above)
        add(Violation("tags_exhausted", f"monitor tags of {n} neurons (tag = network index)", MONITOR_TAGS, n,
                      f"at most {MONITOR_TAGS} neurons can be monitored (12-bit tag field)", {}))

    chip = core = neuron = gcore = None
    if placement is not None:
        parts = (placement.chip, placement.core, placement.neuron) if hasattr(placement, "chip") else placement
        chip, core, neuron = (_matrix(p, f"placement.{k}", (n,)).astype(np.int64)
                              for p, k in zip(parts, ("chip", "core", "neuron")))
        bad = ((chip < 0) | (chip >= spec.n_chips) | (core < 0) | (core >= spec.cores_per_chip) | (neuron < 0)
               | (neuron >= spec.neurons_per_core))
        for j in np.flatnonzero(bad):
            add(Violation("placement_invalid", _addr(j, chip, core, neuron),
                          f"chip < {spec.n_chips}, core < {spec.cores_per_chip}, neuron < {spec.neurons_per_core}",
                          (int(chip[j]), int(core[j]), int(neuron[j])),
                          "place neurons on existing chips/cores (increase HardwareSpec.n_chips) and use core-local "
                          "neuron ids 0..255", {"neuron": int(j)}))
        keys = Counter(zip(chip.tolist(), core.tolist(), neuron.tolist()))
        for addr, cnt in keys.items():
            if cnt > 1:
                add(Violation("placement_invalid", f"address chip {addr[0]}, core {addr[1]}, neuron {addr[2]}",
                              "1 neuron per address", cnt, "give every network neuron its own (chip, core, neuron)",
                              {"chip": addr[0], "core": addr[1]}))
        if bad.any():
            chip = core = neuron = None  # later checks need valid addresses
        else:
            gcore = chip * spec.cores_per_chip + core

    # ---------------------------------------------------------------- synapses
    alloc_in = alloc_rec = None
    if weights is not None:
        w_in, w_rec = (_matrix(w, name, shp, np.float64) for w, name, shp in
                       zip(weights, ("w_in", "w_rec"), ((c, n), (n, n))))
        for name, w in (("w_in", w_in), ("w_rec", w_rec)):
            if not np.isfinite(w).all():
                add(Violation("weight_not_finite", name, "finite values", f"{int((~np.isfinite(w)).sum())} NaN/inf",
                              "check training (exploding gradients) before deployment", {}))
        alloc_in, alloc_rec = w_in != 0, w_rec != 0
    if masks is not None:
        m_in, m_rec = (_matrix(m, name, shp) for m, name, shp in
                       zip(masks, ("masks_in", "masks_rec"), ((c, n), (n, n))))
        for name, m, kind in (("masks_in", m_in, "input"), ("masks_rec", m_rec, "recurrent")):
            bad = ~np.isin(m, np.arange(spec.n_mask_values))
            for i, j in np.argwhere(bad):
                add(Violation("mask_out_of_range", f"{kind} synapse {int(i)} → {_addr(j, chip, core, neuron)}",
                              f"an integer 0..{spec.n_mask_values - 1}", m[i, j].item(),
                              f"masks are {spec.weight_bits}-bit integers (bit b selects Iw_b); re-run quantisation",
                              {"pre": int(i), "post": int(j), "kind": kind}))
        alloc_in, alloc_rec = np.asarray(m_in != 0), np.asarray(m_rec != 0)
        if signs is not None:
            for kind, s, a in (("input", signs[0], alloc_in), ("recurrent", signs[1], alloc_rec)):
                s = _matrix(s, f"signs ({kind})", a.shape)
                bad = ~np.isin(s, (-1, 0, 1)) | (a & (s == 0))
                for i, j in np.argwhere(bad):
                    add(Violation("sign_invalid", f"{kind} synapse {int(i)} → {_addr(j, chip, core, neuron)}",
                                  "+1 (AMPA) or -1 (GABA) for an allocated synapse", s[i, j].item(),
                                  "signs come from the float weight: +1 excitatory, -1 inhibitory, 0 = no synapse",
                                  {"pre": int(i), "post": int(j), "kind": kind}))
    if alloc_in is not None:
        fan_in = alloc_in.sum(0) + alloc_rec.sum(0)
        for j in np.flatnonzero(fan_in > spec.cam_per_neuron):
            add(Violation("fan_in", f"CAM of {_addr(j, chip, core, neuron)}", spec.cam_per_neuron, int(fan_in[j]),
                          f"at most {spec.cam_per_neuron} incoming synapses per neuron: prune the weakest incoming "
                          "weights to exactly 0 (zero weights are never allocated) or train with a fan-in constraint",
                          {"neuron": int(j)}))
    if alloc_rec is not None and chip is not None:
        onehot = np.eye(spec.n_chips, dtype=np.int64)[chip]  # [N, chips]
        if c + 2 * n > spec.n_tags:  # no global layout: tags per chip (routing.chip_tags)
            heard_in = ((alloc_in.astype(np.int64) @ onehot) > 0).sum(0)
            heard_rec = ((alloc_rec.astype(np.int64) @ onehot) > 0).sum(0)
            for b in np.flatnonzero(heard_in + heard_rec > spec.n_tags):
                add(Violation("tags_exhausted", f"tags heard on chip {b} ({int(heard_in[b])} input channels + "
                              f"{int(heard_rec[b])} pre-synaptic neurons with synapses onto its neurons)", spec.n_tags,
                              int(heard_in[b] + heard_rec[b]), f"a chip matches at most {spec.n_tags} distinct "
                              "sources: spread the neurons that these sources reach over more chips (HardwareSpec("
                              "n_chips=...)), or prune inputs/connections so that each chip hears fewer sources",
                              {"chip": int(b)}))
        targets = (alloc_rec.astype(np.int64) @ onehot) > 0  # pre × destination chip
        n_sram = 1 + targets.sum(1)
        for i in np.flatnonzero(n_sram > spec.sram_per_neuron):
            add(Violation("fan_out", f"SRAM of {_addr(i, chip, core, neuron)}", spec.sram_per_neuron, int(n_sram[i]),
                          f"1 monitor entry + one entry per destination chip: place this neuron's targets on at most "
                          f"{spec.sram_per_neuron - 1} chips", {"neuron": int(i)}))
        pairs = onehot.T @ alloc_rec.astype(np.int64) @ onehot  # synapse counts chip a → chip b
        for a, b in np.argwhere(pairs > 0):
            h = spec.hop(int(a), int(b))
            if not spec.hop_ok(h):
                i, j = np.argwhere(alloc_rec & (chip[:, None] == a) & (chip[None, :] == b))[0]
                add(Violation("hop_out_of_range", f"recurrent synapses chip {a} → chip {b} ({int(pairs[a, b])}, "
                              f"e.g. neuron {i} → neuron {j})", f"|hop| ≤ {spec.max_hop}", h,
                              "place connected neurons on chips closer together, or correct "
                              "HardwareSpec.chip_positions", {"chip": int(a), "dst_chip": int(b)}))
        used = (alloc_in.astype(np.int64) @ onehot).sum(0) > 0
        for b in np.flatnonzero(used):
            h = spec.hop(spec.input_origin_chip, int(b))
            if not spec.hop_ok(h):
                add(Violation("hop_out_of_range", f"input events chip {spec.input_origin_chip} → chip {b}",
                              f"|hop| ≤ {spec.max_hop}", h, "place input-receiving neurons on chips near "
                              "input_origin_chip, or correct HardwareSpec.chip_positions", {"dst_chip": int(b)}))

    # ---------------------------------------------------------------- parameters
    if parameters is not None:
        expect(share in ("strict", "average"), "share", "'strict' or 'average'", share)
        for name, vals in parameters.items():
            v = _matrix(np.asarray(vals, np.float64), f"parameters[{name!r}]", (n,))
            low_ok = v >= 0 if name in _NON_NEGATIVE else v > 0
            bad = ~np.isfinite(v) | ~low_ok
            for j in np.flatnonzero(bad)[:10]:
                add(Violation("parameter_invalid", f"{name} of {_addr(j, chip, core, neuron)}",
                              "a finite value >= 0" if name in _NON_NEGATIVE else "a finite value > 0", float(v[j]),
                              "fix the neuron parameters (currents in A) before deployment", {"neuron": int(j)}))
            if share == "strict" and gcore is not None and not bad.any():
                for g in np.unique(gcore):
                    x = v[gcore == g]
                    spread = (x.max() - x.min()) / max(abs(x.mean()), 1e-300)
                    if spread > 2 * rtol:
                        add(Violation("core_parameters_differ", f"{name} on chip {g // spec.cores_per_chip}, core "
                                      f"{g % spec.cores_per_chip} ({x.size} neurons, {x.min():.4g}..{x.max():.4g})",
                                      f"relative range ≤ {2 * rtol:g}", round(float(spread), 6),
                                      "neurons of a core share one parameter group: place different parameter sets "
                                      "on different cores (mapping share='strict' does), or use share='average' to "
                                      "average them (lossy, recorded)", {"core": int(g), "parameter": name}))

    if base_currents is not None:
        iw = _matrix(np.asarray(base_currents, np.float64), "base_currents", (spec.n_cores, spec.weight_bits))
        used = np.zeros(spec.n_cores, bool)
        if gcore is not None and alloc_in is not None:
            has = (alloc_in.any(0) | alloc_rec.any(0))
            used[np.unique(gcore[has])] = True
        for g in np.flatnonzero(used):
            for b in np.flatnonzero(~(np.isfinite(iw[g]) & (iw[g] > 0))):
                add(Violation("base_current_invalid", f"Iw_{b} of chip {g // spec.cores_per_chip}, core "
                              f"{g % spec.cores_per_chip}", "a finite current > 0 A", float(iw[g, b]),
                              "re-run quantisation (every base current of a core with synapses must be > 0 A)",
                              {"core": int(g), "bit": int(b)}))

    if core_currents is not None:
        gen = parametric_generator("P3") if generator is None else generator
        for g, cur in core_currents.items():
            gen_g = gen(g) if callable(gen) else gen
            for name, value in cur.items():
                b = get_bias(name)
                lo, hi = gen_g.range(b.type, b.scale)
                ok = is_finite_number(float(value)) and 0 <= value <= hi * (1 + spec.max_overrange)
                if not ok:
                    add(Violation("bias_out_of_range", f"{name} ({b.chip_name}) of chip {g // spec.cores_per_chip}, "
                                  f"core {g % spec.cores_per_chip}", f"0..{hi * (1 + spec.max_overrange):.4g} A "
                                  f"(DAC range [{lo:.4g}, {hi:.4g}] A, generator {gen_g.source})", float(value),
                                  "the bias generator cannot produce this current: change the parameter, or for "
                                  "Iw_0..Iw_3 lower I_scale × weight magnitudes", {"core": int(g), "bias": name}))
    if bias_codes is not None:
        names = {b.chip_name for b in BIASES}
        for g, codes in bias_codes.items():
            for name, code in codes.items():
                ok = name in names and isinstance(code, (tuple, list)) and len(code) == 2 and all(
                    _int(x) for x in code) and 0 <= code[0] < spec.n_coarse and 0 <= code[1] < spec.n_fine
                if not ok:
                    add(Violation("bias_code_out_of_range", f"{name} of chip {g // spec.cores_per_chip}, core "
                                  f"{g % spec.cores_per_chip}", f"a known bias with coarse 0..{spec.n_coarse - 1}, "
                                  f"fine 0..{spec.n_fine - 1}", code, "codes come from currents_to_codes; use one of "
                                  f"the {len(names)} simulated chip bias names", {"core": int(g), "bias": name}))
    return out


def _isclose_rows(a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
    """Rows of ``a`` [k, P] within ``rtol`` (relative to |b|) of the row ``b`` [P] in every column."""
    return np.all(np.abs(a - b) <= rtol * np.maximum(np.abs(b), 1e-300), axis=-1)


def group_parameters(values: np.ndarray, rtol: float = 1e-3) -> np.ndarray:
    """Group label [N] of each row of ``values`` [N, P]: a row joins the first group (in order of first
    appearance) whose representative (its first member) it matches within ``rtol`` in every column."""
    values = np.asarray(values, np.float64)
    expect(values.ndim == 2, "parameter matrix", "shape [N, P]", values.shape)
    expect(is_finite_number(rtol) and rtol >= 0, "rtol", "a number >= 0", rtol)
    uniq, first, inverse = np.unique(values, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    reps: list[np.ndarray] = []
    label_of_unique = np.empty(len(uniq), np.int64)
    for u in order:
        hit = np.flatnonzero(_isclose_rows(np.asarray(reps), uniq[u], rtol)) if reps else np.empty(0, int)
        if hit.size:
            label_of_unique[u] = hit[0]
        else:
            label_of_unique[u] = len(reps)
            reps.append(uniq[u])
    return label_of_unique[inverse.ravel()]

