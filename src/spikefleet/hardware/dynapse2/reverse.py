r"""Reverse mapping: a DYNAP-SE2 configuration → the simulator of exactly what was deployed (Çakal et al. 2024: reverse mapping: configuration → simulator).

**Recovering the design** (:func:`recover`):

1. Every neuron slot that is not empty is a deployed neuron at ``(chip, core, local id)``. Its CAM
   entries with a non-zero weight are its synapses; its SRAM entries other than the monitor entry
   (hop = ``spec.monitor_hop``) are its routes.
2. A synapse with tag ``t`` on a neuron at (chip c, core k) is **recurrent** from neuron ``m`` when
   ``m`` has a route with tag ``t`` whose hop equals position(c) − position(chip of m) and whose core
   mask includes k; otherwise it is an **input** synapse from the channel whose destination on chip
   c (hop from ``spec.input_origin_chip``) carries tag ``t``. Tags are thus read per chip, which
   covers both the global and the per-chip tag layout (:mod:`.routing`).
3. Neuron order: the output channel map's network indices when present (deployments made by
   :func:`~.config.deploy` have one), else ascending (chip, core, local id). Input rows: the input
   channel map's channels when present (channels with no destination become all-zero rows), else
   the distinct input tags in ascending order (global layout only: a per-chip layout needs the map).
4. Integer masks and dendrites go into dense matrices; sign = +1 for AMPA/NMDA, −1 for GABA/SHUNT.

**Weights**: ``w = sign · Σ_b bit_b(mask) · Iw_b / I_scale`` with the **read-back** base currents
Iw_b = scale·G(code of SYAM_Wb_P) of the post-synaptic neuron's core — the currents the chip
realises, not the ones requested by quantisation.

**Parameters** (per core, from the bias codes via :func:`~.biases.codes_to_currents`, the same
generator as at deployment; a configuration made with a calibration table needs that table passed
as ``generator``): Idc (0 when the neuron's ``latch_so_dc`` is off: no DC injection), If_nmda,
Igain_ahp, Igain_mem, Ipulse_ahp, Ipulse, Iref, Ispkthr, Itau_ahp, Itau_mem, Iw_ahp (passed through:
corrected defect 6). The single DynapSim synapse gets Igain_syn / Itau_syn = the average of the four
dendrites' currents weighted by the neuron's total integer mask per dendrite type (plain mean for a
neuron without synapses; the common value when the four agree, as :func:`~.config.deploy` writes
them). Layout constants (C_*, Io, κ, U_T, V_th) come from ``metadata["layout"]`` (defaults
otherwise); I_scale, dt, recurrence, surrogate and max_spikes from the metadata unless given.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping, Optional

import jax.numpy as jnp
import numpy as np

from spikefleet.errors import ConfigError, expect
from spikefleet.models.dynapse2 import DynapSE2Config, DynapSE2Network
from spikefleet.neurons.dynapse2 import I_SCALE, LAYOUT_DEFAULTS, DynapSE2
from spikefleet.hardware.dynapse2.biases import BIASES, codes_to_currents, parametric_generator
from spikefleet.hardware.dynapse2.constraints import DENDRITE_SIGN, LAYOUT_PARAMETERS, Dendrite, HardwareSpec
from spikefleet.hardware.dynapse2.routing import bits_to_mask
from spikefleet.hardware.dynapse2.samna_alias import EMPTY_NEURON, Dynapse2Configuration

__all__ = ["RecoveredDesign", "recover", "network_from_config"]

#: [16, 4]: row q holds the bits of mask q (bit b selects Iw_b, LSB first).
_MASK_BITS = ((np.arange(16)[:, None] >> np.arange(4)[None, :]) & 1).astype(np.float64)


@dataclass(frozen=True, eq=False)
class RecoveredDesign:
    """A configuration read back into matrices (``w[pre, post]``; N neurons, C input channels).

    ``masks_in`` [C, N] / ``masks_rec`` [N, N] (0..15), ``dendrites_in`` / ``dendrites_rec`` (samna enum
    ints, 0 = no synapse), ``signs_in`` / ``signs_rec`` (−1/0/+1), ``chip``/``core``/``neuron`` [N]
    addresses, ``input_tags`` [C] (the tag on the channel's first destination chip; −1 for a channel without
    destinations), ``neuron_tags`` [N] (the tag of the last route; −1 without routes), ``core_currents`` {global core: {simulator bias name: read-back A}}, ``latch_so_dc`` [N].
    """

    masks_in: np.ndarray
    masks_rec: np.ndarray
    dendrites_in: np.ndarray
    dendrites_rec: np.ndarray
    chip: np.ndarray
    core: np.ndarray
    neuron: np.ndarray
    input_tags: np.ndarray
    neuron_tags: np.ndarray
    core_currents: Mapping[int, Mapping[str, float]]
    latch_so_dc: np.ndarray
    spec: HardwareSpec

    @property
    def signs_in(self) -> np.ndarray:
        return _signs(self.dendrites_in)

    @property
    def signs_rec(self) -> np.ndarray:
        return _signs(self.dendrites_rec)

    @property
    def global_core(self) -> np.ndarray:
        return self.chip * self.spec.cores_per_chip + self.core

    def base_currents(self) -> np.ndarray:
        """[N] × 4 read-back Iw_0..Iw_3 of each neuron's core (A)."""
        return np.array([[self.core_currents[int(g)][f"Iw_{b}"] for b in range(4)] for g in self.global_core])

    def weights(self, i_scale: float) -> tuple[np.ndarray, np.ndarray]:
        """Dimensionless ``(w_in, w_rec)`` = sign · Σ_b bit_b·Iw_b(core of post) / I_scale."""
        levels = self.base_currents() @ _MASK_BITS.T / i_scale  # [N, 16], as CoreQuantization.levels()
        cols = np.arange(self.chip.size)[None, :]
        return (self.signs_in * levels[cols, self.masks_in], self.signs_rec * levels[cols, self.masks_rec])


