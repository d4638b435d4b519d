"""Training: the sheaf trainer (Algorithm 4) and the SGD baseline, sharing one loop and one History.

Both trainers share one loop (:class:`_Trainer`): the same seed gives the same mini-batch order, the
same optimizers (:mod:`sheaflab.optim`) apply the update, and the same per-epoch diagnostics land in a
:class:`History`. They differ only in where a batch's :class:`~sheaflab.local_rule.BatchStats` (its
gradient sums and diagnostics) come from:

* :class:`SheafTrainer`: fast phase (each example's two-sided equilibrium), then the local rule;
* :class:`SGDTrainer`: one forward and one backward pass through the network (plain numpy backprop).

Faults. The unit of progress is the epoch. ``fit`` snapshots, at the start of every epoch, all the
state an epoch changes (weights, optimizer state, RNG state, History, wall clock, warm-start
cochains) and restores it when anything escapes the epoch: a ``KeyboardInterrupt`` (the stop
button), :class:`TrainingDiverged`, :class:`~sheaflab.parallel.WorkersLost` or any other error. The
trainer is then exactly at the end of its last completed epoch (no half-applied update, every piece
of state in step with the History), and ``fit(X, Y, until=total)`` (or ``epochs=total -
trainer.history.epochs``) continues to the same result as an uninterrupted run. The snapshot costs
one copy of that state per epoch (weights and optimizer moments, and the warm-start cochains,
``2 (n_1 + ... + n_{L-1}) + n_L`` floats per training example, copied into a buffer kept for it).

``trainer.save(path)`` / ``SheafTrainer.load(path)`` / ``SGDTrainer.load(path)`` write and read the
same state to a ``.npz`` file for a bit-identical resume in another process
(:mod:`sheaflab.checkpoint` documents the format).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ._alloc import tune_allocator
from ._checks import choice, instance, n_jobs as check_n_jobs, positive, rng as make_rng
from .augment import add_reluctance_gradients
from .backprop import backprop_sums
from . import checkpoint
from .direct import scalar_case
from .local_rule import BatchStats
from .optim import OPTIMIZERS, make_optimizer, optimizer_from_state
from .parallel import BREAK_EVEN, dask_client, fast_phase
from .sheaf import Cochain, NeuralSheaf
from .solve import METHODS as _REACHED, equilibrium
from .timescales import equilibrium_gaps

# an epoch whose training MSE exceeds the initial one by this factor counts as diverged
EXPLOSION = 1e6
# and, for a classification head, when its training loss (cross-entropy) exceeds the initial one by
# this factor: the cross-entropy grows linearly in the logits where the MSE grows quadratically, so
# both say that the outputs grew about a thousandfold
EXPLOSION_CE = 1e3
METHODS = _REACHED + ("global",)   # the trainer can also use the global minimum


def epochs_to(curve, target: float) -> int | None:
    """First epoch (1-based) at which ``curve`` (one loss per epoch) is at or below ``target``;
    None if it never gets there."""
    hit = np.flatnonzero(np.asarray(curve) <= target)
    return int(hit[0]) + 1 if hit.size else None


class TrainingDiverged(FloatingPointError):
    """Raised when the weights or the loss blow up; ``history`` keeps every epoch run before that."""

    def __init__(self, message: str, history: "History"):
        super().__init__(message)
        self.history = history


class _Column:
    """One per-epoch column of a :class:`History`: appended as a list, read as an array.

    kind: "f" (a float per epoch), "i" (an integer), or "edges" (a row of one float per edge);
    optional: the column may stay empty (the validation columns when no validation set is given).
    A new column is one line in :class:`History` (and the value its trainers pass to ``append``).
    """

    def __init__(self, doc: str, kind: str = "f", optional: bool = False):
        self.__doc__, self.kind, self.optional = doc, kind, optional

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, history, owner=None):
        if history is None:
            return self
        values = np.array(history.column(self.name))
        return values.reshape(-1, len(history.edges)) if self.kind == "edges" else values

    def from_array(self, state, col, epochs: int, n_edges: int) -> list:
        """The column's list from a checkpoint's array ``col``, checked against ``epochs`` rows."""
        if self.kind == "edges":
            if col.shape != (epochs, n_edges) and not (epochs == 0 and col.size == 0):
                raise state.error(f"entry 'history.{self.name}' has shape {col.shape}, expected "
                                  f"({epochs}, {n_edges})")
            return [row.copy() for row in col.reshape(-1, n_edges)]
        if col.ndim != 1 or (col.shape[0] > epochs if self.optional else col.shape[0] != epochs):
            raise state.error(f"entry 'history.{self.name}' has shape {col.shape}, expected "
                              f"({epochs},): the history's columns are out of step")
        return col.tolist()


class History:
    """Per-epoch record of a fit; ``fit`` appends to it when called again.

    edges: names of the network's edges in path order (the columns of ``edge_discord``).
    Every other field is an array with one entry (or row) per epoch; see each field's docstring.
    The loss is one quantity with one name for both trainers: ``train_loss`` (and ``val_loss``).
    """

    train_mse = _Column("(epochs,) forward-pass ``mean((f(x) - y)^2)`` on the training set after "
                        "each epoch (``f`` the predicted probabilities for a classification head).")
    val_mse = _Column("(epochs,) the same on the validation set; empty when none was given.",
                      optional=True)
    train_loss = _Column("(epochs,) the head's loss of the forward pass on the training set after each "
                         "epoch: the MSE for the identity head, the mean cross-entropy for sigmoid / "
                         "softmax; the same quantity for both trainers.")
    val_loss = _Column("(epochs,) the same on the validation set; empty when none was given.",
                       optional=True)
    train_accuracy = _Column("(epochs,) fraction of training examples classified correctly after each "
                             "epoch (sigmoid / softmax heads; NaN for the identity head).")
    val_accuracy = _Column("(epochs,) the same on the validation set; empty when none was given.",
                           optional=True)
    residual = _Column("(epochs,) mean relaxed energy R (the energy of the reached equilibrium) over "
                       "the epoch's examples, what the sheaf trainer descends; NaN for SGD, which "
                       "relaxes nothing.")
    edge_discord = _Column("(epochs, n_edges) mean discord norm per edge over the epoch's examples "
                           "(SGD: its forward-pass cochain, which disagrees only at the output).",
                           kind="edges")
    fast_iterations = _Column("(epochs,) fast-phase iterations summed over the epoch's examples "
                              "(0 for SGD).", kind="i")
    fast_unconverged = _Column("(epochs,) examples whose fast phase did not converge.", kind="i")
    wall_time = _Column("(epochs,) cumulative seconds spent in ``fit``.")
    lambda_min = _Column("(epochs,) mean spectral gap of ``L_free`` over the training set at the end "
                         "of the epoch, when the sheaf trainer tracks it (``track_gap``); NaN otherwise.")

    #: the column names in order, read off the columns above (set below the class)
    FIELDS: tuple = ()

    def __init__(self, edges: list):
        self.edges = list(edges)
        self._columns = {name: [] for name in self.FIELDS}

    def column(self, name: str) -> list:
        """The list behind field ``name`` (one entry per epoch; the attribute gives it as an array)."""
        return self._columns[name]

    def lengths(self) -> dict:
        """The length of every column now, for :meth:`truncate` (the trainer's rollback)."""
        return {name: len(col) for name, col in self._columns.items()}

    def truncate(self, lengths: dict) -> None:
        """Drop whatever was appended after :meth:`lengths` returned ``lengths``."""
        for name, col in self._columns.items():
            del col[lengths[name]:]

    def state(self) -> tuple:
        """``(meta, arrays)`` for a checkpoint: the edges, and ``history.<field>`` per field."""
        return ({"edges": list(self.edges)},
                {f"history.{name}": np.asarray(getattr(self, name)) for name in self.FIELDS})

    @classmethod
    def from_state(cls, state, meta, edges: list) -> "History":
        """The History a checkpoint's ``state`` holds (``meta``: its history entry), checked
        against the network's ``edges``."""
        if meta.get("edges") != edges:
            raise state.error(f"holds a history over the edges {meta.get('edges')}, not the "
                              f"network's {edges}")
        history = cls(edges)
        epochs = state.get("history.train_mse", "f").shape[0]
        for name in cls.FIELDS:
            column = getattr(cls, name)
            col = state.get(f"history.{name}", "i" if column.kind == "i" and epochs else "f")
            history._columns[name] = column.from_array(state, col, epochs, len(edges))
        return history

    def append(self, **row) -> None:
        """Add one epoch: a value for every field (``None`` for the ``val_*`` fields when there is no
        validation set), so the columns never get out of step."""
        if set(row) != set(self.FIELDS):
            unknown, missing = sorted(set(row) - set(self.FIELDS)), sorted(set(self.FIELDS) - set(row))
            raise ValueError(f"a History row needs exactly the fields {self.FIELDS}; unknown "
                             f"{unknown}, missing {missing}")
        for name, value in row.items():
            if value is not None:
                self._columns[name].append(value)

    @property
    def epochs(self) -> int:
        return len(self._columns["train_mse"])

    def epochs_to(self, mse: float, metric: str = "train_mse") -> int | None:
        """First epoch (1-based) whose ``metric`` (a per-epoch column, by default the training MSE;
        ``"train_loss"`` for the head's loss) is at or below ``mse``; None if never."""
        if metric not in self.FIELDS or metric == "edge_discord":
            raise ValueError(f"metric must be a per-epoch History column such as 'train_mse' or "
                             f"'train_loss'; got {metric!r}")
        return epochs_to(getattr(self, metric), mse)

    def time_to(self, mse: float, metric: str = "train_mse") -> float | None:
        """Cumulative wall time at the first epoch whose ``metric`` reaches ``mse``; None if never."""
        k = self.epochs_to(mse, metric)
        return float(self.wall_time[k - 1]) if k else None

    def __repr__(self) -> str:
        return f"History({self.epochs} epochs, edges {self.edges})"


History.FIELDS = tuple(name for name, v in vars(History).items() if isinstance(v, _Column))


class _Trainer:
    """Shared training loop; subclasses provide ``_batch(X, Y, idx) -> BatchStats`` (``idx``: the
    batch's rows of the training set, a slice or an index array)."""

    label = "trainer"          # the key in TRAINERS
    title = "trainer"          # what a figure or a table calls it

    def __init__(self, sheaf: NeuralSheaf, lr=0.01, optimizer="adam", batch_size=None, l2=0.0,
                 seed=0, progress=None):
        instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
        self.sheaf = sheaf.copy()            # the trainer trains its own copy: read ``.sheaf``
        self.lr = positive(lr, "lr")
        self.optimizer = make_optimizer(optimizer, self.lr)
        self.batch_size = None if batch_size is None else positive(batch_size, "batch_size", integer=True)
        self.l2 = positive(l2, "l2", allow_zero=True)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}")
        self.seed = seed
        self.progress = progress
        self._rng = make_rng(seed)
        self.history = History([e.name for e in self.sheaf.edges])
        self._clock = 0.0
        self._mse0 = None
        self._loss0 = None     # the initial training loss (classification heads; set by fit, not saved)

    @property
    def params(self) -> list:
        return self.sheaf.parameters

    def _regularise(self, grads: list) -> list:
        """Add the gradient of the L2 term; the sheaf trainer reads it off reluctance edges."""
        return grads

    def fit(self, X, Y, epochs: int | None = None, X_val=None, Y_val=None, progress=None,
            until: int | None = None) -> History:
        """Train for ``epochs`` passes over ``(X, Y)`` (shapes (n, n_0), (n, n_L)), or, with ``until``,
        until the History holds ``until`` epochs (none when it already does); give one of the two.
        Continues from the current weights, optimizer state and batch order when called again.
        Returns the History.

        An interrupt or an error during an epoch rolls the trainer back to the end of its last
        completed epoch (see the module docstring), so ``fit(X, Y, until=total)`` after a stop
        ends where one uninterrupted ``fit`` to ``total`` epochs would have ended.
        """
        X = self.sheaf.check_input(X, "X")
        Y = self.sheaf.check_target(Y, X.shape[0], "Y")
        if (X_val is None) != (Y_val is None):
            raise ValueError("X_val and Y_val must be given together")
        if X_val is not None:
            X_val = self.sheaf.check_input(X_val, "X_val")
            Y_val = self.sheaf.check_target(Y_val, X_val.shape[0], "Y_val")
        if until is not None:
            if epochs is not None:
                raise ValueError("give epochs (how many more) or until (how many in all), not both")
            epochs = positive(until, "until", integer=True, allow_zero=True) - self.history.epochs
            if epochs <= 0:
                return self.history
        if epochs is None:
            raise TypeError("fit needs epochs (how many more passes) or until (how many epochs in all)")
        epochs = positive(epochs, "epochs", integer=True)
        tune_allocator()
        n = X.shape[0]
        B = n if self.batch_size is None else min(self.batch_size, n)
        if self._mse0 is None or self._loss0 is None:     # the divergence checks' yardsticks
            mse0, loss0, _ = self.sheaf.metrics(X, Y, check=False)
            self._mse0 = mse0 if self._mse0 is None else self._mse0     # a resumed fit keeps its own
            self._loss0 = loss0 if self._loss0 is None else self._loss0
        self._start_fit(X, Y)
        show = self.progress if progress is None else progress
        bar = tqdm(range(epochs), desc=self.label, disable=None if show is None else not show,
                   mininterval=0.5, leave=False)
        try:
            for epoch in bar:
                snapshot = self._snapshot()
                try:
                    mse = self._epoch(X, Y, X_val, Y_val, n, B, epoch)
                except BaseException as exc:
                    self._restore(snapshot)
                    exc.add_note(f"sheaflab: the {self.label} trainer was rolled back to the end of "
                                 f"its last completed epoch ({self.history.epochs}); "
                                 f"fit(X, Y, until=...) resumes from there")
                    raise
                if epoch % 50 == 0:
                    bar.set_postfix(mse=f"{mse:.4g}", refresh=False)
        finally:
            bar.close()
        unconverged = int(self.history.fast_unconverged[-epochs:].sum())
        if unconverged:
            warnings.warn(f"{self.label}: {unconverged} fast-phase solves did not converge during this "
                          "fit (see history.fast_unconverged); raise max_iter or tol", RuntimeWarning,
                          stacklevel=2)
        return self.history

    def _epoch(self, X, Y, X_val, Y_val, n, B, epoch) -> float:
        """One pass over the training set and its History row; returns the training MSE."""
        t0 = time.perf_counter()
        order = self._rng.permutation(n) if B < n else None
        total = None
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                for start in range(0, n, B):
                    idx = slice(start, start + B) if order is None else order[start:start + B]
                    stats = self._batch(X[idx], Y[idx], idx)
                    self.optimizer.step(self.params, self._regularise(stats.grad_W + stats.grad_b))
                    total = stats if total is None else total + stats
                mse, loss, acc = self.sheaf.metrics(X, Y, check=False)
                val = (None,) * 3 if X_val is None else self.sheaf.metrics(X_val, Y_val, check=False)
        except FloatingPointError as exc:
            # before the first step the weights are the initial ones: the data, not lr, are the cause
            first = self.history.epochs == 0 and total is None
            self._diverged(epoch, f"the fast phase failed ({exc})", X if first else None)
        self._clock += time.perf_counter() - t0
        if not np.isfinite(mse) or mse > EXPLOSION * max(self._mse0, 1e-12):
            self._diverged(epoch, f"training MSE reached {mse:.3g}")
        if self.sheaf.output_head.classifies and not (loss <= EXPLOSION_CE * max(self._loss0, 1e-12)):
            self._diverged(epoch, f"training cross-entropy reached {loss:.3g} (from {self._loss0:.3g})")
        gap = self._gap(X, Y)
        self.history.append(train_mse=mse, val_mse=val[0], train_loss=loss, val_loss=val[1],
                            train_accuracy=acc, val_accuracy=val[2], residual=self._residual(total),
                            edge_discord=total.edge_discord,
                            fast_iterations=total.iterations, fast_unconverged=total.n_unconverged,
                            wall_time=self._clock, lambda_min=gap)
        return mse

    # ------------------------------------------------------------------ state: rollback, files
    def _snapshot(self) -> dict:
        """Everything an epoch changes, copied (see :meth:`_restore`)."""
        return {"params": [p.copy() for p in self.params], "optimizer": self.optimizer.get_state(),
                "rng": self._rng.bit_generator.state, "clock": self._clock,
                "history": self.history.lengths()}

    def _restore(self, snapshot: dict) -> None:
        """Put the trainer back in the state :meth:`_snapshot` copied (the arrays in place)."""
        for p, saved in zip(self.params, snapshot["params"]):
            p[...] = saved
        self.optimizer.set_state(*snapshot["optimizer"])
        self._rng.bit_generator.state = snapshot["rng"]
        self._clock = snapshot["clock"]
        self.history.truncate(snapshot["history"])

    def _hyperparameters(self) -> dict:
        """The constructor's arguments, JSON-able (what :meth:`save` stores to rebuild it)."""
        return {"lr": self.lr, "optimizer": self.optimizer.name, "batch_size": self.batch_size,
                "l2": self.l2, "seed": None if self.seed is None else int(self.seed),
                "progress": self.progress}

    def state(self) -> tuple:
        """``(meta, arrays)`` of a checkpoint (:mod:`sheaflab.checkpoint` documents the format):
        the network, the hyperparameters, the optimizer, the RNG, the clock, the divergence
        reference, the History and (sheaf trainer) the warm starts."""
        meta, arrays = self.sheaf.state()
        opt_scalars, opt_arrays = self.optimizer.get_state()
        hist_meta, hist_arrays = self.history.state()
        meta.update(trainer=self._file_name, hyper=self._hyperparameters(), optimizer=opt_scalars,
                    optimizer_slots={k: v is not None for k, v in opt_arrays.items()},
                    rng=checkpoint.rng_to_json(self._rng.bit_generator.state),
                    clock=float(self._clock), history=hist_meta,
                    mse0=None if self._mse0 is None else float(self._mse0))
        for slot, values in opt_arrays.items():
            for k, a in enumerate(values or []):
                arrays[f"opt.{slot}.{k}"] = a
        arrays.update(hist_arrays)
        return meta, arrays

    @classmethod
    def from_state(cls, state: checkpoint.State, dims=None, head=None):
        """The trainer a checkpoint's :class:`~sheaflab.checkpoint.State` holds, every entry checked."""
        if state.kind != "sheaflab.trainer":
            raise state.error(f"holds {checkpoint.KINDS[state.kind]}, not a trainer: load it with "
                              f"NeuralSheaf.load and build a {cls.__name__} on it")
        kind = state.field("trainer", str, "trainer class")
        if kind != cls._file_name:
            article = {"SGDTrainer": "an"}
            raise state.error(f"holds {article.get(kind, 'a')} {kind}, not "
                              f"{article.get(cls._file_name, 'a')} {cls._file_name}: load it with "
                              f"{kind}.load")
        sheaf = NeuralSheaf.from_state(state, dims, head)
        hyper = state.field("hyper", dict, "hyperparameters")
        try:
            trainer = cls(sheaf, **hyper)
        except (TypeError, ValueError) as exc:
            raise state.error(f"holds hyperparameters the {kind} rejects: {exc}") from None
        scalars = state.field("optimizer", dict, "optimizer state")
        slots = state.field("optimizer_slots", dict, "optimizer slots")
        if scalars.get("name") not in OPTIMIZERS:
            raise state.error(f"names an unknown optimizer {scalars.get('name')!r}")
        shapes = [p.shape for p in sheaf.parameters]
        arrays = {slot: [state.get(f"opt.{slot}.{k}", "f", sh) for k, sh in enumerate(shapes)]
                  if present else None for slot, present in slots.items()}
        try:
            trainer.optimizer = optimizer_from_state(scalars, arrays)
        except (KeyError, TypeError, ValueError) as exc:
            raise state.error(f"holds an invalid optimizer state ({exc})") from None
        if set(slots) != set(trainer.optimizer.slots):
            raise state.error(f"holds optimizer slots {sorted(slots)}, expected "
                              f"{list(trainer.optimizer.slots)} for {scalars['name']!r}")
        trainer._rng = checkpoint.rng_from_json(state.field("rng", dict, "RNG state"), state)
        trainer._clock = float(state.field("clock", (int, float), "clock"))
        mse0 = state.meta.get("mse0")
        if mse0 is not None and (isinstance(mse0, bool) or not isinstance(mse0, (int, float))):
            raise state.error("has an invalid 'mse0' in its meta entry")
        trainer._mse0 = None if mse0 is None else float(mse0)
        trainer.history = History.from_state(state, state.field("history", dict, "history"),
                                             [e.name for e in sheaf.edges])
        trainer._restore_extra(state)
        return trainer

    def _restore_extra(self, state) -> None:
        """What a subclass adds to the checkpoint (the sheaf trainer's warm starts)."""
        if state.meta.get("warm") is not None:
            raise state.error("holds warm-start cochains, which an SGD trainer does not keep")

    def save(self, path) -> Path:
        """Write the whole training state to ``path`` (a ``.npz`` file, written atomically): the
        weights and head, optimizer state, RNG state, History and (sheaf trainer) warm-start
        cochains and the hyperparameters. ``type(self).load(path)`` continues bit for bit. The
        format is documented in :mod:`sheaflab.checkpoint`. Returns the path."""
        return checkpoint.write(path, "sheaflab.trainer", *self.state())

    @classmethod
    def load(cls, path, dims=None, head=None):
        """The trainer saved to ``path`` by :meth:`save`, in exactly the state it was saved in
        (read with ``allow_pickle=False``). ``dims`` / ``head``: the network the caller expects;
        a file of another network, of the other trainer, another format version, or one that is
        truncated or corrupt raises :class:`sheaflab.CheckpointError` (a ValueError) saying what
        is wrong. ``n_jobs`` and ``progress`` are plain attributes to change after."""
        return cls.from_state(checkpoint.read(path), dims, head)

    def _residual(self, total: BatchStats) -> float:
        return total.residual

    def _start_fit(self, X, Y) -> None:
        """Called by ``fit`` before the first epoch (the sheaf trainer sets up its warm starts)."""

    def _gap(self, X, Y) -> float:
        return float("nan")

    def _diverged(self, epoch, what, X=None):
        """Raise TrainingDiverged; ``X`` given: it failed before any step, at the initial weights."""
        if X is not None:
            cause = (f"It failed at the initial weights, before any step: the inputs are badly scaled "
                     f"(max |X| = {np.abs(X).max():.3g}); standardise X")
        else:
            cause = (f"The learning rate lr={self.lr:g} is too large for this problem; lower lr")
        raise TrainingDiverged(
            f"{self.label} diverged at epoch {self.history.epochs + 1}: {what}. {cause} (the trainer "
            "keeps the weights and the history of the last good epoch)", self.history)


