r"""Mapper: a trained :class:`~spikefleet.models.dynapse2.DynapSE2Network` → a placement on chips.

**Data layout.** Network neuron ``n`` (the index of ``w_in[:, n]``, ``w_rec[n, :]``) is placed at
``(chip[n], core[n], neuron[n])`` with a *core-local* neuron id 0..255 (corrected defect 3: the
reference indexes core neurons with global ids). Global core ``g = chip·4 + core``; chip ``g // 4``.

**Per-core parameters** (Çakal et al. 2024: mapper, Çakal et al. 2024: implementation notes). All 24 DynapSim parameters are one value per core on the
chip. With ``share="strict"`` (default) neurons are first grouped by their nominal parameters
(:func:`~.constraints.group_parameters`: equal within ``rtol`` of a group representative), and each
group gets its own cores, so neurons with different parameters never share a core; with an explicit
``core_of`` a core holding different parameter sets is a ``core_parameters_differ`` violation.
With ``share="average"`` (the reference's behaviour) neurons are placed regardless of parameters and
each core gets the **arithmetic mean** of its neurons' values; when that is lossy (relative range
above ``2·rtol``, e.g. a network carrying frozen mismatch) the spread is recorded in
``Placement.notes`` / ``spread`` and a ``UserWarning`` is issued.

**Cores** (corrected defect 2). A group of ``n_g`` neurons needs ``⌈n_g/256⌉`` cores (the reference
uses ``⌊N/256⌋ + 1``, so 256 neurons took 2 cores). ``n_cores`` may ask for more (at most one per
neuron): extra cores go one at a time to the group with the largest per-core load. Within a group
of ``n_g`` neurons on ``k`` cores, its ``i``-th neuron goes to core ``⌊i·k/n_g⌋``: balanced contiguous
blocks (sizes differ by at most 1) with indices always ``< k`` (the reference's ``⌊n/⌊N/k⌋⌋`` can
create an extra cluster). Cores are numbered group by group in order of first appearance and fill
chip 0 first, then chip 1, ….
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Optional

import numpy as np

from spikefleet.errors import expect, is_finite_number, is_positive_int
from spikefleet.neurons.dynapse2 import PARAMETER_NAMES, DynapSE2
from spikefleet.hardware.dynapse2.constraints import HardwareSpec, Violation, group_parameters, raise_if, validate

__all__ = ["Placement", "SHARE_MODES", "parameter_matrix", "min_cores", "plan", "place"]

#: how per-core parameters are formed (module docstring)
SHARE_MODES = ("strict", "average")


def _ro(a, dtype=np.int64):
    a = np.array(a, dtype)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Placement:
    """Where each network neuron lives and the shared parameters of each used core.

    ``chip``, ``core``, ``neuron`` [N]: chip id, core id within the chip, core-local neuron id.
    ``core_parameters``: {global core: {parameter: value}} for the 24 :data:`PARAMETER_NAMES`
    (arithmetic means over the core's neurons). ``spread``: {global core: {parameter: (max − min)/|mean|}}.
    ``groups`` [N]: parameter-group label of each neuron (all 0 with ``share="average"``).
    ``notes``: lossy averages and other adjustments, human-readable.
    """

    chip: np.ndarray
    core: np.ndarray
    neuron: np.ndarray
    spec: HardwareSpec
    core_parameters: Mapping[int, Mapping[str, float]]
    spread: Mapping[int, Mapping[str, float]]
    groups: np.ndarray
    share: str = "strict"
    rtol: float = 1e-3
    notes: tuple = ()

    def __post_init__(self):
        for f in ("chip", "core", "neuron", "groups"):
            object.__setattr__(self, f, _ro(getattr(self, f)))
        freeze = lambda d: MappingProxyType({int(g): MappingProxyType(dict(v)) for g, v in d.items()})  # noqa: E731
        object.__setattr__(self, "core_parameters", freeze(self.core_parameters))
        object.__setattr__(self, "spread", freeze(self.spread))
        object.__setattr__(self, "notes", tuple(self.notes))

    @property
    def n_neurons(self) -> int:
        return self.chip.size

    @property
    def global_core(self) -> np.ndarray:
        """[N] global core index ``chip·cores_per_chip + core`` (what :func:`~.quantize.quantize` takes)."""
        return self.chip * self.spec.cores_per_chip + self.core

    @property
    def used_cores(self) -> tuple[int, ...]:
        return tuple(int(g) for g in np.unique(self.global_core))

    @property
    def n_cores(self) -> int:
        return len(self.used_cores)

    @property
    def lossy(self) -> bool:
        """True when some core's neurons were averaged over a relative range above ``2·rtol``."""
        return any(v > 2 * self.rtol for s in self.spread.values() for v in s.values())

    def address(self, n: int) -> tuple[int, int, int]:
        """(chip, core, core-local neuron id) of network neuron ``n``."""
        return int(self.chip[n]), int(self.core[n]), int(self.neuron[n])

    def neurons_on(self, g: int) -> np.ndarray:
        """Network indices of the neurons on global core ``g`` (ascending = ascending local id)."""
        return np.flatnonzero(self.global_core == g)

    def per_neuron(self, name: str) -> np.ndarray:
        """[N] the value of parameter ``name`` each neuron gets on the chip (its core's value)."""
        return np.array([self.core_parameters[int(g)][name] for g in self.global_core])

    def summary(self) -> dict:
        """JSON-serialisable description (for configuration metadata)."""
        return {"n_neurons": self.n_neurons, "used_cores": list(self.used_cores), "share": self.share,
                "rtol": self.rtol, "n_groups": int(self.groups.max(initial=-1)) + 1, "lossy": self.lossy,
                "neurons_per_core": {str(g): int(self.neurons_on(g).size) for g in self.used_cores},
                "notes": list(self.notes)}


def parameter_matrix(neurons) -> np.ndarray:
    """[N, 24] float64 matrix of the :data:`PARAMETER_NAMES` of a :class:`DynapSE2` (or of a network's)."""
    neurons = getattr(neurons, "neurons", neurons)
    expect(isinstance(neurons, DynapSE2), "neurons", "a DynapSE2 population (or a DynapSE2Network)",
           type(neurons).__name__)
    return np.stack([np.asarray(getattr(neurons, p), np.float64) for p in PARAMETER_NAMES], axis=1)


def min_cores(n_neurons: int, spec: Optional[HardwareSpec] = None) -> int:
    """⌈N / neurons_per_core⌉ (corrected defect 2; the reference's ⌊N/256⌋ + 1 over-counts at multiples)."""
    spec = HardwareSpec() if spec is None else spec
    return -(-int(n_neurons) // spec.neurons_per_core)


def _distribute(sizes: list[int], total: Optional[int], per_core: int) -> list[int]:
    """Cores per group: ⌈size/per_core⌉ each, extra cores (up to ``total``) to the largest per-core load."""
    k = [-(-s // per_core) for s in sizes]
    if total is not None:
        while sum(k) < total:
            loads = [s / kk if kk < s else -1.0 for s, kk in zip(sizes, k)]
            best = int(np.argmax(loads))
            if loads[best] < 0:
                break
            k[best] += 1
    return k


def plan(net, spec: Optional[HardwareSpec] = None, *, n_cores: Optional[int] = None, core_of=None,
         share: str = "strict", rtol: float = 1e-3) -> tuple[Optional[Placement], list[Violation]]:
    """Compute a placement; returns ``(placement or None, violations)`` without raising for hardware limits.

    ``net``: a ``DynapSE2Network`` or a ``DynapSE2``. ``n_cores``: total cores to use (≥ the minimum,
    ≤ N). ``core_of``: explicit global core [N] per neuron (overrides the automatic placement; local
    ids follow network order within each core). Placement violations of the result (addresses,
    per-core parameter disagreement) come from :func:`~.constraints.validate`.
    """
    spec = HardwareSpec() if spec is None else spec
    expect(share in SHARE_MODES, "share", f"one of {SHARE_MODES}", share)
    expect(is_finite_number(rtol) and rtol >= 0, "rtol", "a number >= 0", rtol)
    values = parameter_matrix(net)
    n = values.shape[0]
    groups = group_parameters(values, rtol) if share == "strict" else np.zeros(n, np.int64)
    violations: list[Violation] = []
    if core_of is not None:
        g_of = np.asarray(core_of)
        expect(g_of.shape == (n,) and np.issubdtype(g_of.dtype, np.integer), "core_of",
               f"an integer array of {n} global core indices", g_of.shape)
        bad = (g_of < 0) | (g_of >= spec.n_cores)
        if bad.any():
            violations.append(Violation(
                "cores_exhausted", f"core_of ({int(bad.sum())} neurons, e.g. neuron {int(np.flatnonzero(bad)[0])})",
                f"global cores 0..{spec.n_cores - 1}", int(g_of[bad][0]),
                "use existing cores or more chips (HardwareSpec.n_chips)", {}))
            return None, violations
        counts = np.bincount(g_of, minlength=spec.n_cores)
        for g in np.flatnonzero(counts > spec.neurons_per_core):
            violations.append(Violation(
                "placement_invalid", f"chip {g // spec.cores_per_chip}, core {g % spec.cores_per_chip}",
                f"≤ {spec.neurons_per_core} neurons per core", int(counts[g]), "spread the neurons over more cores",
                {"core": int(g)}))
        if violations:
            return None, violations
    else:
        if n > spec.capacity:
            return None, violations  # validate() reports neurons_exceed_capacity
        labels = list(dict.fromkeys(groups.tolist()))
        sizes = [int((groups == lab).sum()) for lab in labels]
        need = sum(_distribute(sizes, None, spec.neurons_per_core))
        if n_cores is not None:
            expect(is_positive_int(n_cores) and need <= n_cores <= n, "n_cores",
                   f"an integer in {need}..{n} (minimum cores for {len(labels)} parameter group(s) .. one per neuron)",
                   n_cores)
        per_group = _distribute(sizes, n_cores, spec.neurons_per_core)
        if sum(per_group) > spec.n_cores:
            violations.append(Violation(
                "cores_exhausted", f"{len(labels)} parameter group(s) of sizes {sizes[:8]}{'…' if len(sizes) > 8 else ''}",
                spec.n_cores, sum(per_group),
                "each distinct parameter set needs its own cores: use fewer distinct parameter sets, more chips, "
                "fewer cores (n_cores), or share='average' to average parameters per core (lossy; use it for "
                "networks that carry frozen mismatch)", {}))
            return None, violations
        g_of = np.empty(n, np.int64)
        start = 0
        for lab, size, k in zip(labels, sizes, per_group):
            idx = np.flatnonzero(groups == lab)
            g_of[idx] = start + (np.arange(size) * k) // size
            start += k
    neuron = np.empty(n, np.int64)
    core_params, spread, notes = {}, {}, []
    for g in np.unique(g_of):
        idx = np.flatnonzero(g_of == g)
        neuron[idx] = np.arange(idx.size)
        block = values[idx]
        mean = block.mean(axis=0)
        rng = (block.max(axis=0) - block.min(axis=0)) / np.maximum(np.abs(mean), 1e-300)
        core_params[int(g)] = dict(zip(PARAMETER_NAMES, mean.tolist()))
        spread[int(g)] = dict(zip(PARAMETER_NAMES, rng.tolist()))
        lossy = [(p, r) for p, r in zip(PARAMETER_NAMES, rng) if r > 2 * rtol]
        if lossy:
            worst = ", ".join(f"{p} {r:.2%}" for p, r in sorted(lossy, key=lambda t: -t[1])[:4])
            notes.append(f"chip {g // spec.cores_per_chip}, core {g % spec.cores_per_chip}: {idx.size} neurons "
                         f"averaged over a relative range of {worst}{' …' if len(lossy) > 4 else ''}")
    placement = Placement(g_of // spec.cores_per_chip, g_of % spec.cores_per_chip, neuron, spec, core_params,
                          spread, groups, share, float(rtol), notes)
    params = {p: values[:, k] for k, p in enumerate(PARAMETER_NAMES)}
    violations += validate(spec, n_in=0, n_neurons=n, placement=placement, parameters=params, share=share,
                           rtol=rtol)
    violations = [v for v in violations if v.code != "tags_exhausted"]  # n_in unknown here; checked by deploy
    if share == "average" and notes:
        warnings.warn("per-core parameter averaging is lossy (Çakal et al. 2024: mapper): " + "; ".join(notes), UserWarning,
                      stacklevel=3)
    return placement, violations


def place(net, spec: Optional[HardwareSpec] = None, *, n_cores: Optional[int] = None, core_of=None,
          share: str = "strict", rtol: float = 1e-3) -> Placement:
    """:func:`plan`, raising :class:`~.constraints.HardwareLimitError` listing every violation."""
    spec = HardwareSpec() if spec is None else spec
    placement, violations = plan(net, spec, n_cores=n_cores, core_of=core_of, share=share, rtol=rtol)
    n = parameter_matrix(net).shape[0]
    if placement is None:
        violations = validate(spec, n_in=0, n_neurons=n) + violations
    raise_if([v for v in violations if v.code != "tags_exhausted"], "DYNAP-SE2 placement")
    return placement