def _signs(dendrites: np.ndarray) -> np.ndarray:
    out = np.zeros(dendrites.shape, np.int64)
    for d, s in DENDRITE_SIGN.items():
        out[dendrites == int(d)] = s
    return out


def _raise_naming_source(config, exc: ConfigError):
    """Re-raise ``exc`` with the configuration's ``source`` (its file) in front, unless it is unknown or
    already named."""
    source = getattr(config, "source", None)
    if source is None or str(exc).startswith(f"{source}:"):
        raise exc
    raise ConfigError(f"{source}: {exc}") from None


def recover(config, *, input_channel_map: Optional[Mapping] = None, output_channel_map: Optional[Mapping] = None,
            generator=None, spec: Optional[HardwareSpec] = None) -> RecoveredDesign:
    """Read a :class:`~.config.HardwareConfig` (or an alias ``Dynapse2Configuration`` plus optional maps)
    back into a :class:`RecoveredDesign` (module docstring). Inconsistent configurations raise
    :class:`~spikefleet.errors.ConfigError` naming the configuration's ``source`` (its file)."""
    try:
        return _recover(config, input_channel_map=input_channel_map, output_channel_map=output_channel_map,
                        generator=generator, spec=spec)
    except ConfigError as exc:
        _raise_naming_source(config, exc)


