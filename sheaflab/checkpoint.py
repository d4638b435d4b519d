"""Checkpoints: a trainer or a network saved to one ``.npz`` file and read back without pickle.

``trainer.save(path)`` and ``SheafTrainer.load(path)`` / ``SGDTrainer.load(path)`` store and restore
everything a resumed ``fit`` needs to continue bit for bit as if it had never stopped: the weights
and the head, the optimizer's state (step count, momentum or Adam moments), the mini-batch RNG's
state, the History, the wall clock, the divergence reference, the warm-start cochains and the
hyperparameters. ``NeuralSheaf.save`` / ``NeuralSheaf.load`` store the network alone.

Format, version 1
-----------------
An uncompressed ``.npz`` archive (a zip of ``.npy`` members, :func:`numpy.savez`). Every member is a
plain numeric, bool or unicode array, so :func:`load` reads it with ``allow_pickle=False``: loading
an untrusted file never runs code (no pickle; only names from fixed lists are looked up).

==================  =========================================================================
member              content
==================  =========================================================================
``format``          0-d str, ``"sheaflab.sheaf"`` (a network) or ``"sheaflab.trainer"``
``version``         0-d int, ``1``
``meta``            0-d str, a JSON object (below)
``W_1`` ... ``W_L`` float64 ``(n_l, n_{l-1})`` weights
``b_1`` ... ``b_L`` float64 ``(n_l,)`` biases
==================  =========================================================================

A network file's ``meta`` is ``{"dims": [n_0, ..., n_L], "head": name, "sheaflab": version}``.
A trainer file adds to it

* ``"trainer"``: ``"SheafTrainer"`` or ``"SGDTrainer"``; ``"hyper"``: the constructor's
  arguments (``lr``, ``optimizer``, ``batch_size``, ``l2``, ``seed``, ``progress`` and, for the sheaf
  trainer, ``method``, ``tol``, ``max_iter``, ``n_jobs``, ``track_gap``, ``warm_start``);
* ``"optimizer"``: its name, hyperparameters and step count ``t``; ``"optimizer_slots"``: for each
  per-parameter state (``v`` for momentum, ``m`` and ``s`` for Adam) ``true`` when it exists;
* ``"rng"``: the bit generator's state (``numpy.random.Generator.bit_generator.state``; any array
  in it as ``{"ndarray": [...], "dtype": ...}``), ``"clock"``: seconds spent in ``fit``,
  ``"mse0"``: the initial training MSE the divergence test compares with (``null`` before a fit);
* ``"history"``: ``{"edges": [...]}``; ``"warm"``: ``null``, or ``{"key": the training set's
  fingerprint, "n": examples}``;

and the members ``opt.<slot>.<k>`` (float64, the slot's array for parameter ``k``: the weights
first, then the biases), ``history.<field>`` for every field of :attr:`History.FIELDS` (float64 or
int64, one entry per epoch; ``edge_discord`` is ``(epochs, n_edges)``), and when warm starts are kept
``warm.z_<l>`` ``(n, n_l)``, ``warm.a_<l>`` ``(n, n_l)`` and ``warm.seen`` ``(n,)`` bool.

JSON stores floats by their shortest round-trip representation and integers exactly, so the
scalars come back bit for bit. :func:`save` writes a temporary file next to ``path`` and renames
it, so a crash while saving never leaves a half-written file under ``path``. :func:`load` checks
everything before building anything: a truncated or corrupt file, another format version, another
kind of file or a network other than the one expected raise :class:`CheckpointError` (a
``ValueError``) that says what is wrong.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import heads
from .sheaf import NeuralSheaf

VERSION = 1
KINDS = {"sheaflab.sheaf": "a NeuralSheaf's weights (NeuralSheaf.save)",
         "sheaflab.trainer": "a trainer (trainer.save)"}
TRAINERS = ("SheafTrainer", "SGDTrainer")
# bit generators a file may name (looked up by name in numpy.random; nothing else is)
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: the message names the file and what is wrong."""


