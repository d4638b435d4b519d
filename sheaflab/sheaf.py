"""The neural sheaf of a feedforward ReLU network on its path graph.

Conventions (one formulation, used everywhere in the package and the book):

* ``dims = [n_0, ..., n_L]``; ``W_l`` has shape ``(n_l, n_{l-1})`` and ``b_l`` shape ``(n_l,)``;
  hidden layers use ReLU, the output layer is the identity; arrays are batch-first ``(B, n)``.
* Vertices, in path order: the input ``x = a_0`` (always pinned), then ``z_1, a_1, z_2, ..., a_{L-1},
  z_L`` and the output ``yhat`` (pinned to the target in training).
* Edges and their discords (the coboundary):

  - affine ``affine_l``:  ``d = W_l a_{l-1} + b_l - z_l``
  - ReLU   ``relu_l``:    ``d = S_l z_l - a_l`` with ``S_l = diag(1[z_l > 0])`` read from the cochain
  - output ``output``:    ``d = grad A(z_L) - yhat`` for the network's head ``A``
    (:mod:`sheaflab.heads`): ``d = z_L - yhat`` for the default ``identity`` head

* Dirichlet energy ``E = 1/2 sum_e ||d_e||^2``, except that the output edge of a ``sigmoid`` or
  ``softmax`` head contributes its Bregman energy ``A(z_L) - yhat . z_L + A*(yhat)`` (which is
  ``1/2 ||z_L - yhat||^2`` for ``identity``). Because ``S_l z_l = relu(z_l)`` the energy of a
  cochain is a continuous, piecewise smooth (and non-convex) function of its stalks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import checkpoint, heads
from ._checks import as_batch, choice, positive, rng as make_rng

PINNINGS = ("input", "both")


def flatten(arrays) -> np.ndarray:
    """Concatenate arrays (weights, biases or their gradients) into one 1-D float vector."""
    return np.concatenate([np.ravel(a) for a in arrays])


@dataclass(frozen=True)
class Edge:
    """One edge of the path graph: ``name``, ``kind`` ('affine' | 'relu' | 'output'), ``layer`` and
    the stalk dimension ``dim`` of its discord."""

    name: str
    kind: str
    layer: int
    dim: int


@dataclass
class Cochain:
    """Values on every vertex, for a batch of ``B`` examples.

    x: (B, n_0) input stalk; z: [z_1 .. z_L], each (B, n_l); a: [a_1 .. a_{L-1}], each (B, n_l);
    yhat: (B, n_L) output stalk.
    """

    x: np.ndarray
    z: list
    a: list
    yhat: np.ndarray

    @property
    def batch_size(self) -> int:
        return self.x.shape[0]

    def activations(self) -> list:
        """[a_0 = x, a_1, ..., a_{L-1}]: the presynaptic stalk of each affine edge."""
        return [self.x, *self.a]

    def patterns(self) -> list:
        """Activation patterns ``S_l = 1[z_l > 0]`` of the hidden layers, each (B, n_l) bool."""
        return [z > 0 for z in self.z[:-1]]

    def free_vector(self, pinned: str = "both") -> np.ndarray:
        """(B, n_free) free stalks in the column order of :meth:`NeuralSheaf.coboundary`:
        ``z_1, a_1, ..., a_{L-1}, z_L`` and, when only the input is pinned, ``yhat``."""
        choice(pinned, "pinned", PINNINGS)
        parts = []
        for l, z in enumerate(self.z):
            parts.append(z)
            if l < len(self.a):
                parts.append(self.a[l])
        if pinned == "input":
            parts.append(self.yhat)
        return np.concatenate(parts, axis=1)

    def copy(self) -> "Cochain":
        return Cochain(self.x.copy(), [z.copy() for z in self.z], [a.copy() for a in self.a],
                       self.yhat.copy())


class Discords(dict):
    """Per-edge discords of a cochain: an ordered ``{edge name: (B, dim) array}`` in path order.

    ``edges`` lists the :class:`Edge` records (name, kind, layer) in the same order.
    """

    def __init__(self, edges, values, output_energy=None):
        super().__init__(zip([e.name for e in edges], values))
        self.edges = edges
        self._output_energy = output_energy     # (B,) Bregman energy of a non-identity head

    def norms(self) -> np.ndarray:
        """(B, n_edges) Euclidean norm of each edge's discord, per example."""
        out = np.empty((next(iter(self.values())).shape[0], len(self)))
        for k, d in enumerate(self.values()):
            out[:, k] = np.einsum("ij,ij->i", d, d)
        return np.sqrt(out)

    def energies(self) -> np.ndarray:
        """(B, n_edges) contribution of each edge to the energy: ``1/2 ||d_e||^2``, and for the
        output edge of a sigmoid or softmax head its Bregman energy."""
        out = np.empty((next(iter(self.values())).shape[0], len(self)))
        for k, d in enumerate(self.values()):
            out[:, k] = np.einsum("ij,ij->i", d, d)
        out *= 0.5
        if self._output_energy is not None:
            out[:, -1] = self._output_energy
        return out