def _recover(config, *, input_channel_map, output_channel_map, generator, spec) -> RecoveredDesign:
    alias = getattr(config, "configuration", config)
    expect(type(alias) is Dynapse2Configuration, "config", "a HardwareConfig or a Dynapse2Configuration",
           type(alias).__name__)
    meta = getattr(config, "metadata", {})
    if input_channel_map is None:
        input_channel_map = getattr(config, "input_channel_map", None)
    if output_channel_map is None:
        output_channel_map = getattr(config, "output_channel_map", None)
    if spec is None:
        spec = config.spec if hasattr(config, "spec") else HardwareSpec(n_chips=len(alias.chips))
    expect(len(alias.chips) <= len(spec.chip_positions), "config.chips",
           f"at most {len(spec.chip_positions)} chips (one position each)", len(alias.chips))
    gen = parametric_generator("P3") if generator is None else generator
    if generator is None and any(p.get("source") != "parametric" for p in meta.get("calibration", {}).values()):
        warnings.warn("network_from_config: the configuration was made with a calibration table; pass it as "
                      "generator= to read the currents back exactly (using the parametric P3 model)", UserWarning,
                      stacklevel=3)

    # 1. deployed neurons, their synapses and routes
    found = {}  # address -> (CAM entries, routes, latch)
    for ch, chip in enumerate(alias.chips):
        for k, core in enumerate(chip.cores):
            for j, nrn in enumerate(core.neurons):
                if nrn is EMPTY_NEURON or nrn == EMPTY_NEURON:
                    continue
                cam = [(s.tag, int(s.dendrite), bits_to_mask(s.weight)) for s in nrn.synapses if any(s.weight)]
                routes = [d for d in nrn.destinations if not d.empty and (d.x_hop, d.y_hop) != spec.monitor_hop]
                found[(ch, k, j)] = (cam, routes, nrn.latch_so_dc)
    if output_channel_map:
        addresses = [(o.chip, o.core, o.local) for _, o in sorted(output_channel_map.items())]
        expect(sorted(output_channel_map) == list(range(len(addresses))), "output_channel_map keys",
               f"network indices 0..{len(addresses) - 1}", sorted(output_channel_map)[:10])
        stray = sorted(set(found) - set(addresses))
        expect(not stray, "configuration", "only neurons listed in the output channel map", f"extra neurons {stray[:5]}")
    else:
        addresses = sorted(found)
    expect(len(addresses) > 0, "configuration", "at least one configured neuron", "none")
    n = len(addresses)
    empty = ([], [], False)
    index_of = {a: i for i, a in enumerate(addresses)}

    # 2. recurrent tags and routes
    routes_by_tag: dict[int, list] = {}
    neuron_tags = np.full(n, -1, np.int64)
    for i, a in enumerate(addresses):
        for d in found.get(a, empty)[1]:
            routes_by_tag.setdefault(d.tag, []).append((i, a[0], (d.x_hop, d.y_hop), d.core))
            neuron_tags[i] = d.tag
    rec_entries, in_entries = [], []
    for j, (cj, kj, lj) in enumerate(addresses):
        for tag, dend, mask in found.get((cj, kj, lj), empty)[0]:
            pres = {i for i, ci, h, cores in routes_by_tag.get(tag, ()) if h == spec.hop(ci, cj) and cores[kj]}
            expect(len(pres) <= 1, f"synapse tag {tag} on chip {cj}, core {kj}, neuron {lj}",
                   "at most one pre-synaptic neuron routing this tag here", sorted(pres))
            (rec_entries if pres else in_entries).append((pres.pop() if pres else tag, j, dend, mask))

    # 3. input rows: (destination chip, tag) -> row; tags may differ per chip (per-chip tag layout)
    chip_at_hop = {spec.hop(spec.input_origin_chip, ch): ch for ch in range(len(alias.chips))}
    if input_channel_map is not None:
        c = len(input_channel_map)
        expect(sorted(input_channel_map) == list(range(c)), "input_channel_map keys", f"channels 0..{c - 1}",
               sorted(input_channel_map)[:10])
        input_tags = np.full(c, -1, np.int64)
        row_of = {}
        for ch_i, dests in sorted(input_channel_map.items()):
            chips = [chip_at_hop.get((d.x_hop, d.y_hop)) for d in dests]
            expect(None not in chips and len(set(chips)) == len(chips), f"input_channel_map[{ch_i}]",
                   "destinations on distinct configured chips (hop from the input origin chip)",
                   [(d.x_hop, d.y_hop) for d in dests])
            for chip_d, d in zip(chips, dests):
                expect((chip_d, d.tag) not in row_of, f"input_channel_map[{ch_i}]",
                       f"a tag not used by another channel on chip {chip_d}", d.tag)
                row_of[(chip_d, d.tag)] = ch_i
            if dests:
                input_tags[ch_i] = dests[0].tag
    else:
        input_tags = np.array(sorted({t for t, *_ in in_entries}), np.int64)
        c = input_tags.size
        row_of = {(ch, int(t)): r for r, t in enumerate(input_tags) for ch in range(len(alias.chips))}

    masks_in, masks_rec = np.zeros((c, n), np.int64), np.zeros((n, n), np.int64)
    dend_in, dend_rec = np.zeros((c, n), np.int64), np.zeros((n, n), np.int64)
    for entries, masks, dends, rows, kind in ((in_entries, masks_in, dend_in, row_of, "input tag"),
                                              (rec_entries, masks_rec, dend_rec, None, "pre-synaptic neuron")):
        for pre, j, dend, mask in entries:
            r = pre if rows is None else rows.get((addresses[j][0], pre))
            if r is None:
                raise ConfigError(f"synapse tag {pre} on neuron {j} ({addresses[j]}): expected a recurrent tag or a "
                                  "tag of the input channel map, got an unknown tag")
            expect(masks[r, j] == 0, f"synapses {kind} {pre} → neuron {j}", "one CAM entry per pre/post pair",
                   "several")
            masks[r, j], dends[r, j] = mask, dend

    # 4. per-core currents
    currents = {}
    for ch, k, _ in addresses:
        g = ch * spec.cores_per_chip + k
        if g not in currents:
            missing = [b.chip_name for b in BIASES if b.chip_name not in alias.chips[ch].cores[k].parameters]
            expect(not missing, f"chip {ch} core {k} parameters", f"all {len(BIASES)} simulated biases of a core "
                   "with deployed neurons", f"{len(missing)} missing, e.g. {missing[:3]}")
            currents[g] = codes_to_currents(alias.chips[ch].cores[k].codes(), generator=gen, ignore_unknown=True)
    arr = lambda i: np.array([a[i] for a in addresses], np.int64)  # noqa: E731
    latch = np.array([found.get(a, empty)[2] for a in addresses], bool)
    return RecoveredDesign(masks_in, masks_rec, dend_in, dend_rec, arr(0), arr(1), arr(2), input_tags, neuron_tags,
                           currents, latch, spec)


