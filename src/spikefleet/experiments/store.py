r"""The result store of an experiment: one SQLite database per output directory, plus a run lock.

Layout of an output directory::

    results.sqlite          the database (WAL mode: results.sqlite-wal / -shm beside it)
    checkpoints/<design>-seed<S>.sfc   trained designs (written atomically before their row)
    run.lock                the lock of the run using the directory (its PID inside; empty between runs)
    summary.txt, summary.json          the final table (rewritten at the end of every run)

Schema (``SCHEMA_VERSION = 1``)::

    CREATE TABLE meta  (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        -- schema_version, experiment (name), spec_hash (ExperimentSpec.hash()), spec_json
        -- (canonical spec), created_at, spikefleet_version
    CREATE TABLE runs  (run_id INTEGER PRIMARY KEY AUTOINCREMENT, pid INTEGER NOT NULL,
                        started_at TEXT NOT NULL, backend TEXT NOT NULL, workers INTEGER NOT NULL);
    CREATE TABLE units (
        unit_id      TEXT PRIMARY KEY,      -- "train/<design>/seed<S>" | "eval/<design>/seed<S>/<sweep>/<level>"
        experiment   TEXT NOT NULL,
        kind         TEXT NOT NULL CHECK (kind IN ('train', 'eval')),
        design       TEXT NOT NULL,         -- the method's name in the experiment file
        seed         INTEGER NOT NULL,
        sweep        TEXT NOT NULL,         -- '' for train units; mismatch | quant | noise | dead
        level        REAL NOT NULL,         -- 0 for train units
        checkpoint   TEXT,                  -- train: path relative to the output directory
        info_json    TEXT NOT NULL,         -- train: training info; eval: condition, gain, chips, trials
        metrics_json TEXT,                  -- eval: {metric: [value per chip]} (exact float64 reprs)
        summary_json TEXT,                  -- eval: {metric: Summary.to_dict()}
        seconds      REAL NOT NULL,         -- wall time of the unit in its worker
        cpu_seconds  REAL NOT NULL,         -- CPU time of the worker process for the unit
        run_id       INTEGER NOT NULL REFERENCES runs(run_id),
        finished_at  TEXT NOT NULL,
        UNIQUE (experiment, kind, design, seed, sweep, level));

Every unit is recorded by one ``INSERT`` in its own transaction (``BEGIN IMMEDIATE`` ...
``COMMIT``; ``synchronous = FULL``), so a killed run leaves each unit either fully recorded or
absent, and the primary key plus the UNIQUE constraint make recording a unit twice impossible
(:class:`StoreError`). A train unit's checkpoint is written atomically (temporary file, fsync,
rename) *before* its row is committed; a checkpoint without a row is simply redone.

Only the driver process writes (workers return results to it), and :class:`RunLock` keeps a
second driver out of the directory. The lock is an ``flock`` on ``run.lock`` holding the PID of
the run: the kernel drops it when the process dies (even by ``kill -9``), so a lock file left
by a dead PID is stale and is taken over with a message. The file itself stays (emptied) after a
run: deleting a lock file that another process may just have opened would let two runs in.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import sqlite3
from pathlib import Path

from spikefleet._version import __version__
from spikefleet.errors import OutputError, SpikefleetError
from spikefleet.experiments.spec import parse_experiment
from spikefleet.io import atomic_write_bytes, parse_json, to_jsonable

__all__ = ["ResultStore", "RunLock", "StoreError", "LockError", "ExperimentMismatchError", "read_stored_spec", "SCHEMA_VERSION",
           "DB_NAME", "LOCK_NAME"]

SCHEMA_VERSION = 1
#: file name of the result database in an output directory
DB_NAME = "results.sqlite"
#: file name of the run lock in an output directory
LOCK_NAME = "run.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, pid INTEGER NOT NULL,
    started_at TEXT NOT NULL, backend TEXT NOT NULL, workers INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS units (
    unit_id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('train', 'eval')),
    design TEXT NOT NULL,
    seed INTEGER NOT NULL,
    sweep TEXT NOT NULL,
    level REAL NOT NULL,
    checkpoint TEXT,
    info_json TEXT NOT NULL,
    metrics_json TEXT,
    summary_json TEXT,
    seconds REAL NOT NULL,
    cpu_seconds REAL NOT NULL,
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    finished_at TEXT NOT NULL,
    UNIQUE (experiment, kind, design, seed, sweep, level));
"""


class StoreError(SpikefleetError):
    """The result store is unusable or an operation on it would break its guarantees."""


class LockError(StoreError):
    """Another live run holds the output directory."""


