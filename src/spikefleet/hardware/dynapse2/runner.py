r"""Running a deployed network on a DYNAP-SE2 board (Çakal et al. 2024: running on hardware): events in, monitor events out.

The host talks to the chips through an FPGA with a 1 µs clock (``dt_fpga``); the simulator uses
bins of ``dt`` (1 ms). The pure functions here need no hardware and are tested:

* :func:`raster_to_events` — input raster [T, C] → timestamped events. For bin ``t`` and every
  channel with a **non-zero count** (the count itself is ignored, as in the reference: a channel
  fires at most once per bin), each destination of the channel's input-map entry is sent at
  ``start + round(t·dt/dt_fpga) + r``, ``r`` the channel's rank among the active channels of the
  bin (serialising the events). More active channels than ticks per bin raise a ConfigError.
* :func:`control_events` — the events bounced through the FPGA to read its clock and to mark the
  end of a run (tag ``spec.control_tag`` = 2047, hops −7; the bounce comes back with x_hop −6).
* :func:`bin_events` — received monitor events (timestamps, tags) → raster [T', N_out] of counts in
  ``dt`` bins over [start, stop). Columns: the network neurons of the output channel map in index
  order (corrected defect 10: every deployed neuron has a column, silent ones too), or — without a
  map, as the reference — the distinct received tags in ascending order.
* :func:`discharge_configuration` — the "leaky" configuration (SOIF_LEAK_N, DEAM_ETAU_P,
  DEGA_ITAU_P, DENM_ETAU_P, DESC_ITAU_P at coarse 5, fine 255 on every core) applied between runs to
  discharge all capacitors.

:class:`DynapSE2Board` wraps a samna board (``samna`` imported lazily; needs a DYNAP-SE2 stack and
its bitfile). It is **not exercised by the tests** (no hardware); the exact event format of the
control bounce is from the spec, unverified here.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Mapping, NamedTuple, Optional

import numpy as np

from spikefleet.errors import expect
from spikefleet.hardware.dynapse2.config import to_samna
from spikefleet.hardware.dynapse2.constraints import HardwareSpec
from spikefleet.hardware.dynapse2.routing import Destination
from spikefleet.hardware.dynapse2.samna_alias import Dynapse2Configuration, Dynapse2Parameter
from spikefleet.hardware.dynapse2.samna_probe import import_samna

__all__ = ["Event", "raster_to_events", "control_events", "bin_events", "discharge_configuration",
           "DISCHARGE_BIASES", "DynapSE2Board", "find_boards"]

#: chip bias -> (coarse, fine) of the discharge configuration applied between runs
DISCHARGE_BIASES = {name: (5, 255) for name in ("SOIF_LEAK_N", "DEAM_ETAU_P", "DEGA_ITAU_P", "DENM_ETAU_P",
                                                "DESC_ITAU_P")}


class Event(NamedTuple):
    """One grid event: FPGA timestamp (ticks of dt_fpga) and its routing header."""

    timestamp: int
    destination: Destination


def _ticks_per_bin(dt: float, dt_fpga: float) -> int:
    expect(dt > 0 and dt_fpga > 0, "dt, dt_fpga", "positive times in seconds", (dt, dt_fpga))
    k = round(dt / dt_fpga)
    expect(k >= 1 and abs(k * dt_fpga - dt) <= 1e-9 * dt, "dt / dt_fpga", "an integer number of FPGA ticks per bin",
           dt / dt_fpga)
    return k


def raster_to_events(raster, input_channel_map: Mapping[int, tuple], *, dt: float = 1e-3, dt_fpga: float = 1e-6,
                     start: int = 0) -> list[Event]:
    """Input counts [T, C] → events sorted by timestamp (module docstring)."""
    x = np.asarray(raster)
    c = len(input_channel_map)
    expect(x.ndim == 2 and x.shape[1] == c, "raster", f"shape [T, {c}] (one column per input channel)", x.shape)
    expect(bool(np.all(np.isfinite(x)) and np.all(x >= 0)), "raster", "finite non-negative counts", "other values")
    per_bin = _ticks_per_bin(dt, dt_fpga)
    events = []
    for t in range(x.shape[0]):
        active = np.flatnonzero(x[t])
        expect(active.size <= per_bin, f"raster[{t}]", f"at most {per_bin} active channels per bin "
               "(events are serialised 1 tick apart)", int(active.size))
        base = start + t * per_bin
        for rank, ch in enumerate(active):
            events.extend(Event(base + rank, Destination(tuple(d.core), d.x_hop, d.y_hop, d.tag))
                          for d in input_channel_map[int(ch)])
    return events


def control_events(timestamp: int, spec: Optional[HardwareSpec] = None, n: int = 3) -> list[Event]:
    """``n`` control events at ``timestamp`` (tag ``spec.control_tag``, hops −7 → bounced by the FPGA)."""
    spec = HardwareSpec() if spec is None else spec
    d = Destination((True,) * spec.cores_per_chip, -spec.max_hop, -spec.max_hop, spec.control_tag)
    return [Event(int(timestamp) + i, d) for i in range(n)]


def bin_events(timestamps, tags, *, start: int, stop: int, dt: float = 1e-3, dt_fpga: float = 1e-6,
               output_channel_map: Optional[Mapping] = None) -> tuple[np.ndarray, tuple]:
    """Monitor events → (raster [T', N_out] float32 counts, column labels). Events outside
    [start, stop) and tags not in the output map (e.g. control events) are dropped."""
    ts, tg = np.asarray(timestamps, np.int64).ravel(), np.asarray(tags, np.int64).ravel()
    expect(ts.shape == tg.shape, "timestamps, tags", "arrays of equal length", (ts.shape, tg.shape))
    expect(stop >= start, "stop", f">= start = {start}", stop)
    per_bin = _ticks_per_bin(dt, dt_fpga)
    n_bins = -(-(stop - start) // per_bin)
    if output_channel_map is not None:
        labels = tuple(sorted(output_channel_map))
        col_of_tag = {output_channel_map[k].tag: i for i, k in enumerate(labels)}
    else:
        labels = tuple(int(t) for t in np.unique(tg[(ts >= start) & (ts < stop)]))
        col_of_tag = {t: i for i, t in enumerate(labels)}
    out = np.zeros((n_bins, len(labels)), np.float32)
    keep = (ts >= start) & (ts < stop) & np.isin(tg, list(col_of_tag))
    cols = np.array([col_of_tag[int(t)] for t in tg[keep]], np.int64)
    np.add.at(out, ((ts[keep] - start) // per_bin, cols), 1.0)
    return out, labels


def discharge_configuration(config):
    """The alias configuration with :data:`DISCHARGE_BIASES` set on every core (a HardwareConfig or a
    Dynapse2Configuration; returns a Dynapse2Configuration)."""
    alias = getattr(config, "configuration", config)
    expect(type(alias) is Dynapse2Configuration, "config", "a HardwareConfig or Dynapse2Configuration", type(alias))
    chips = []
    for chip in alias.chips:
        cores = []
        for core in chip.cores:
            params = dict(core.parameters)
            for name, (c, f) in DISCHARGE_BIASES.items():
                old = params.get(name, Dynapse2Parameter(type=name[-1], initial_type=name[-1]))
                params[name] = replace(old, coarse_value=c, fine_value=f)
            cores.append(replace(core, parameters=params))
        chips.append(replace(chip, cores=tuple(cores)))
    return Dynapse2Configuration(tuple(chips))


def _samna():
    return import_samna("DYNAP-SE2 board access")


def find_boards() -> list:
    """samna device infos whose type name contains "DYNAP-SE2" (needs samna)."""
    samna = _samna()
    return [d for d in samna.device.get_all_devices() if "DYNAP-SE2" in d.device_type_name]


class DynapSE2Board:
    """A DYNAP-SE2 stack running one :class:`~.config.HardwareConfig` (needs samna and hardware; untested).

    ``__call__(raster)`` applies the configuration, reads the FPGA clock with bounced control
    events, sends the input events, polls monitor events until the end marker returns (or
    ``duration + read_timeout``), discharges, and bins the output (:func:`bin_events`).
    """

    def __init__(self, device_info, config, *, bitfile: str, dt: float = 1e-3, dt_fpga: float = 1e-6):
        self._samna = _samna()
        self.config, self.dt, self.dt_fpga = config, dt, dt_fpga
        self.spec = config.spec
        self.board = self._samna.device.open_device(device_info)
        self.board.configure_opal_kelly(bitfile)
        self.model = self.board.get_model()
        self._app = to_samna(config)
        self._leak = to_samna(discharge_configuration(config))
        self.model.apply_configuration(self._leak)

    def _grid_event(self, e: Event):
        d2 = self._samna.dynapse2
        dest = d2.Dynapse2Destination()
        dest.core, dest.x_hop, dest.y_hop, dest.tag = list(e.destination.core), e.destination.x_hop, \
            e.destination.y_hop, e.destination.tag
        ev = d2.NormalGridEvent()
        ev.event, ev.timestamp = dest, int(e.timestamp)
        return ev

    def _is_bounce(self, ev) -> bool:
        d = ev.event
        return d.tag == self.spec.control_tag and d.x_hop == -self.spec.max_hop + 1 and d.y_hop == -self.spec.max_hop

    def fpga_time(self, timeout: float = 1.0) -> int:
        self.board.grid_bus_write_events([self._grid_event(e) for e in control_events(0, self.spec)])
        t_end = time.time() + timeout
        while time.time() < t_end:
            for ev in self.board.read_events():
                if self._is_bounce(ev):
                    return int(ev.timestamp)
            time.sleep(1e-3)
        raise TimeoutError("DYNAP-SE2: no control event came back from the FPGA (is the bitfile loaded?)")

    def __call__(self, raster, *, read_timeout: float = 60.0, offset: float = 0.1, poll_step: float = 1e-3):
        self.model.apply_configuration(self._app)
        start = self.fpga_time() + round(offset / self.dt_fpga)
        events = raster_to_events(raster, self.config.input_channel_map, dt=self.dt, dt_fpga=self.dt_fpga,
                                  start=start)
        stop = start + len(raster) * round(self.dt / self.dt_fpga)
        events += control_events(stop, self.spec)
        self.board.grid_bus_write_events([self._grid_event(e) for e in events])
        got, done = [], False
        t_end = time.time() + offset + len(raster) * self.dt + read_timeout
        while not done and time.time() < t_end:
            for ev in self.board.read_events():
                done = done or (self._is_bounce(ev) and ev.timestamp >= stop)
                got.append((int(ev.timestamp), int(ev.event.tag)))
            time.sleep(poll_step)
        self.model.apply_configuration(self._leak)
        ts, tags = (np.array([g[i] for g in got], np.int64) for i in (0, 1))
        out, labels = bin_events(ts, tags, start=start, stop=stop, dt=self.dt, dt_fpga=self.dt_fpga,
                                 output_channel_map=self.config.output_channel_map)
        return out, {}, {"output_events": got, "channel_map": labels, "start_time": start, "stop_time": stop,
                         "complete": done}
