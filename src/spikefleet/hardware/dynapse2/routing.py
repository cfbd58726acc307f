r"""Memory allocation on DYNAP-SE2: tags, CAM (fan-in) and SRAM (fan-out) contents, channel maps (Çakal et al. 2024: memory allocation).

**Tags** (2048 tags, 0..2047, strict; corrected defect 11). A CAM matches the tag of the events
that reach *its chip*, so a tag only has to be unique among the sources heard on one chip, and every
SRAM entry / input destination carries its own tag (one per destination chip). Two layouts:

- **global** (the reference layout, used whenever it fits, ``C + 2N ≤ 2048``): input channel ``i``
  has the virtual tag ``i`` ∈ [0, C); network neuron ``n`` broadcasts with the recurrent tag
  ``C + n`` ∈ [C, C + N) on every chip; the last N tags [2048 − N, 2048) are reserved for outputs
  (unused). ``Routing.layout`` is the :class:`TagLayout`.
- **per chip** (otherwise; lifts the single tag space limit so that > 1023 neurons deploy on
  several chips): on each destination chip, the sources heard there — input channels with a
  synapse onto a neuron of that chip (ascending ``i``), then pre-synaptic neurons with a synapse
  onto a neuron of that chip (ascending ``n``) — are numbered 0, 1, …; the count must be ≤ 2048 per
  chip (``tags_exhausted`` names the chip). ``Routing.layout`` is None; ``Routing.tags`` holds the
  tables in both layouts.

Monitor entries carry ``tag = n`` (the neuron's network index) in both layouts: they go to the FPGA,
never to a CAM, so they cannot collide with the tags above; they use the destination's 12-bit tag
field (n ≤ 4095).

**CAM** (per post-synaptic neuron ``n``, ≤ 64 entries): first one entry per input channel ``i`` with
``masks_in[i, n] > 0`` (ascending ``i``), then one per pre-synaptic neuron ``m`` with
``masks_rec[m, n] > 0`` (ascending ``m``). An entry is :class:`CamEntry` ``(tag, dendrite, mask)``:
dendrite AMPA (1024) for sign +1, GABA (512) for sign −1 (NMDA/SHUNT are never generated); the
mask's bits (bit b ↔ Iw_b, LSB first) become the samna ``weight`` list. Zero masks — including
zero float weights, which quantisation never allocates — get no entry. The configuration pads to 64
with empty synapses.

**SRAM** (per pre-synaptic neuron ``n``, ≤ 4 entries): entry 0 is the monitor entry
``Destination(core=(1,1,1,1), x_hop, y_hop = monitor_hop (−7, −7), tag = n)`` for **every** neuron
(the FPGA catches these; it is how outputs are read). Then one entry **per destination chip**
(ascending chip id; corrected defect 4 — the reference keeps only the last chip's entry): core mask =
the cores of that chip holding targets of ``n``, hop = position(dest chip) − position(chip of n),
tag = the tag of ``n`` on that chip (``C + n`` in the global layout). More than 4 entries is a ``fan_out`` violation.

**Input channel map** (merged over all cores, corrected defect 3): {channel i: destinations}. Each
channel with allocated synapses gets one :class:`Destination` per target chip (core mask of its
target cores, hop relative to ``spec.input_origin_chip``, tag of ``i`` on that chip: ``i`` in the
global layout); other channels map to an
empty tuple, so the reverse mapping restores all-zero input rows.

**Output channel map** (corrected defect 10, absent in the reference): {network neuron n:
:class:`OutputChannel` (tag, chip, core, core-local neuron)}. :func:`route` checks that every placed
neuron has its monitor entry, i.e. appears in the routing tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, NamedTuple, Optional

import numpy as np

from spikefleet.errors import expect
from spikefleet.hardware.dynapse2.constraints import Dendrite, HardwareLimitError, HardwareSpec, Violation, raise_if, validate

__all__ = ["CamEntry", "Destination", "OutputChannel", "Routing", "TagLayout", "tag_layout", "chip_tags", "route",
           "mask_to_bits", "bits_to_mask"]


class CamEntry(NamedTuple):
    """One CAM entry (one incoming synapse): the tag it listens to, the dendrite (samna enum int), the mask."""

    tag: int
    dendrite: int
    mask: int


class Destination(NamedTuple):
    """One SRAM entry / routed event header: 4-bit core mask (core 0 first), hops, tag."""

    core: tuple
    x_hop: int
    y_hop: int
    tag: int

    def hash24(self) -> int:
        """24-bit key (Çakal et al. 2024: samna classes and fields): core mask (4 bits, core 0 = LSB) | x_hop + 7 | y_hop + 7 | tag (12 bits)."""
        mask = sum(1 << k for k, on in enumerate(self.core) if on)
        return (mask << 20) | ((self.x_hop + 7) << 16) | ((self.y_hop + 7) << 12) | self.tag


class OutputChannel(NamedTuple):
    """Where the spikes of a network neuron come from and which monitor tag they carry."""

    neuron: int
    tag: int
    chip: int
    core: int
    local: int


class TagLayout(NamedTuple):
    """Tag ranges of a deployment: input channels, recurrent (neuron) tags and the tags reserved for outputs."""

    input: range
    recurrent: range
    output: range


def tag_layout(n_in: int, n_neurons: int, spec: Optional[HardwareSpec] = None) -> TagLayout:
    """The global (Çakal et al. 2024: memory allocation) layout: virtual [0, C), recurrent [C, C + N), reserved
    output [n_tags − N, n_tags); raises ``tags_exhausted`` unless ``C + 2N ≤ n_tags`` (else :func:`route`
    allocates tags per chip)."""
    spec = HardwareSpec() if spec is None else spec
    if n_in + 2 * n_neurons > spec.n_tags:
        raise HardwareLimitError([Violation(
            "tags_exhausted", f"global tag layout for {n_in} inputs and {n_neurons} neurons (n_in + 2N)", spec.n_tags,
            n_in + 2 * n_neurons, f"the global layout needs n_in + 2N ≤ {spec.n_tags}; route() allocates tags per "
            "chip instead", {})], "DYNAP-SE2 tag layout")
    return TagLayout(range(0, n_in), range(n_in, n_in + n_neurons), range(spec.n_tags - n_neurons, spec.n_tags))


def chip_tags(placement_chip, masks_in, masks_rec, spec: HardwareSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-chip tag tables ``(input [chips, C], neuron [chips, N])``, −1 where the source is not heard on
    that chip: the global layout when ``C + 2N ≤ n_tags``, else the per-chip numbering (module docstring)."""
    chip = np.asarray(placement_chip, np.int64)
    c, n = np.shape(masks_in)
    if c + 2 * n <= spec.n_tags:
        return np.tile(np.arange(c), (spec.n_chips, 1)), np.tile(c + np.arange(n), (spec.n_chips, 1))
    onehot = np.eye(spec.n_chips, dtype=np.int64)[chip]  # [N, chips]
    heard_in = ((np.asarray(masks_in) != 0).astype(np.int64) @ onehot).T > 0  # [chips, C]
    heard_rec = ((np.asarray(masks_rec) != 0).astype(np.int64) @ onehot).T > 0  # [chips, N]
    n_heard_in = heard_in.sum(1, keepdims=True)
    in_tag = np.where(heard_in, np.cumsum(heard_in, 1) - 1, -1)
    rec_tag = np.where(heard_rec, n_heard_in + np.cumsum(heard_rec, 1) - 1, -1)
    return in_tag, rec_tag