class ExperimentMismatchError(StoreError):
    """The output directory holds results of a different experiment spec."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Exclusive use of an output directory by one process (``flock`` on ``run.lock``).

    ``acquire()`` raises :class:`LockError` naming the PID (and host) of the holder; a lock
    file whose PID is dead (no ``flock`` held) is taken over and ``taken_over`` holds that PID.
    """

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / LOCK_NAME
        self._fd: int | None = None
        self.taken_over: int | None = None

    def acquire(self) -> "RunLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # read-only or missing permissions: one clean line naming the directory
            raise OutputError(self.path, exc, action="create the run lock") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            os.close(fd)
            pid = holder[0] if holder else "?"
            host = f" on {holder[1]}" if len(holder) > 1 else ""
            raise LockError(f"{self.path.parent}: another run (PID {pid}{host}) is using this output directory; "
                            f"wait for it to finish, stop it (kill {pid}), or choose another --out") from None
        previous = os.pread(fd, 200, 0).decode(errors="replace").split()
        if previous and previous[0].isdigit() and int(previous[0]) != os.getpid():
            self.taken_over = int(previous[0])
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {_now()}\n".encode(), 0)
            os.fsync(fd)
        except OSError as exc:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise OutputError(self.path, exc, action="write the run lock") from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _write_failed(path: Path, exc: sqlite3.OperationalError) -> OutputError:
    """An sqlite write failure as :class:`OutputError` (the transaction was rolled back: recorded units stay)."""
    text = str(exc)
    code = (errno.ENOSPC if "full" in text else errno.EROFS if "readonly" in text or "read-only" in text
            else errno.EIO)
    error = OutputError(path, OSError(code, f"{text} (sqlite)"), action="record a result in")
    error.message += "; the units recorded so far are kept: fix the cause and run the same command again to resume"
    return error


def _dumps(value) -> str:
    """JSON with exact float reprs and sorted keys (:func:`~spikefleet.io.to_jsonable`: NumPy scalars/arrays
    become Python numbers/lists)."""
    return json.dumps(to_jsonable(value), sort_keys=True)