class SheafTrainer(_Trainer):
    """Algorithm 4: relax every example of a batch to its two-sided equilibrium (fast phase), then
    move each weight by the batch mean of its edge's discord times the presynaptic stalk (slow phase).

    Parameters
    ----------
    sheaf : NeuralSheaf with the initial weights (copied; the trained one is ``.sheaf``).
    lr : slow-phase step size ``eta_theta``.
    optimizer : "sgd" (plain gradient descent, as in Definition 3), "momentum" or "adam".
    batch_size : examples per slow step; None = full batch.
    method : the fast phase, as in :func:`~sheaflab.equilibrium`: "direct" (per-region linear solves)
        or "diffusion" (explicit Euler heat flow), both of which reach the *reached equilibrium*; or
        "global": the *global minimum* of each example's energy by enumerating every face
        (:func:`sheaflab.global_min.global_equilibrium`; small nets only, ``3^N`` faces for ``N``
        hidden units, no warm starts, ``tol`` and ``max_iter`` unused).
    tol, max_iter : fast-phase tolerance ``tau_c`` and iteration cap, passed to :func:`equilibrium`.
    l2 : weight of the reluctance edges (Definition 8): the energy gains ``l2/2 ||theta||^2``.
    n_jobs : joblib workers for the fast phase (Proposition 6); honours ``joblib.parallel_config``.
        With joblib's own backends where the fast phase runs is measured (:class:`_Placement`): the
        first batch runs in this process, as with ``n_jobs=1``, and below
        :data:`sheaflab.parallel.BREAK_EVEN` seconds every batch does (then the fit is exactly the
        ``n_jobs=1`` fit); above it batch 2 runs on the workers (starting them) and batch 3 both on
        the workers and here, timed side by side, and the batches after it run where it ran faster,
        until the next such comparison (batches 10, 31, 94, ...). So the workers run only where
        they measured faster; their chunks' sums agree with the single chunk's to rounding. On a
        Dask cluster the workers always run them.
    seed : mini-batch order. progress : tqdm bar (None = only on a terminal).
    track_gap : every ``track_gap`` epochs record the mean ``lambda_min(L_free)`` over the training
        set in ``history.lambda_min`` (0 = never); see :func:`sheaflab.spectral.lambda_min` for how
        it is computed (an iterative eigensolver on wide nets).
    gap_sample : how many training examples each ``track_gap`` recording averages over: a fixed
        random subset of that size, drawn from ``seed`` (its fast phase and eigensolve then cost
        that share of the full set's); None (default) = every example. The recording is then an
        estimate of the full mean: ``bench/bench_trainer.py gap`` prints its error against the
        full mean next to its cost.
    warm_start : start each example's fast phase from its own previous equilibrium (cochain, and
        with it the activation pattern and the kinks), full batch and mini-batch alike; an example
        seen for the first time starts from the forward pass. The trainer keeps one cochain per
        training example: ``2 (n_1 + ... + n_{L-1}) + n_L`` floats each (4 kB at [2,128,128,1]),
        tied to the training set it was made on (its shapes and a hash of X and Y): ``fit`` on
        other data starts cold again. Deterministic (the state is a function of the epochs run).
        Warm starts can end in a different local minimum than a cold start, and that changes the
        training curves: measured on the paraboloid (n 300, Adam lr 0.01, 300 epochs, seeds 0-2 of
        [2,64,64,1] and [2,16,16,16,1]), warm starts cut the region solves per example and epoch
        from 1.4-1.9 to 1.1-1.2 but ended at 1.1-5x the cold runs' training MSE in all six runs;
        their equilibria differ from the forward-pass-started ones on 2-5% of the examples after
        the first epochs, with no lower energy, and the local rule at the cold ones stays closer
        to the MSE gradient (cosine 0.59 against 0.47 at epoch 200 on [2,16,16,16,1]). They apply
        to the direct walk at two or more hidden layers. With one hidden layer and several outputs
        or a softmax head the last equilibrium only starts the closed-form solve of
        :mod:`sheaflab.one_hidden` (fewer Newton steps, the same reached equilibrium); the
        breakpoint search of [n_0, n_1, 1] networks and the heat flow (``method="diffusion"``,
        whose Euler steps a warm start did not reduce) start from the forward pass as before.
        ``False``: every fast phase starts from the forward pass.
    """

    label = "sheaf"
    title = "sheaf trainer (Algorithm 4)"
    _file_name = "SheafTrainer"      # the class a checkpoint names (subclasses load as their base)

    def __init__(self, sheaf, lr=0.01, optimizer="adam", batch_size=None, method=None, tol=None,
                 max_iter=None, l2=0.0, n_jobs=1, seed=0, progress=None, track_gap=0,
                 warm_start=True, gap_sample=None):
        super().__init__(sheaf, lr, optimizer, batch_size, l2, seed, progress)
        if not isinstance(warm_start, (bool, np.bool_)):
            raise TypeError(f"warm_start must be True or False, got {type(warm_start).__name__}")
        self.warm_start = bool(warm_start)
        self._warm = None        # _WarmStarts of the training set being fitted
        self.track_gap = positive(track_gap, "track_gap", integer=True, allow_zero=True)
        self.gap_sample = None if gap_sample is None else positive(gap_sample, "gap_sample", integer=True)
        self._gap_subset = None   # ((n, gap_sample), indices) of the last gap_examples draw
        self.method = choice(method or "direct", "method", METHODS)
        self.n_jobs = check_n_jobs(n_jobs)
        self._placement = _Placement()   # n_jobs != 1: where the fast phase runs, measured
        self.tol, self.max_iter = tol, max_iter
        self._eq_kwargs = {"method": self.method}
        if self.method == "global":   # exhaustive enumeration: no tolerance, no iteration cap
            tol = max_iter = None
        if tol is not None:
            self._eq_kwargs["tol"] = positive(tol, "tol")
        if max_iter is not None:
            self._eq_kwargs["max_iter"] = positive(max_iter, "max_iter", integer=True)

    def _gap(self, X, Y) -> float:
        if not self.track_gap or (self.history.epochs + 1) % self.track_gap:
            return float("nan")
        idx = self.gap_examples(X.shape[0])
        X, Y = X[idx], Y[idx]
        warm = self._warm
        if warm is None or not warm.seen[idx].all():
            return float(equilibrium_gaps(self.sheaf, X, Y).mean())
        # the equilibria at the epoch's final weights, from the ones the epoch left: the next
        # epoch's fast phase starts from them in turn (with full batches at the very same weights),
        # so the recording costs little more than the eigensolve itself
        start = {"guess" if self.sheaf.depth == 2 else "init": warm.start(self.sheaf, X, Y, idx)}
        eq = equilibrium(self.sheaf, X, Y, **start, **self._eq_kwargs)
        warm.store(idx, eq.cochain)
        return float(eq.lambda_min().mean())

    def gap_examples(self, n: int):
        """The training examples (of ``n``) a ``track_gap`` recording averages over: all of them
        (a slice) or, with ``gap_sample`` below ``n``, a sorted index array of that many drawn
        without replacement from ``seed`` (the same subset at every recording)."""
        if self.gap_sample is None or self.gap_sample >= n:
            return slice(None)
        key = (n, self.gap_sample)
        if self._gap_subset is None or self._gap_subset[0] != key:   # seed None: drawn once
            rng = np.random.default_rng(None if self.seed is None else [int(self.seed), n, self.gap_sample])
            self._gap_subset = (key, np.sort(rng.choice(n, self.gap_sample, replace=False)))
        return self._gap_subset[1]

    def _snapshot(self) -> dict:
        snap = super()._snapshot()
        snap["warm"] = self._warm
        if self._warm is not None:
            self._warm.checkpoint()
        return snap

    def _restore(self, snapshot: dict) -> None:
        super()._restore(snapshot)
        self._warm = snapshot["warm"]
        if self._warm is not None:
            self._warm.rollback()

    def _hyperparameters(self) -> dict:
        return {**super()._hyperparameters(), "method": self.method, "tol": self.tol,
                "max_iter": self.max_iter, "n_jobs": self.n_jobs, "track_gap": self.track_gap,
                "warm_start": self.warm_start, "gap_sample": self.gap_sample}

    def state(self) -> tuple:
        meta, arrays = super().state()
        meta["warm"] = None
        if self._warm is not None:
            meta["warm"], warm_arrays = self._warm.state()
            arrays.update(warm_arrays)
        return meta, arrays

    def _restore_extra(self, state) -> None:
        warm = state.meta.get("warm")
        if warm is not None:
            self._warm = _WarmStarts.from_state(state, warm, self.sheaf)

    def _uses_warm_starts(self) -> bool:
        # the [n_0, n_1, 1] breakpoint solve from the forward pass is already about one region
        # solve; the heat flow from the previous equilibrium measured no fewer Euler steps (about
        # 6% more on [2,8,1]: its cost is the contraction to tol, not the distance to travel)
        return self.warm_start and self.method == "direct" and not scalar_case(self.sheaf)

    def _start_fit(self, X, Y) -> None:
        if self._uses_warm_starts():
            key = _WarmStarts.fingerprint(X, Y)
            if self._warm is None or self._warm.key != key:
                self._warm = _WarmStarts(key, self.sheaf, X.shape[0])

    def _batch(self, X, Y, idx=None) -> BatchStats:
        kwargs = dict(self._eq_kwargs, n_jobs=self.n_jobs)
        warm = idx is not None and self._warm is not None
        if warm:
            init = self._warm.start(self.sheaf, X, Y, idx)
            # one hidden layer: the last equilibrium only starts the closed-form solve (same answer)
            kwargs["guess" if self.sheaf.depth == 2 else "init"] = init
        place = self._placement
        if self.n_jobs != 1 and place.batches == 0 and dask_client() is not None:
            place.fixed, place.where = True, "workers"    # a Dask cluster was asked for: always use it
        where = "here" if self.n_jobs == 1 else place.next()

        def run(where):
            # "here": in this process, exactly as n_jobs=1 would run it
            t0 = time.perf_counter()
            out = fast_phase(self.sheaf, X, Y, return_cochain=warm,
                             **(dict(kwargs, n_jobs=1) if where == "here" else kwargs))
            return out, time.perf_counter() - t0

        out, seconds = run(where)
        if self.n_jobs != 1:
            if place.comparing:               # the same batch again, here: like for like
                out, here_seconds = run("here")
                place.record(seconds, here_seconds)
            else:
                place.record(seconds)
        if not warm:
            return out
        stats, cochain = out
        self._warm.store(idx, cochain)
        return stats

    def _regularise(self, grads):
        if self.l2 == 0.0:
            return grads
        L = self.sheaf.depth
        gW, gb = add_reluctance_gradients(self.sheaf, grads[:L], grads[L:], self.l2)
        return gW + gb