def _check_params(weights, biases):
    if not isinstance(weights, (list, tuple)):
        raise TypeError("weights must be a list of 2-D arrays [W_1, ..., W_L] with W_l of shape "
                        f"(n_l, n_(l-1)); got {type(weights).__name__}")
    if len(weights) == 0:
        raise ValueError("weights is empty; a network needs at least one layer")
    Ws = []
    for l, W in enumerate(weights, start=1):
        try:
            W = np.array(W, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"weights[{l - 1}] (W_{l}) must be a numeric 2-D array") from None
        if W.ndim != 2 or 0 in W.shape:
            raise ValueError(f"weights[{l - 1}] (W_{l}) must be a non-empty 2-D array of shape "
                             f"(n_{l}, n_{l - 1}); got shape {W.shape}")
        if Ws and W.shape[1] != Ws[-1].shape[0]:
            raise ValueError(f"weights[{l - 1}] (W_{l}) must have {Ws[-1].shape[0]} columns to follow "
                             f"W_{l - 1} of shape {Ws[-1].shape}; got shape {W.shape}")
        if not np.all(np.isfinite(W)):
            raise ValueError(f"weights[{l - 1}] (W_{l}) contains non-finite values")
        Ws.append(W)
    if biases is None:
        return Ws, [np.zeros(W.shape[0]) for W in Ws]
    if not isinstance(biases, (list, tuple)):
        raise TypeError("biases must be a list of 1-D arrays [b_1, ..., b_L] with b_l of shape (n_l,); "
                        f"got {type(biases).__name__}")
    if len(biases) != len(Ws):
        raise ValueError(f"biases must hold {len(Ws)} vectors, one per weight matrix; got {len(biases)}")
    bs = []
    for l, (b, W) in enumerate(zip(biases, Ws), start=1):
        try:
            b = np.array(b, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"biases[{l - 1}] (b_{l}) must be a numeric 1-D array") from None
        if b.shape != (W.shape[0],):
            raise ValueError(f"biases[{l - 1}] (b_{l}) must have shape ({W.shape[0]},); got {b.shape}")
        if not np.all(np.isfinite(b)):
            raise ValueError(f"biases[{l - 1}] (b_{l}) contains non-finite values")
        bs.append(b)
    return Ws, bs