def mask_to_bits(mask: int, n_bits: int = 4) -> tuple:
    """Integer mask → samna weight list (bit b selects Iw_b; element 0 is the LSB)."""
    return tuple(bool((int(mask) >> b) & 1) for b in range(n_bits))


def bits_to_mask(bits) -> int:
    """samna weight list → integer mask."""
    return sum(1 << b for b, on in enumerate(bits) if on)


@dataclass(frozen=True, eq=False)
class Routing:
    """Routing tables of a placed, quantised network (layout in the module docstring).

    ``cam[n]``: tuple of :class:`CamEntry` of network neuron ``n``; ``sram[n]``: tuple of
    :class:`Destination` (monitor entry first); ``input_channel_map``: {channel: tuple of
    Destination}; ``output_channel_map``: {neuron: :class:`OutputChannel`}; ``layout``: the global
    :class:`TagLayout`, or None when tags are allocated per chip; ``tags``: ``(input [chips, C],
    neuron [chips, N])`` tag tables (−1: not heard on that chip), see :func:`chip_tags`.
    """

    n_in: int
    n_neurons: int
    layout: Optional[TagLayout]
    cam: tuple
    sram: tuple
    input_channel_map: Mapping[int, tuple]
    output_channel_map: Mapping[int, OutputChannel]
    tags: tuple = ()

    def cam_counts(self) -> np.ndarray:
        """[N] CAM entries used per neuron (= allocated incoming synapses)."""
        return np.array([len(c) for c in self.cam], np.int64)

    def sram_counts(self) -> np.ndarray:
        """[N] SRAM entries used per neuron (= 1 monitor + destination chips)."""
        return np.array([len(s) for s in self.sram], np.int64)