class _Placement:
    """Where a trainer with ``n_jobs > 1`` runs each batch's fast phase: ``"here"`` (this process,
    one chunk, as ``n_jobs=1``) or ``"workers"`` (joblib), decided by timing.

    Batch 1 runs here; if it took less than :data:`~sheaflab.parallel.BREAK_EVEN` seconds, so does
    every batch. Otherwise batch 2 runs on the workers (it starts the process pool, which costs
    far more than a batch, so it is not timed), and batch 3 runs on the workers and then again
    here, from the same start: the same work both ways, timed side by side. The result kept is the
    one computed here, and the batches after it run where batch 3 ran faster, until the next
    comparison: batches 10, 31, 94, ... (each ``3 k + 1``), because the work changes as training
    goes on (at [2,64,64,1] with 2000 examples the workers won on the early epochs' long walks and
    lost, 0.73x, once warm starts had made the epochs short). The comparisons cost one batch's fast
    phase each, a logarithmic number per fit. Measured, not assumed: the serial fast phase's GEMMs
    already use every core through the BLAS threads where the workers run one each.
    """

    def __init__(self):
        self.where = None        # where the batches between comparisons run
        self.fixed = False       # decided for good: here (the first batch took less than
        #                          BREAK_EVEN) or on the workers (a Dask cluster was asked for)
        self.batches = 0         # batches run so far
        self.due = 3             # the (1-based) batch that runs both ways next
        self.seconds = {}        # the last comparison's seconds, {"workers": ..., "here": ...}

    @property
    def comparing(self) -> bool:
        """True for a batch that runs both ways (first on the workers, then here)."""
        return not self.fixed and self.batches + 1 == self.due

    def next(self) -> str:
        """Where the next batch runs (for a comparison batch: its first run)."""
        if self.fixed or self.batches == 0:
            return self.where or "here"
        return "workers" if self.comparing or self.where is None else self.where

    def record(self, seconds: float, here_seconds: float | None = None) -> None:
        """The batch took ``seconds`` where :meth:`next` said; ``here_seconds``: a comparison
        batch's second run, in this process."""
        self.batches += 1
        if self.fixed:
            return
        if self.batches == 1 and seconds < BREAK_EVEN:
            self.fixed, self.where = True, "here"
        elif here_seconds is not None:
            self.seconds = {"workers": seconds, "here": here_seconds}
            self.where = "workers" if seconds < here_seconds else "here"
            self.due = 3 * self.due + 1


