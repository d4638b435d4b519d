"""Checkpoints: the file format of a trainer or a network, one ``.npz`` file read without pickle.

This module is the format only: it writes and reads members and a JSON ``meta`` object and knows no
class of sheaflab. Each class gives its own ``state()`` (the members and meta it needs) and
``from_state(state)`` (which checks them and builds the object), so the format never touches an
object's private names: :class:`~sheaflab.NeuralSheaf`, the trainers, their
:class:`~sheaflab.History` and their warm starts.

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
  trainer, ``method``, ``tol``, ``max_iter``, ``n_jobs``, ``track_gap``, ``warm_start``,
  ``gap_sample``);
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

from ._version import __version__

VERSION = 1
KINDS = {"sheaflab.sheaf": "a NeuralSheaf's weights (NeuralSheaf.save)",
         "sheaflab.trainer": "a trainer (trainer.save)"}
# bit generators a file may name (looked up by name in numpy.random; nothing else is)
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_DTYPES = {"f": "float64", "i": "an integer", "b": "bool", "U": "a string"}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: the message names the file and what is wrong."""


def rng_to_json(state):
    """A bit generator's state (``Generator.bit_generator.state``) with its arrays JSON-able."""
    if isinstance(state, dict):
        return {k: rng_to_json(v) for k, v in state.items()}
    if isinstance(state, np.ndarray):
        return {"ndarray": state.tolist(), "dtype": state.dtype.str}
    if isinstance(state, np.integer):
        return int(state)
    return state


def rng_from_json(value, state: "State") -> np.random.Generator:
    """The generator :func:`rng_to_json` described; an unknown bit generator or a bad state raises
    ``state.error``."""
    def arrays(v):
        if isinstance(v, dict):
            if set(v) == {"ndarray", "dtype"}:
                return np.array(v["ndarray"], dtype=np.dtype(v["dtype"]))
            return {k: arrays(x) for k, x in v.items()}
        return v
    value = arrays(value)
    name = value.get("bit_generator")
    if name not in BIT_GENERATORS:
        raise state.error(f"names an unknown bit generator {name!r} (known: {', '.join(BIT_GENERATORS)})")
    try:
        bitgen = getattr(np.random, name)()
        bitgen.state = value
    except (KeyError, TypeError, ValueError) as exc:
        raise state.error(f"holds an invalid RNG state ({exc})") from None
    return np.random.Generator(bitgen)


# ------------------------------------------------------------------------------------- writing
def write(path, kind: str, meta: dict, arrays: dict) -> Path:
    """Write one checkpoint: ``kind`` (a key of :data:`KINDS`), ``meta`` (JSON-able; the sheaflab
    version is added) and ``arrays`` (name -> numeric, bool or str array). Atomic: a temporary
    file next to ``path`` is renamed over it. Returns the path."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}; got {kind!r}")
    members = {"format": np.array(kind), "version": np.array(VERSION, dtype=np.int64),
               "meta": np.array(json.dumps({**meta, "sheaflab": __version__}, allow_nan=True)),
               **arrays}
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


# ------------------------------------------------------------------------------------- reading
class State:
    """The members and meta of one checkpoint, with checked accessors for ``from_state``.

    kind: the file's format (a key of :data:`KINDS`); meta: its JSON object; arrays: name -> array.
    Every accessor raises :class:`CheckpointError` naming the file (``where``) and what is wrong.
    """

    def __init__(self, kind: str, meta: dict, arrays: dict, where: str = "the checkpoint"):
        self.kind, self.meta, self.arrays, self.where = kind, meta, arrays, where

    def error(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.where} {what}")

    def field(self, name: str, types, what: str | None = None):
        """``meta[name]``, checked to be an instance of ``types`` (a bool never counts as a number)."""
        value = self.meta.get(name)
        types = types if isinstance(types, tuple) else (types,)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise self.error(f"has no valid {what or repr(name)} in its meta entry")
        return value

    def get(self, name: str, kind: str = "f", shape=None) -> np.ndarray:
        """Member ``name``, checked: dtype kind (``f`` float, ``i`` integer, ``b`` bool, ``U`` str;
        an empty integer array passes for float) and shape (a tuple; ``None`` for any)."""
        if name not in self.arrays:
            raise self.error(f"has no entry {name!r}: it is incomplete")
        arr = self.arrays[name]
        if arr.dtype.kind != kind and not (kind == "i" and arr.dtype.kind == "u") \
                and not (kind == "f" and arr.dtype.kind in "iu" and arr.size == 0):
            raise self.error(f"entry {name!r} has dtype {arr.dtype}, expected {_DTYPES[kind]}")
        if shape is not None and tuple(arr.shape) != tuple(shape):
            raise self.error(f"entry {name!r} has shape {arr.shape}, expected {tuple(shape)}")
        return arr


def _not_a_checkpoint(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path} {what}, so it is not a sheaflab checkpoint: those are .npz "
                           "archives written by trainer.save or NeuralSheaf.save")


def read(path) -> State:
    """Every member of the checkpoint at ``path`` (read eagerly, CRC-checked, never unpickled),
    its format and version checked; the classes' ``from_state`` check the rest."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise _not_a_checkpoint(path, "is a single .npy array")
        with z:
            members = {k: z[k] for k in z.files}
    except (FileNotFoundError, CheckpointError):
        raise
    except ValueError as exc:
        if "pickle" in str(exc):
            # numpy reads a file that is neither .npz nor .npy as a pickle, and refuses it
            raise _not_a_checkpoint(path, "is neither an .npz archive nor an .npy array (numpy "
                                    "would read it as pickled data, which is refused: loading "
                                    "never runs code from a file)") from None
        raise CheckpointError(f"{path} is truncated or corrupt ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise CheckpointError(f"{path} is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    fmt = members.pop("format", None)
    if fmt is None or fmt.dtype.kind != "U" or fmt.ndim != 0:
        raise _not_a_checkpoint(path, "has no 'format' entry")
    kind = str(fmt)
    if kind not in KINDS:
        raise CheckpointError(f"{path} has format {kind!r}, not one of {sorted(KINDS)}")
    version = members.pop("version", None)
    if version is None or version.ndim != 0 or version.dtype.kind not in "iu":
        raise CheckpointError(f"{path} has no integer 'version' entry")
    if int(version) != VERSION:
        raise CheckpointError(f"{path} is format version {int(version)}; this sheaflab reads "
                              f"version {VERSION} only")
    state = State(kind, {}, members, str(path))
    try:
        meta = json.loads(str(state.get("meta", kind="U", shape=())))
    except json.JSONDecodeError as exc:
        raise state.error(f"has a corrupt 'meta' entry ({exc})") from None
    if not isinstance(meta, dict):
        raise state.error("has a 'meta' entry that is not a JSON object")
    state.meta = meta
    del members["meta"]
    return state
