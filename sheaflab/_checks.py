"""Argument checks shared by the package: every message names the argument and the expected shape."""

from __future__ import annotations

import numpy as np


#: the largest magnitude :func:`as_batch` accepts in a batch: squared (the energies) it stays far
#: below double precision's largest number, with room for the weights' growth
MAX_ENTRY = 1e100


def as_batch(value, name: str, width: int | None = None) -> np.ndarray:
    """Return ``value`` as a finite float64 array of shape ``(B, width)`` with ``B >= 1``.

    Raises ``TypeError`` when ``value`` is not array-like and ``ValueError`` for a wrong shape,
    an empty batch, non-finite entries or entries larger than :data:`MAX_ENTRY` in magnitude. ``width=None`` accepts any number of columns.
    """
    want = f"(B, {width})" if width is not None else "(B, n)"
    if isinstance(value, (str, bytes, dict, set)) or value is None:
        raise TypeError(f"{name} must be an array of shape {want}, got {type(value).__name__}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array of shape {want}: {exc}") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape {want}, got an array of shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {arr.shape}); it needs at least one row")
    if width is not None and arr.shape[1] != width:
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    big = np.abs(arr).max()
    if big > MAX_ENTRY:
        raise ValueError(f"{name} has entries as large as {big:.3g}: the energies square the stalks, "
                         f"which leaves double precision (about 1.8e308); keep |{name}| below "
                         f"{MAX_ENTRY:.0e} (standardise it)")
    return arr


def positive(value, name: str, integer: bool = False, allow_zero: bool = False):
    """Check that a scalar hyperparameter is a finite positive number (or int)."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")
    if integer and not float(value).is_integer():
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return int(value) if integer else float(value)


def n_jobs(value, name: str = "n_jobs") -> int:
    """Check a joblib worker count: a non-zero integer (``-1``: all cores). ``TypeError`` for a
    non-integer (a string such as ``"2"`` included), ``ValueError`` for 0."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer (a worker count, or -1 for all cores); "
                        f"got {type(value).__name__}")
    if value == 0:
        raise ValueError(f"{name} must be a positive worker count or negative (-1: all cores); got 0")
    return int(value)


def instance(value, name: str, cls, what: str):
    """Check ``isinstance(value, cls)``; the ``TypeError`` says ``what`` was expected."""
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    return value


def choice(value, name: str, options):
    """Check that ``value`` is one of ``options`` (strings)."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def rng(seed, name: str = "seed") -> np.random.Generator:
    """``numpy.random.default_rng(seed)``, with an error that names the argument when numpy refuses
    the seed (a negative integer, a float, a string)."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name} must be a non-negative integer, a sequence of them, None or a "
                        f"numpy Generator; got {seed!r} ({exc})") from None