def _dendrite(sign: int) -> int:
    return int(Dendrite.ampa) if sign > 0 else int(Dendrite.gaba)


def route(placement, masks_in, masks_rec, signs_in, signs_rec, spec: Optional[HardwareSpec] = None) -> Routing:
    """Allocate tags, CAM and SRAM for neurons at ``placement`` (``chip``/``core``/``neuron`` arrays [N])
    with integer masks [C, N] / [N, N] and signs in {−1, 0, +1} (``w[pre, post]``).

    Raises :class:`~.constraints.HardwareLimitError` listing every violation (fan-in, fan-out, hops,
    tags, masks, signs, addresses) before building anything.
    """
    if spec is None:
        spec = getattr(placement, "spec", None) or HardwareSpec()
    masks_in, masks_rec = np.asarray(masks_in), np.asarray(masks_rec)
    expect(masks_in.ndim == 2 and masks_rec.ndim == 2, "masks", "2-D arrays [pre, post]",
           (masks_in.shape, masks_rec.shape))
    c, n = masks_in.shape
    raise_if(validate(spec, n_in=c, n_neurons=n, placement=placement, masks=(masks_in, masks_rec),
                      signs=(signs_in, signs_rec)), "DYNAP-SE2 routing")
    chip, core, local = (np.asarray(getattr(placement, f) if hasattr(placement, "chip") else placement[k], np.int64)
                         for k, f in enumerate(("chip", "core", "neuron")))
    signs_in, signs_rec = np.asarray(signs_in), np.asarray(signs_rec)
    layout = tag_layout(c, n, spec) if c + 2 * n <= spec.n_tags else None
    in_tag, rec_tag = chip_tags(chip, masks_in, masks_rec, spec)  # [chips, C], [chips, N]

    cam = []
    for j in range(n):
        cj = int(chip[j])
        entries = [CamEntry(int(in_tag[cj, i]), _dendrite(signs_in[i, j]), int(masks_in[i, j]))
                   for i in np.flatnonzero(masks_in[:, j])]
        entries += [CamEntry(int(rec_tag[cj, i]), _dendrite(signs_rec[i, j]), int(masks_rec[i, j]))
                    for i in np.flatnonzero(masks_rec[:, j])]
        cam.append(tuple(entries))

    gcore = chip * spec.cores_per_chip + core
    onehot = np.eye(spec.n_cores, dtype=np.int64)[gcore]  # [N, global cores]

    def destinations(hits_row: np.ndarray, src_chip: int, tags: np.ndarray) -> list[Destination]:
        out = []
        for ch in range(spec.n_chips):
            cores = hits_row[ch * spec.cores_per_chip:(ch + 1) * spec.cores_per_chip]
            if cores.any():
                out.append(Destination(tuple(bool(x) for x in cores), *spec.hop(src_chip, ch), int(tags[ch])))
        return out

    rec_hits = ((masks_rec != 0).astype(np.int64) @ onehot) > 0  # [N pre, global cores]
    mon = tuple(True for _ in range(spec.cores_per_chip))
    sram = [tuple([Destination(mon, *spec.monitor_hop, j)] + destinations(rec_hits[j], int(chip[j]), rec_tag[:, j]))
            for j in range(n)]
    in_hits = ((masks_in != 0).astype(np.int64) @ onehot) > 0
    input_map = {i: tuple(destinations(in_hits[i], spec.input_origin_chip, in_tag[:, i])) for i in range(c)}
    output_map = {j: OutputChannel(j, j, int(chip[j]), int(core[j]), int(local[j])) for j in range(n)}

    missing = [j for j in range(n) if not sram[j] or sram[j][0].tag != output_map[j].tag]
    if missing:  # defect 10: every mapped neuron must appear in the tables (cannot happen by construction)
        raise HardwareLimitError([Violation("placement_invalid", f"neurons {missing[:10]}", "a monitor SRAM entry",
                                            "none", "report this as a bug", {})], "DYNAP-SE2 routing")
    too_many = [j for j in range(n) if len(sram[j]) > spec.sram_per_neuron or len(cam[j]) > spec.cam_per_neuron]
    expect(not too_many, "routing tables", "within the CAM/SRAM sizes (validated above)", too_many[:10])
    return Routing(c, n, layout, tuple(cam), tuple(sram), MappingProxyType(input_map), MappingProxyType(output_map),
                   (in_tag, rec_tag))