class _WarmStarts:
    """One equilibrium cochain per training example, for the sheaf trainer's warm starts.

    key: the training set's fingerprint (:meth:`fingerprint`); z, a: per-layer (n, n_l) arrays of
    the last equilibrium stalks of each example; seen: (n,) bool, True once an example has one.
    """

    def __init__(self, key, sheaf, n):
        self.key = key
        self.z = [np.zeros((n, d)) for d in sheaf.dims[1:]]
        self.a = [np.zeros((n, d)) for d in sheaf.dims[1:-1]]
        self.seen = np.zeros(n, dtype=bool)
        self._saved = None

    def _arrays(self) -> list:
        return [*self.z, *self.a, self.seen]

    def checkpoint(self) -> None:
        """Copy the stored cochains aside (into a buffer allocated once) for :meth:`rollback`."""
        if self._saved is None:
            self._saved = [np.empty_like(a) for a in self._arrays()]
        for saved, a in zip(self._saved, self._arrays()):
            np.copyto(saved, a)

    def rollback(self) -> None:
        """Back to the cochains of the last :meth:`checkpoint`."""
        for saved, a in zip(self._saved, self._arrays()):
            np.copyto(a, saved)

    @staticmethod
    def fingerprint(X, Y):
        h = hashlib.blake2b(digest_size=16)
        for arr in (X, Y):
            arr = np.ascontiguousarray(arr, dtype=np.float64)
            h.update(str(arr.shape).encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    def start(self, sheaf, X, Y, idx):
        """The batch's starting cochain: each example's stored equilibrium, or the forward pass."""
        seen = self.seen[idx]
        if not seen.any():
            return None
        if seen.all():
            return Cochain(X, [z[idx] for z in self.z], [a[idx] for a in self.a], Y.copy())
        c = sheaf.forward_cochain(X, Y)
        for mine, kept in zip(c.z + c.a, self.z + self.a):
            mine[seen] = kept[idx][seen]
        return c

    def state(self) -> tuple:
        """``(meta, arrays)`` for a checkpoint: ``{"key", "n"}`` and ``warm.z_l``, ``warm.a_l``,
        ``warm.seen``."""
        arrays = {f"warm.z_{l}": z for l, z in enumerate(self.z, start=1)}
        arrays.update({f"warm.a_{l}": a for l, a in enumerate(self.a, start=1)})
        arrays["warm.seen"] = self.seen
        return {"key": self.key, "n": int(self.seen.shape[0])}, arrays

    @classmethod
    def from_state(cls, state, meta, sheaf) -> "_WarmStarts":
        if not isinstance(meta, dict) or not isinstance(meta.get("key"), str) or \
                not isinstance(meta.get("n"), int) or meta["n"] < 1:
            raise state.error("has an invalid 'warm' entry in its meta entry")
        n = meta["n"]
        w = cls(meta["key"], sheaf, n)
        w.z = [state.get(f"warm.z_{l}", "f", (n, d)).copy() for l, d in enumerate(sheaf.dims[1:], 1)]
        w.a = [state.get(f"warm.a_{l}", "f", (n, d)).copy() for l, d in enumerate(sheaf.dims[1:-1], 1)]
        w.seen = state.get("warm.seen", "b", (n,)).copy()
        return w

    def store(self, idx, cochain):
        for mine, new in zip(self.z + self.a, cochain.z + cochain.a):
            mine[idx] = new
        self.seen[idx] = True


class SGDTrainer(_Trainer):
    """The baseline: plain numpy backprop on the batch mean of ``1/2 ||f(x) - y||^2`` (plus
    ``l2/2 ||theta||^2``, i.e. weight decay ``l2``), with the same optimizers and batch order as
    :class:`SheafTrainer`."""

    label = "sgd"
    title = "SGD (backprop)"
    _file_name = "SGDTrainer"

    def _batch(self, X, Y, idx=None) -> BatchStats:
        loss_sum, sum_W, sum_b, r = backprop_sums(self.sheaf, X, Y)
        disc = np.zeros(len(self.history.edges))
        # the forward pass is the zero-energy cochain: with y pinned only the output edge disagrees
        disc[-1] = np.sqrt(np.einsum("ij,ij->i", r, r)).sum()
        return BatchStats(X.shape[0], sum_W, sum_b, loss_sum, disc)

    def _residual(self, total: BatchStats) -> float:
        return float("nan")

    def _regularise(self, grads):
        if self.l2 == 0.0:
            return grads
        return [g + self.l2 * p for g, p in zip(grads, self.params)]


#: the one registry of trainers, by label (SGD first: the baseline leads every table and figure)
TRAINERS = {cls.label: cls for cls in (SGDTrainer, SheafTrainer)}