def _synapse_currents(d: RecoveredDesign, j: int, cur: Mapping[str, float]) -> tuple[float, float]:
    names = ("ampa", "gaba", "nmda", "shunt")
    gains = np.array([cur[f"Igain_{x}"] for x in names])
    taus = np.array([cur[f"Itau_{x}"] for x in names])
    if np.all(gains == gains[0]) and np.all(taus == taus[0]):
        return float(gains[0]), float(taus[0])
    mass = np.zeros(4)
    for dends, masks in ((d.dendrites_in[:, j], d.masks_in[:, j]), (d.dendrites_rec[:, j], d.masks_rec[:, j])):
        for x, name in enumerate(names):
            mass[x] += masks[dends == int(Dendrite[name])].sum()
    wts = mass / mass.sum() if mass.sum() > 0 else np.full(4, 0.25)
    return float(wts @ gains), float(wts @ taus)


def network_from_config(config, *, input_channel_map: Optional[Mapping] = None,
                        output_channel_map: Optional[Mapping] = None, generator=None,
                        I_scale: Optional[float] = None, dt: Optional[float] = None, spec=None):
    """The :class:`~spikefleet.models.dynapse2.DynapSE2Network` that simulates the configuration
    (module docstring); arguments as :func:`recover`, plus ``I_scale`` / ``dt`` overrides
    (default: the metadata, else 1e-8 A / 1 ms). Errors name the configuration's ``source``."""
    try:
        return _network_from_config(config, input_channel_map=input_channel_map,
                                    output_channel_map=output_channel_map, generator=generator, I_scale=I_scale,
                                    dt=dt, spec=spec)
    except ConfigError as exc:
        _raise_naming_source(config, exc)


def _network_from_config(config, *, input_channel_map, output_channel_map, generator, I_scale, dt, spec):
    meta = getattr(config, "metadata", {})
    d = recover(config, input_channel_map=input_channel_map, output_channel_map=output_channel_map,
                generator=generator, spec=spec)
    i_scale = float(I_scale if I_scale is not None else meta.get("i_scale", I_SCALE))
    dt = float(dt if dt is not None else meta.get("dt", 1e-3))
    c, n = d.masks_in.shape
    expect(c > 0, "configuration inputs", "at least one input channel (pass input_channel_map)", c)
    w_in, w_rec = d.weights(i_scale)
    per = {name: np.zeros(n) for name in ("Idc", "If_nmda", "Igain_ahp", "Igain_mem", "Igain_syn", "Ipulse_ahp",
                                          "Ipulse", "Iref", "Ispkthr", "Itau_ahp", "Itau_mem", "Itau_syn", "Iw_ahp",
                                          *LAYOUT_PARAMETERS)}
    layouts = meta.get("layout", {})
    for j, g in enumerate(d.global_core.tolist()):
        cur = d.core_currents[g]
        for name in ("If_nmda", "Igain_ahp", "Igain_mem", "Ipulse_ahp", "Ipulse", "Iref", "Ispkthr", "Itau_ahp",
                     "Itau_mem", "Iw_ahp"):
            per[name][j] = cur[name]
        per["Idc"][j] = cur["Idc"] if d.latch_so_dc[j] else 0.0
        per["Igain_syn"][j], per["Itau_syn"][j] = _synapse_currents(d, j, cur)
        layout = layouts.get(str(g), {})
        for name in LAYOUT_PARAMETERS:
            per[name][j] = layout.get(name, LAYOUT_DEFAULTS[name])
    recurrent = bool(meta.get("recurrent", True))
    cfg = DynapSE2Config(c, n, dt=dt, recurrent=recurrent, surrogate=meta.get("surrogate", "reference"),
                         max_spikes=meta.get("max_spikes"))
    neurons = DynapSE2.create(n, dt=dt, surrogate=cfg.surrogate, max_spikes=cfg.max_spikes, I_scale=i_scale, **per)
    w_rec = w_rec if recurrent else np.zeros_like(w_rec)
    return DynapSE2Network(w_in=jnp.asarray(w_in, jnp.float32), w_rec=jnp.asarray(w_rec, jnp.float32),
                           neurons=neurons, config=cfg)