class NeuralSheaf:
    """The cellular sheaf of a ReLU network ``dims = [n_0, ..., n_L]`` on its path graph.

    Parameters
    ----------
    weights : list of arrays, ``weights[l-1]`` is ``W_l`` of shape ``(n_l, n_{l-1})``.
    biases : list of arrays, ``biases[l-1]`` is ``b_l`` of shape ``(n_l,)``; ``None`` means zeros.
    head : the output edge, ``"identity"`` (regression; default), ``"sigmoid"`` (0/1 labels) or
        ``"softmax"`` (one-hot labels); see :mod:`sheaflab.heads`.

    The arrays are copied as float64. The sheaf is a plain container: trainers update
    ``weights`` and ``biases`` in place.
    """

    def __init__(self, weights, biases=None, head: str = "identity"):
        self.weights, self.biases = _check_params(weights, biases)
        self._head = heads.get(head)
        heads.check_width(self._head, self.weights[-1].shape[0])
        self._edges = self._make_edges()

    @classmethod
    def random(cls, dims, seed=0, scale: float = 1.0, head: str = "identity") -> "NeuralSheaf":
        """He initialisation: ``W_l ~ N(0, 2 / n_{l-1}) * scale**2`` entrywise, zero biases.

        ``dims`` is ``[n_0, ..., n_L]`` (at least two positive integers); ``scale`` multiplies the
        standard deviation; ``seed`` feeds ``numpy.random.default_rng``; ``head`` names the output
        head (see the class docstring).
        """
        if isinstance(dims, np.ndarray) and dims.ndim == 1:
            dims = dims.tolist()
        if not isinstance(dims, (list, tuple)) or len(dims) < 2:
            raise TypeError(f"dims must be a list [n_0, ..., n_L] of at least two sizes; got {dims!r}")
        dims = [positive(n, f"dims[{i}]", integer=True) for i, n in enumerate(dims)]
        scale = positive(scale, "scale")
        rng = make_rng(seed)
        Ws = [rng.normal(0.0, scale * np.sqrt(2.0 / dims[l]), size=(dims[l + 1], dims[l]))
              for l in range(len(dims) - 1)]
        return cls(Ws, [np.zeros(n) for n in dims[1:]], head=head)

    # ------------------------------------------------------------------ structure
    @property
    def dims(self) -> list:
        """Layer widths ``[n_0, ..., n_L]``."""
        return [self.weights[0].shape[1]] + [W.shape[0] for W in self.weights]

    @property
    def head(self) -> str:
        """The output head's name: ``"identity"``, ``"sigmoid"`` or ``"softmax"``."""
        return self._head.name

    @property
    def output_head(self) -> heads.Head:
        """The output edge's :class:`~sheaflab.heads.Head` (its mean map, energy, loss, accuracy)."""
        return self._head

    @property
    def depth(self) -> int:
        """Number of affine layers ``L``."""
        return len(self.weights)

    @property
    def edges(self) -> list:
        """The edges in path order: affine_1, relu_1, affine_2, ..., affine_L, output."""
        return list(self._edges)

    def _make_edges(self) -> tuple:
        out = []
        for l, n in enumerate(self.dims[1:], start=1):
            out.append(Edge(f"affine_{l}", "affine", l, n))
            if l < self.depth:
                out.append(Edge(f"relu_{l}", "relu", l, n))
        out.append(Edge("output", "output", self.depth, self.dims[-1]))
        return tuple(out)

    def free_dim(self, pinned: str = "both") -> int:
        """Number of free scalar coordinates: ``2 (n_1 + ... + n_{L-1}) + n_L``, plus ``n_L`` for the
        output stalk when only the input is pinned."""
        choice(pinned, "pinned", PINNINGS)
        hidden = self.dims[1:-1]
        return 2 * sum(hidden) + self.dims[-1] * (2 if pinned == "input" else 1)

    @property
    def parameters(self) -> list:
        """``[W_1, ..., W_L, b_1, ..., b_L]``: the arrays themselves (an optimizer updates them in place)."""
        return self.weights + self.biases

    def state(self) -> tuple:
        """``(meta, arrays)`` of a checkpoint (:mod:`sheaflab.checkpoint`): ``{"dims", "head"}``
        and the members ``W_l`` (n_l, n_{l-1}), ``b_l`` (n_l,), float64."""
        arrays = {}
        for l, (W, b) in enumerate(zip(self.weights, self.biases), start=1):
            arrays[f"W_{l}"], arrays[f"b_{l}"] = np.asarray(W, np.float64), np.asarray(b, np.float64)
        return {"dims": self.dims, "head": self.head}, arrays

    @classmethod
    def from_state(cls, state: checkpoint.State, dims=None, head=None) -> "NeuralSheaf":
        """The network of a checkpoint's :class:`~sheaflab.checkpoint.State` (a network's or a
        trainer's), every member checked; ``dims`` / ``head``: what the caller expects."""
        file_dims = state.field("dims", list, "network dims")
        if len(file_dims) < 2 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                         for n in file_dims):
            raise state.error(f"has invalid network dims {file_dims!r}")
        file_head = state.field("head", str, "head")
        if file_head not in heads.HEADS:
            raise state.error(f"has an unknown head {file_head!r} (known: {', '.join(heads.HEADS)})")
        if dims is not None and list(dims) != file_dims:
            raise state.error(f"holds a network with dims {file_dims}, not the expected {list(dims)}")
        if head is not None and head != file_head:
            raise state.error(f"holds a network with the {file_head!r} head, not the expected {head!r}")
        L = len(file_dims) - 1
        Ws = [state.get(f"W_{l}", "f", (file_dims[l], file_dims[l - 1])) for l in range(1, L + 1)]
        bs = [state.get(f"b_{l}", "f", (file_dims[l],)) for l in range(1, L + 1)]
        try:
            return cls(Ws, bs, head=file_head)
        except (TypeError, ValueError) as exc:
            raise state.error(f"holds an invalid network: {exc}") from None

    def save(self, path):
        """Write the weights, biases and head to ``path``, a ``.npz`` file in the format of
        :mod:`sheaflab.checkpoint` (written atomically); returns the path."""
        return checkpoint.write(path, "sheaflab.sheaf", *self.state())

    @classmethod
    def load(cls, path, dims=None, head=None) -> "NeuralSheaf":
        """The network saved by :meth:`save`, read with ``allow_pickle=False``. ``dims`` / ``head``:
        what the caller expects; a file of another network, a truncated or corrupt one, or one of
        another format version raises :class:`sheaflab.CheckpointError` (a ValueError) saying what
        is wrong. A trainer's checkpoint is refused (``SheafTrainer.load(path).sheaf`` reads its
        network)."""
        state = checkpoint.read(path)
        if state.kind != "sheaflab.sheaf":
            raise state.error(f"holds {checkpoint.KINDS[state.kind]}, not a network alone: load it "
                              "with SheafTrainer.load or SGDTrainer.load and read its .sheaf")
        return cls.from_state(state, dims, head)

    def copy(self) -> "NeuralSheaf":
        """An independent copy, its arrays checked again (a user may have replaced some)."""
        return NeuralSheaf([W.copy() for W in self.weights], [b.copy() for b in self.biases],
                           head=self._head)

    def snapshot(self) -> "NeuralSheaf":
        """A copy of the arrays without checking them again, for results that remember their
        weights (cheap; :meth:`copy` checks)."""
        new = NeuralSheaf.__new__(NeuralSheaf)
        new.weights = [W.copy() for W in self.weights]
        new.biases = [b.copy() for b in self.biases]
        new._head = self._head
        new._edges = self._edges
        return new

    def same_parameters(self, other: "NeuralSheaf") -> bool:
        """True when ``other`` has the same dims, head and exactly the same weights and biases."""
        return (self.dims == other.dims and self.head == other.head and
                all(np.array_equal(p, q) for p, q in zip(self.parameters, other.parameters)))

    def __repr__(self) -> str:
        head = "" if self._head.name == "identity" else f", head={self._head.name!r}"
        return f"NeuralSheaf(dims={self.dims}{head})"

    # ------------------------------------------------------------------ cochains
    def check_input(self, X, name: str = "X") -> np.ndarray:
        """Validate an input batch: finite, shape (B, n_0)."""
        return as_batch(X, name, self.dims[0])

    def check_target(self, Y, B: int, name: str = "Y") -> np.ndarray:
        """Validate a target batch: finite, shape (B, n_L), and labels the head accepts (0/1 for
        ``sigmoid``, one-hot or probability rows for ``softmax``)."""
        Y = as_batch(Y, name, self.dims[-1])
        if Y.shape[0] != B:
            raise ValueError(f"{name} must have shape ({B}, {self.dims[-1]}) to match X; got {Y.shape}")
        return self._head.check_target(Y, name)

    def forward_cochain(self, X, Y=None, check: bool = True) -> Cochain:
        """The forward pass as a cochain: the zero-energy harmonic extension of the input.

        X: (B, n_0). Returns a :class:`Cochain` with ``yhat = grad A(z_L)`` (``z_L`` itself for the
        identity head, probabilities otherwise); with targets Y (B, n_L) the output stalk is pinned to
        them instead (a copy): the usual start of the two-sided problem, whose only disagreeing edge
        is the output, with energy ``1/2 ||f(x) - y||^2`` per example (the cross-entropy minus the
        label's entropy for a classification head). ``check=False`` skips the argument checks
        (inner loops whose arguments were checked once).
        """
        if check:
            X = self.check_input(X)
            Y = None if Y is None else self.check_target(Y, X.shape[0])
        a = X
        x, zs, acts = a, [], []
        for l, (W, b) in enumerate(zip(self.weights, self.biases), start=1):
            z = a @ W.T + b
            zs.append(z)
            if l < self.depth:
                a = np.maximum(z, 0.0)
                acts.append(a)
        yhat = np.array(self._head.mean(zs[-1]) if Y is None else Y, copy=True)
        return Cochain(x, zs, acts, yhat)

    def forward(self, X) -> np.ndarray:
        """Network output ``f(X)``: (B, n_0) -> (B, n_L); probabilities for sigmoid / softmax heads."""
        return self.forward_cochain(X).yhat

    def mse(self, X, Y, check: bool = True) -> float:
        """Mean squared error ``mean((f(X) - Y)^2)`` over all entries; X (B, n_0), Y (B, n_L). For a
        classification head ``f`` is the predicted probabilities (the Brier score)."""
        return self.metrics(X, Y, check)[0]

    def metrics(self, X, Y, check: bool = True) -> tuple:
        """``(mse, loss, accuracy)`` of the forward pass, from one pass: :meth:`mse`,
        :meth:`loss` and :meth:`accuracy` together. ``check=False`` skips the argument checks."""
        if check:
            X = self.check_input(X)
            Y = self.check_target(Y, X.shape[0])
        z = self.forward_cochain(X, check=False).z[-1]
        head = self._head
        return (float(np.mean((head.mean(z) - Y) ** 2)), head.loss(z, Y), head.accuracy(z, Y))

    def loss(self, X, Y) -> float:
        """The head's loss of the forward pass: the MSE for ``identity``, the mean cross-entropy
        for ``sigmoid`` / ``softmax``. X (B, n_0), Y (B, n_L)."""
        X = self.check_input(X)
        Y = self.check_target(Y, X.shape[0])
        return self._head.loss(self.forward_cochain(X, check=False).z[-1], Y)

    def accuracy(self, X, Y) -> float:
        """Fraction of examples classified correctly (NaN for the identity head)."""
        X = self.check_input(X)
        Y = self.check_target(Y, X.shape[0])
        return self._head.accuracy(self.forward_cochain(X, check=False).z[-1], Y)

    def check_cochain(self, c) -> None:
        """Raise a TypeError / ValueError unless ``c`` is a :class:`Cochain` of this network."""
        if not isinstance(c, Cochain):
            raise TypeError(f"cochain must be a sheaflab.Cochain, got {type(c).__name__}")
        B = c.x.shape[0]
        want = [(B, n) for n in self.dims[1:]]
        if c.x.shape != (B, self.dims[0]) or [z.shape for z in c.z] != want or \
                [a.shape for a in c.a] != want[:-1] or c.yhat.shape != want[-1]:
            raise ValueError(f"cochain stalks do not match dims {self.dims} for a batch of {B}")

    def discord(self, cochain: Cochain, patterns=None, check: bool = True) -> Discords:
        """Per-edge discords ``(delta c)_e`` of a cochain, in path order.

        ``patterns`` (list of (B, n_l) bool for the hidden layers) overrides the ReLU pattern read
        from the cochain; by default ``S_l = 1[z_l > 0]`` so that the ReLU discord is ``relu(z) - a``.
        ``check=False`` skips the check of the cochain's shapes.
        """
        if check:
            self.check_cochain(cochain)
        S = patterns
        vals, prev = [], cochain.x
        for l, (W, b) in enumerate(zip(self.weights, self.biases), start=1):
            z = cochain.z[l - 1]
            vals.append(prev @ W.T + b - z)
            if l < self.depth:
                a = cochain.a[l - 1]
                relu = np.maximum(z, 0.0) if patterns is None else np.where(S[l - 1], z, 0.0)
                vals.append(relu - a)
                prev = a
        zL = cochain.z[-1]
        if self._head.name == "identity":
            vals.append(zL - cochain.yhat)
            return Discords(self._edges, vals)
        vals.append(self._head.mean(zL) - cochain.yhat)
        return Discords(self._edges, vals, self._head.energy(zL, cochain.yhat))

    def energy(self, cochain: Cochain, patterns=None) -> np.ndarray:
        """Dirichlet energy ``1/2 sum_e ||d_e||^2`` per example (the output edge of a classification
        head contributes its Bregman energy), shape (B,)."""
        return self.discord(cochain, patterns).energies().sum(axis=1)

    # ------------------------------------------------------------------ linear algebra
    def check_patterns(self, patterns) -> tuple:
        """Hidden-layer patterns (a list of (n_l,) or (B, n_l) booleans) checked and normalised:
        ``(list of (B, n_l) float 0/1 arrays, B)``."""
        hidden = self.dims[1:-1]
        if not isinstance(patterns, (list, tuple)) or len(patterns) != len(hidden):
            raise TypeError(f"patterns must be a list of {len(hidden)} boolean arrays, one per hidden "
                            f"layer of widths {hidden}")
        out = [np.asarray(p, dtype=np.float64) for p in patterns]
        if out and out[0].ndim == 1:
            out = [p[None, :] for p in out]
        B = out[0].shape[0] if out else 1
        for l, (p, n) in enumerate(zip(out, hidden), start=1):
            if p.shape != (B, n):
                raise ValueError(f"patterns[{l - 1}] must have shape ({n},) or (B, {n}); got {p.shape}")
        return out, B

    def coboundary(self, patterns, pinned: str = "both") -> np.ndarray:
        """Dense restricted coboundary ``delta_free`` for given activation patterns.

        patterns: list over hidden layers of (n_l,) or (B, n_l) booleans (the diagonal of ``S_l``).
        pinned: 'input' (free columns z_1, a_1, ..., z_L, yhat; square and triangular with -1 on the
        diagonal) or 'both' (free columns z_1, a_1, ..., a_{L-1}, z_L; tall, full column rank).
        Rows follow :attr:`edges`. Returns (B, m, n), or (m, n) for 1-D patterns. Meant for analysis
        and tests; the solvers never build it.
        """
        choice(pinned, "pinned", PINNINGS)
        single = bool(patterns) and np.ndim(patterns[0]) == 1
        S, B = self.check_patterns(patterns)
        if not S:
            single = True
        dims, L = self.dims, self.depth
        # column offsets of the free vertices
        cols, off = {}, 0
        for l in range(1, L + 1):
            cols[("z", l)] = off
            off += dims[l]
            if l < L:
                cols[("a", l)] = off
                off += dims[l]
        if pinned == "input":
            cols[("yhat",)] = off
            off += dims[L]
        m = sum(e.dim for e in self.edges)
        D = np.zeros((B, m, off))
        row = 0
        for e in self.edges:
            l, n = e.layer, e.dim
            rows = slice(row, row + n)
            zc = cols[("z", l)]
            if e.kind == "affine":
                D[:, rows, zc:zc + n] -= np.eye(n)
                if l > 1:
                    ac = cols[("a", l - 1)]
                    D[:, rows, ac:ac + dims[l - 1]] += self.weights[l - 1]
            elif e.kind == "relu":
                idx = np.arange(n)
                D[:, row + idx, zc + idx] = S[l - 1]
                ac = cols[("a", l)]
                D[:, rows, ac:ac + n] -= np.eye(n)
            else:
                D[:, rows, zc:zc + n] += np.eye(n)
                if pinned == "input":
                    yc = cols[("yhat",)]
                    D[:, rows, yc:yc + n] -= np.eye(n)
            row += n
        return D[0] if single else D

    def L_free(self, patterns, pinned: str = "both") -> np.ndarray:
        """Free sheaf Laplacian ``delta_free^T delta_free`` (dense), (B, n, n) or (n, n).

        Block-tridiagonal along the path graph; see :meth:`coboundary` for the column order.
        """
        D = self.coboundary(patterns, pinned)
        return np.swapaxes(D, -1, -2) @ D

    def lambda_max_bound(self) -> float:
        """An upper bound on ``lambda_max(L_free)``, valid for every activation pattern and pinning.

        From ``||delta c||^2 <= sum_l 2 (||W_l||^2 ||a_{l-1}||^2 + ||z_l||^2) + 2 (||z_l||^2 +
        ||a_l||^2) + 2 (||z_L||^2 + ||yhat||^2)``. Explicit Euler with a step below ``2 / bound``
        is stable. (The spectral gap, the other end, is :func:`sheaflab.spectral.lambda_min`.)
        """
        norms = [np.linalg.norm(W, 2) ** 2 for W in self.weights[1:]]
        return float(max([4.0] + [2.0 + 2.0 * s for s in norms]))