class ResultStore:
    """The database of one output directory, opened for ``spec`` (see the module docstring).

    ``ResultStore(out_dir, spec)`` creates the directory and schema on first use and otherwise
    checks the stored ``spec_hash``: a different experiment raises
    :class:`ExperimentMismatchError`. It does not lock; :func:`~spikefleet.experiments.runner.run_experiment`
    holds a :class:`RunLock` around it.
    """

    def __init__(self, out_dir: str | os.PathLike, spec):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / DB_NAME
        self.spec = spec
        self.experiment = spec.name
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._init(spec)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # UnicodeDecodeError: damaged TEXT values
            raise StoreError(f"{self.path}: not a usable result database ({exc}); move it away or choose "
                             "another --out") from None

    def _init(self, spec) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                rows = {"schema_version": str(SCHEMA_VERSION), "experiment": spec.name, "spec_hash": spec.hash(),
                        "spec_json": _dumps({k: v for k, v in spec.to_dict().items() if k != "output"}),
                        "created_at": _now(), "spikefleet_version": __version__}
                self.conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", rows.items())
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        if not meta:
            return
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise StoreError(f"{self.path}: result schema version {meta.get('schema_version')!r}, this spikefleet "
                             f"reads version {SCHEMA_VERSION}; use another --out")
        if meta.get("spec_hash") != spec.hash():
            try:
                old = json.loads(meta.get("spec_json", "{}"))
            except ValueError:  # a damaged stored spec: the hashes differ anyway
                old = {}
            old = old if isinstance(old, dict) else {}
            new = {k: v for k, v in json.loads(_dumps(spec.to_dict())).items() if k != "output"}
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ExperimentMismatchError(
                f"{self.dir}: holds results of experiment {meta.get('experiment')!r} with spec hash "
                f"{meta.get('spec_hash', '?')[:12]}, expected this spec's hash {spec.hash()[:12]} "
                f"(differences in: {', '.join(changed) or 'details'}); choose another --out, restore the "
                "original experiment file to resume, or delete the directory to start over")

    # ------------------------------------------------------------------------------- writing
    def begin_run(self, backend: str, workers: int) -> int:
        try:
            with self._transaction():
                cur = self.conn.execute("INSERT INTO runs (pid, started_at, backend, workers) VALUES (?, ?, ?, ?)",
                                        (os.getpid(), _now(), backend, workers))
        except sqlite3.OperationalError as exc:
            raise _write_failed(self.path, exc) from None
        self.run_id = int(cur.lastrowid)
        return self.run_id

    def _transaction(self):
        store = self

        class _Tx:
            def __enter__(self):
                store.conn.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, exc, tb):
                store.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")

        return _Tx()

    def _insert(self, unit, **columns) -> None:
        row = {"unit_id": unit.unit_id, "experiment": self.experiment, "kind": unit.kind, "design": unit.design,
               "seed": unit.seed, "sweep": unit.sweep, "level": float(unit.level), "run_id": self.run_id,
               "finished_at": _now(), **columns}
        sql = f"INSERT INTO units ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
        try:
            with self._transaction():
                self.conn.execute(sql, tuple(row.values()))
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"{self.path}: unit {unit.unit_id} is already recorded ({exc}); a unit is recorded "
                             "exactly once") from None
        except sqlite3.OperationalError as exc:  # disk full, read-only file system, I/O error
            raise _write_failed(self.path, exc) from None

    def record_train(self, unit, checkpoint_bytes: bytes, info: dict, seconds: float,
                     cpu_seconds: float = 0.0) -> Path:
        """Write the checkpoint atomically, then commit the unit's row; returns the checkpoint path."""
        if self.is_done(unit.unit_id):
            raise StoreError(f"{self.path}: unit {unit.unit_id} is already recorded; a unit is recorded exactly once")
        rel = Path("checkpoints") / f"{unit.design}-seed{unit.seed}.sfc"
        atomic_write_bytes(self.dir / rel, checkpoint_bytes)
        self._insert(unit, checkpoint=str(rel), info_json=_dumps(info), seconds=float(seconds),
                     cpu_seconds=float(cpu_seconds))
        return self.dir / rel

    def record_eval(self, unit, metrics: dict, summary: dict, info: dict, seconds: float,
                    cpu_seconds: float = 0.0) -> None:
        self._insert(unit, info_json=_dumps(info), metrics_json=_dumps(metrics), summary_json=_dumps(summary),
                     seconds=float(seconds), cpu_seconds=float(cpu_seconds))

    # ------------------------------------------------------------------------------- reading
    def is_done(self, unit_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM units WHERE unit_id = ?", (unit_id,)).fetchone() is not None

    def done_ids(self) -> set:
        return {r[0] for r in self.conn.execute("SELECT unit_id FROM units")}

    def checkpoint_path(self, design: str, seed: int) -> Path:
        row = self.conn.execute("SELECT checkpoint FROM units WHERE kind = 'train' AND design = ? AND seed = ?",
                                (design, seed)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: design {design!r} seed {seed} has no recorded training")
        path = self.dir / row[0]
        if not path.is_file():
            raise StoreError(f"{self.path}: checkpoint {path} of a recorded unit is missing; restore it or delete "
                             "the directory to start over")
        return path

    def units(self, kind: str | None = None) -> list[dict]:
        """All recorded units (JSON columns decoded), in unit_id order."""
        try:
            cur = self.conn.execute("SELECT * FROM units" + (" WHERE kind = ?" if kind else "") + " ORDER BY unit_id",
                                    (kind,) if kind else ())
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise StoreError(f"{self.path}: the recorded units cannot be read ({type(exc).__name__}: {exc}); the "
                             "database is damaged") from None
        out = []
        for row in rows:
            rec = dict(zip(names, row))
            for col in ("info_json", "metrics_json", "summary_json"):
                value = rec.pop(col)
                try:
                    rec[col[:-5]] = None if value is None else json.loads(value)
                except (ValueError, TypeError, RecursionError) as exc:
                    raise StoreError(f"{self.path}: unit {rec.get('unit_id')!r} has an unreadable {col} ({exc}); "
                                     "the database is damaged: delete that unit's row to redo it") from None
            out.append(rec)
        return out

    def raw_eval_metrics(self) -> dict:
        """``{unit_id: metrics_json text}``: the exact stored per-chip values (for comparisons)."""
        return dict(self.conn.execute("SELECT unit_id, metrics_json FROM units WHERE kind = 'eval'"))

    def close(self) -> None:
        self.conn.close()


def read_stored_spec(out_dir: str | os.PathLike):
    """The :class:`~spikefleet.experiments.spec.ExperimentSpec` recorded in ``out_dir``'s database
    (opened read-only, so this works while a run is writing). Raises :class:`StoreError` if
    ``out_dir`` holds no result database or an unreadable one."""
    path = Path(out_dir) / DB_NAME
    if not path.is_file():
        raise StoreError(f"{out_dir}: no experiment results here (expected {DB_NAME}); give the output directory "
                         "of a `spikefleet run`")
    try:
        # as_uri() percent-encodes '?', '#' and '%' in directory names (a bare f"file:{path}" would not)
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # UnicodeDecodeError: damaged TEXT values
        raise StoreError(f"{path}: not a usable result database ({type(exc).__name__}: {exc})") from None
    if meta.get("schema_version") != str(SCHEMA_VERSION) or not isinstance(meta.get("spec_json"), str):
        raise StoreError(f"{path}: result schema version {meta.get('schema_version')!r}, this spikefleet reads "
                         f"version {SCHEMA_VERSION}")
    return parse_experiment(parse_json(meta["spec_json"], f"{path}: stored spec_json", StoreError), str(path))