# ------------------------------------------------------------------------------------- writing
def _json_state(value):
    """A bit generator's state with its arrays turned into JSON-able dicts."""
    if isinstance(value, dict):
        return {k: _json_state(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _from_json_state(value):
    if isinstance(value, dict):
        if set(value) == {"ndarray", "dtype"}:
            return np.array(value["ndarray"], dtype=np.dtype(value["dtype"]))
        return {k: _from_json_state(v) for k, v in value.items()}
    return value


def _network_members(sheaf: NeuralSheaf, kind: str, meta: dict) -> dict:
    from . import __version__
    meta = {"dims": sheaf.dims, "head": sheaf.head, "sheaflab": __version__, **meta}
    members = {"format": np.array(kind), "version": np.array(VERSION, dtype=np.int64),
               "meta": np.array(json.dumps(meta, allow_nan=True))}
    for l, (W, b) in enumerate(zip(sheaf.weights, sheaf.biases), start=1):
        members[f"W_{l}"] = np.asarray(W, dtype=np.float64)
        members[f"b_{l}"] = np.asarray(b, dtype=np.float64)
    return members


def _write(path, members: dict) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **members)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_sheaf(sheaf: NeuralSheaf, path) -> Path:
    """Write ``sheaf``'s weights, biases and head to ``path`` (see the module docstring)."""
    return _write(path, _network_members(sheaf, "sheaflab.sheaf", {}))


def _history_members(history) -> dict:
    out = {}
    for name in history.FIELDS:
        col = getattr(history, name)
        out[f"history.{name}"] = np.asarray(col)
    return out


def save_trainer(trainer, path) -> Path:
    """Write everything a bit-identical resume of ``trainer`` needs to ``path``."""
    opt_scalars, opt_arrays = trainer.optimizer.get_state()
    warm = getattr(trainer, "_warm", None)
    meta = {"trainer": type(trainer).__name__ if type(trainer).__name__ in TRAINERS
            else next(c.__name__ for c in type(trainer).__mro__ if c.__name__ in TRAINERS),
            "hyper": trainer._hyperparameters(),
            "optimizer": opt_scalars,
            "optimizer_slots": {k: v is not None for k, v in opt_arrays.items()},
            "rng": _json_state(trainer._rng.bit_generator.state),
            "clock": float(trainer._clock),
            "mse0": None if trainer._mse0 is None else float(trainer._mse0),
            "history": {"edges": list(trainer.history.edges)},
            "warm": None if warm is None else {"key": warm.key, "n": int(warm.seen.shape[0])}}
    members = _network_members(trainer.sheaf, "sheaflab.trainer", meta)
    for slot, arrays in opt_arrays.items():
        for k, a in enumerate(arrays or []):
            members[f"opt.{slot}.{k}"] = a
    members.update(_history_members(trainer.history))
    if warm is not None:
        for l, z in enumerate(warm.z, start=1):
            members[f"warm.z_{l}"] = z
        for l, a in enumerate(warm.a, start=1):
            members[f"warm.a_{l}"] = a
        members["warm.seen"] = warm.seen
    return _write(path, members)


# ------------------------------------------------------------------------------------- reading
class _Reader:
    """The members of one checkpoint file, read eagerly and checked one by one."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            z = np.load(self.path, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise self.error("is a single .npy array, not a sheaflab .npz checkpoint")
            with z:
                self.members = {k: z[k] for k in z.files}   # reads (and CRC-checks) every member
        except FileNotFoundError:
            raise
        except CheckpointError:
            raise
        except ValueError as exc:
            if "pickle" in str(exc):
                raise self.error("holds pickled data, not a sheaflab .npz checkpoint: unpickling is "
                                 "refused, loading never runs code from a file") from None
            raise self.error(f"is truncated or corrupt ({exc})") from None
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise self.error(f"is truncated or corrupt ({type(exc).__name__}: {exc})") from None
        fmt = self.members.get("format")
        if fmt is None or fmt.dtype.kind != "U" or fmt.ndim != 0:
            raise self.error("has no 'format' entry: it is not a sheaflab checkpoint (written by "
                             "trainer.save or NeuralSheaf.save)")
        self.kind = str(fmt)
        if self.kind not in KINDS:
            raise self.error(f"has format {self.kind!r}, not one of {sorted(KINDS)}")
        version = self.members.get("version")
        if version is None or version.ndim != 0 or version.dtype.kind not in "iu":
            raise self.error("has no integer 'version' entry")
        if int(version) != VERSION:
            raise self.error(f"is format version {int(version)}; this sheaflab reads version "
                             f"{VERSION} only")
        try:
            self.meta = json.loads(str(self.get("meta", kind="U", shape=())))
        except json.JSONDecodeError as exc:
            raise self.error(f"has a corrupt 'meta' entry ({exc})") from None
        if not isinstance(self.meta, dict):
            raise self.error("has a 'meta' entry that is not a JSON object")

    def error(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.path} {what}")

    def field(self, name, types, what=None):
        """``meta[name]``, checked to be an instance of ``types`` (a bool never counts as a number)."""
        value = self.meta.get(name)
        types = types if isinstance(types, tuple) else (types,)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise self.error(f"has no valid {what or repr(name)} in its meta entry")
        return value

    def get(self, name: str, kind: str = "f", shape=None):
        """Member ``name``, checked: dtype kind (``f`` float, ``i`` integer, ``b`` bool, ``U`` str)
        and shape (a tuple; ``None`` for any)."""
        if name not in self.members:
            raise self.error(f"has no entry {name!r}: it is incomplete")
        arr = self.members[name]
        if arr.dtype.kind != kind and not (kind == "i" and arr.dtype.kind == "u") \
                and not (kind == "f" and arr.dtype.kind in "iu" and arr.size == 0):
            raise self.error(f"entry {name!r} has dtype {arr.dtype}, expected "
                             f"{ {'f': 'float64', 'i': 'an integer', 'b': 'bool', 'U': 'a string'}[kind] }")
        if shape is not None and tuple(arr.shape) != tuple(shape):
            raise self.error(f"entry {name!r} has shape {arr.shape}, expected {tuple(shape)}")
        return arr

    def network(self, dims=None, head=None) -> NeuralSheaf:
        file_dims = self.field("dims", list, "network dims")
        if len(file_dims) < 2 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                         for n in file_dims):
            raise self.error(f"has invalid network dims {file_dims!r}")
        file_head = self.field("head", str, "head")
        if file_head not in heads.HEADS:
            raise self.error(f"has an unknown head {file_head!r} (known: {', '.join(heads.HEADS)})")
        if dims is not None and list(dims) != file_dims:
            raise self.error(f"holds a network with dims {file_dims}, not the expected {list(dims)}")
        if head is not None and head != file_head:
            raise self.error(f"holds a network with the {file_head!r} head, not the expected {head!r}")
        L = len(file_dims) - 1
        Ws = [self.get(f"W_{l}", "f", (file_dims[l], file_dims[l - 1])) for l in range(1, L + 1)]
        bs = [self.get(f"b_{l}", "f", (file_dims[l],)) for l in range(1, L + 1)]
        try:
            return NeuralSheaf(Ws, bs, head=file_head)
        except (TypeError, ValueError) as exc:
            raise self.error(f"holds an invalid network: {exc}") from None


def load_sheaf(path, dims=None, head=None) -> NeuralSheaf:
    """The network stored in ``path`` by ``NeuralSheaf.save`` (or the trained network of a trainer
    checkpoint). ``dims`` / ``head``: what the caller expects; a file of another network raises."""
    return _Reader(path).network(dims, head)


def load_trainer(cls, path, dims=None, head=None):
    """A ``cls`` (SheafTrainer or SGDTrainer) in exactly the state ``save_trainer`` wrote."""
    from .optim import OPTIMIZERS, optimizer_from_state
    from .train import History, _WarmStarts

    r = _Reader(path)
    if r.kind != "sheaflab.trainer":
        raise r.error(f"holds {KINDS[r.kind]}, not a trainer: load it with NeuralSheaf.load and "
                      f"build a {cls.__name__} on it")
    kind = r.field("trainer", str, "trainer class")
    base = next((c.__name__ for c in cls.__mro__ if c.__name__ in TRAINERS), None)
    if kind != base:
        article = {"SGDTrainer": "an"}
        raise r.error(f"holds {article.get(kind, 'a')} {kind}, not {article.get(base, 'a')} {base}: "
                      f"load it with {kind}.load")
    sheaf = r.network(dims, head)
    hyper = r.field("hyper", dict, "hyperparameters")
    try:
        trainer = cls(sheaf, **hyper)
    except (TypeError, ValueError) as exc:
        raise r.error(f"holds hyperparameters the {kind} rejects: {exc}") from None

    # optimizer: name, hyperparameters, t, and its per-parameter arrays
    scalars = r.field("optimizer", dict, "optimizer state")
    slots = r.field("optimizer_slots", dict, "optimizer slots")
    if scalars.get("name") not in OPTIMIZERS:
        raise r.error(f"names an unknown optimizer {scalars.get('name')!r}")
    shapes = [p.shape for p in sheaf.parameters]
    arrays = {slot: [r.get(f"opt.{slot}.{k}", "f", s) for k, s in enumerate(shapes)] if present else None
              for slot, present in slots.items()}
    try:
        trainer.optimizer = optimizer_from_state(scalars, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise r.error(f"holds an invalid optimizer state ({exc})") from None
    if set(slots) != set(trainer.optimizer.slots):
        raise r.error(f"holds optimizer slots {sorted(slots)}, expected {list(trainer.optimizer.slots)} "
                      f"for {scalars['name']!r}")

    # the mini-batch RNG
    state = _from_json_state(r.field("rng", dict, "RNG state"))
    name = state.get("bit_generator")
    if name not in BIT_GENERATORS:
        raise r.error(f"names an unknown bit generator {name!r} (known: {', '.join(BIT_GENERATORS)})")
    try:
        bitgen = getattr(np.random, name)()
        bitgen.state = state
    except (KeyError, TypeError, ValueError) as exc:
        raise r.error(f"holds an invalid RNG state ({exc})") from None
    trainer._rng = np.random.Generator(bitgen)

    clock = r.field("clock", (int, float), "clock")
    trainer._clock = float(clock)
    mse0 = r.meta.get("mse0")
    if mse0 is not None and (isinstance(mse0, bool) or not isinstance(mse0, (int, float))):
        raise r.error("has an invalid 'mse0' in its meta entry")
    trainer._mse0 = None if mse0 is None else float(mse0)

    # History
    hmeta = r.field("history", dict, "history")
    edges = hmeta.get("edges")
    if edges != [e.name for e in sheaf.edges]:
        raise r.error(f"holds a history over the edges {edges}, not the network's "
                      f"{[e.name for e in sheaf.edges]}")
    history = History(edges)
    epochs = r.get("history.train_mse", "f").shape[0]
    for name in History.FIELDS:
        want = "i" if name in ("fast_iterations", "fast_unconverged") and epochs else "f"
        col = r.get(f"history.{name}", want)
        if name == "edge_discord":
            if col.shape != (epochs, len(edges)) and not (epochs == 0 and col.size == 0):
                raise r.error(f"entry 'history.edge_discord' has shape {col.shape}, expected "
                              f"({epochs}, {len(edges)})")
            history._columns[name] = [row.copy() for row in col.reshape(-1, len(edges))]
            continue
        if col.ndim != 1 or (col.shape[0] != epochs if not name.startswith("val_")
                             else col.shape[0] > epochs):
            raise r.error(f"entry 'history.{name}' has shape {col.shape}, expected ({epochs},): the "
                          "history's columns are out of step")
        history._columns[name] = col.tolist()
    trainer.history = history

    # warm starts
    warm = r.meta.get("warm")
    if warm is not None:
        if not hasattr(trainer, "_warm"):
            raise r.error("holds warm-start cochains, which an SGD trainer does not keep")
        if not isinstance(warm, dict) or not isinstance(warm.get("key"), str) or \
                not isinstance(warm.get("n"), int) or warm["n"] < 1:
            raise r.error("has an invalid 'warm' entry in its meta entry")
        n = warm["n"]
        w = _WarmStarts(warm["key"], sheaf, n)
        w.z = [r.get(f"warm.z_{l}", "f", (n, d)).copy() for l, d in enumerate(sheaf.dims[1:], start=1)]
        w.a = [r.get(f"warm.a_{l}", "f", (n, d)).copy() for l, d in enumerate(sheaf.dims[1:-1], start=1)]
        w.seen = r.get("warm.seen", "b", (n,)).copy()
        trainer._warm = w
    return trainer
