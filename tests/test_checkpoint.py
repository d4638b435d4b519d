"""Checkpoints: save -> load -> resume equals an uninterrupted fit bit for bit; bad files are refused
with a message that says what is wrong, and loading never unpickles."""

import json
import pickle
import zipfile

import numpy as np
import pytest

import sheaflab
from sheaflab.checkpoint import CheckpointError
from sheaflab.datasets import paraboloid

from conftest import random_problem

FIELDS = [f for f in sheaflab.History.FIELDS if f != "wall_time"]   # wall time is measured


def assert_same_history(h1, h2, epochs=None):
    assert h1.edges == h2.edges
    for name in FIELDS:
        a, b = getattr(h1, name), getattr(h2, name)
        if epochs is not None:
            a, b = a[:epochs], b[:epochs]
        assert a.shape == b.shape, name
        assert np.array_equal(a, b, equal_nan=True), name


def assert_same_state(t1, t2):
    """Weights, optimizer, RNG and warm starts of two trainers agree bit for bit."""
    assert t1.sheaf.same_parameters(t2.sheaf)
    s1, a1 = t1.optimizer.get_state()
    s2, a2 = t2.optimizer.get_state()
    assert s1 == s2
    for slot in a1:
        assert (a1[slot] is None) == (a2[slot] is None), slot
        for p, q in zip(a1[slot] or [], a2[slot] or []):
            assert np.array_equal(p, q), slot
    assert t1._rng.bit_generator.state == t2._rng.bit_generator.state
    w1, w2 = getattr(t1, "_warm", None), getattr(t2, "_warm", None)
    assert (w1 is None) == (w2 is None)
    if w1 is not None:
        assert w1.key == w2.key
        for p, q in zip(w1._arrays(), w2._arrays()):
            assert np.array_equal(p, q)


@pytest.fixture(scope="module")
def deep():
    """[2,6,5,1]: the active-set walk, so warm starts are in use."""
    return random_problem([2, 6, 5, 1], n=40, seed=2)


CASES = [(sheaflab.SheafTrainer, opt, warm, bs) for opt in ("sgd", "momentum", "adam")
         for warm in (True, False) for bs in (None, 16)]
CASES += [(sheaflab.SGDTrainer, opt, None, bs) for opt in ("sgd", "momentum", "adam") for bs in (None, 16)]


@pytest.mark.parametrize("Trainer, optimizer, warm, batch_size", CASES)
def test_save_load_resume_is_bit_identical(Trainer, optimizer, warm, batch_size, deep, tmp_path):
    sheaf, X, Y = deep
    kw = dict(lr=0.01, optimizer=optimizer, batch_size=batch_size, seed=4, progress=False)
    if warm is not None:
        kw["warm_start"] = warm
    Xv, Yv = X[:10] + 0.05, Y[:10]
    straight = Trainer(sheaf, **kw)
    straight.fit(X, Y, epochs=6, X_val=Xv, Y_val=Yv)

    first = Trainer(sheaf, **kw)
    first.fit(X, Y, epochs=3, X_val=Xv, Y_val=Yv)
    path = first.save(tmp_path / "run.npz")
    resumed = Trainer.load(path)
    assert type(resumed) is Trainer
    assert_same_state(resumed, first)                     # the file holds the whole state
    assert_same_history(resumed.history, first.history)
    np.testing.assert_array_equal(resumed.history.wall_time, first.history.wall_time)
    assert resumed._mse0 == first._mse0 and resumed._clock == first._clock
    if warm:
        assert resumed._warm.seen.all()

    resumed.fit(X, Y, epochs=3, X_val=Xv, Y_val=Yv)
    assert_same_state(resumed, straight)
    assert_same_history(resumed.history, straight.history)
    assert resumed.history.epochs == 6 and np.all(np.diff(resumed.history.wall_time) > 0)
    # a real resume: the weights moved after loading
    assert not resumed.sheaf.same_parameters(first.sheaf)


def test_resume_without_the_saved_state_would_differ(deep, tmp_path):
    """The test above can fail: a trainer rebuilt from the weights alone (fresh optimizer, fresh RNG,
    no warm starts) does not continue like the uninterrupted run."""
    sheaf, X, Y = deep
    kw = dict(lr=0.01, optimizer="adam", batch_size=16, seed=4, progress=False)
    straight = sheaflab.SheafTrainer(sheaf, **kw)
    straight.fit(X, Y, epochs=6)
    first = sheaflab.SheafTrainer(sheaf, **kw)
    first.fit(X, Y, epochs=3)
    first.sheaf.save(tmp_path / "weights.npz")
    naive = sheaflab.SheafTrainer(sheaflab.NeuralSheaf.load(tmp_path / "weights.npz"), **kw)
    naive.fit(X, Y, epochs=3)
    assert not naive.sheaf.same_parameters(straight.sheaf)


def test_classification_head_track_gap_and_l2_survive(tmp_path):
    X, Y = paraboloid(50, seed=3)
    Y = (Y > 0).astype(float)
    sheaf = sheaflab.NeuralSheaf.random([2, 5, 4, 1], seed=1, head="sigmoid")
    kw = dict(lr=0.02, batch_size=20, track_gap=2, gap_sample=5, l2=1e-3, max_iter=50, progress=False)
    straight = sheaflab.SheafTrainer(sheaf, **kw)
    straight.fit(X, Y, epochs=4)
    first = sheaflab.SheafTrainer(sheaf, **kw)
    first.fit(X, Y, epochs=2)
    resumed = sheaflab.SheafTrainer.load(first.save(tmp_path / "c.npz"))
    assert resumed.sheaf.head == "sigmoid"
    assert (resumed.track_gap, resumed.gap_sample, resumed.l2, resumed.max_iter, resumed.lr) == (2, 5, 1e-3, 50, 0.02)
    resumed.fit(X, Y, epochs=2)
    assert_same_state(resumed, straight)
    assert_same_history(resumed.history, straight.history)
    assert np.isfinite(resumed.history.lambda_min[1])


def test_a_replaced_optimizer_is_saved_as_it_is(deep, tmp_path):
    sheaf, X, Y = deep
    tr = sheaflab.SheafTrainer(sheaf, lr=0.01, progress=False)
    tr.optimizer = sheaflab.optim.Momentum(0.05, mu=0.5)
    tr.fit(X, Y, epochs=2)
    back = sheaflab.SheafTrainer.load(tr.save(tmp_path / "m.npz"))
    assert (back.optimizer.name, back.optimizer.lr, back.optimizer.mu, back.optimizer.t) == \
        ("momentum", 0.05, 0.5, 2)


def test_a_trainer_saved_before_any_fit(deep, tmp_path):
    sheaf, X, Y = deep
    for Trainer in (sheaflab.SheafTrainer, sheaflab.SGDTrainer):
        fresh = Trainer(sheaf, batch_size=8, seed=9, progress=False)
        back = Trainer.load(fresh.save(tmp_path / "fresh.npz"))
        assert back.history.epochs == 0 and back._mse0 is None and back.optimizer.t == 0
        fresh.fit(X, Y, epochs=2)
        back.fit(X, Y, epochs=2)
        assert_same_state(back, fresh)
        assert_same_history(back.history, fresh.history)


def test_neural_sheaf_save_load(tmp_path):
    for head, dims in (("identity", [3, 4, 2]), ("softmax", [2, 5, 3]), ("sigmoid", [2, 3, 3, 1])):
        net = sheaflab.NeuralSheaf.random(dims, seed=5, head=head)
        for b in net.biases:
            b[:] = np.random.default_rng(0).normal(size=b.shape)
        path = net.save(tmp_path / f"{head}.npz")
        back = sheaflab.NeuralSheaf.load(path)
        assert back.same_parameters(net) and back.head == head and back.dims == dims
        assert sheaflab.NeuralSheaf.load(path, dims=dims, head=head).same_parameters(net)
    # a trainer's checkpoint is refused, with the way to its network
    sheaf, X, Y = random_problem([2, 4, 1], n=20, seed=1)
    tr = sheaflab.SGDTrainer(sheaf, progress=False)
    tr.fit(X, Y, epochs=2)
    path = tr.save(tmp_path / "t.npz")
    with pytest.raises(CheckpointError, match=r"holds a trainer.*not a network alone.*SGDTrainer.load"):
        sheaflab.NeuralSheaf.load(path)
    assert sheaflab.SGDTrainer.load(path).sheaf.same_parameters(tr.sheaf)


def test_save_is_atomic_and_overwrites(deep, tmp_path):
    sheaf, X, Y = deep
    tr = sheaflab.SGDTrainer(sheaf, progress=False)
    path = tmp_path / "run.npz"
    tr.save(path)
    tr.fit(X, Y, epochs=1)
    tr.save(path)                                   # overwrites in place
    assert sheaflab.SGDTrainer.load(path).history.epochs == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]   # no temporary left over


# ------------------------------------------------------------------------------ bad files
@pytest.fixture
def saved(deep, tmp_path):
    sheaf, X, Y = deep
    tr = sheaflab.SheafTrainer(sheaf, batch_size=16, progress=False)
    tr.fit(X, Y, epochs=2)
    return tr.save(tmp_path / "good.npz")


def _members(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _rewrite(path, out, **changes):
    members = _members(path)
    for k, v in changes.items():
        if v is None:
            members.pop(k)
        else:
            members[k] = v
    with open(out, "wb") as f:
        np.savez(f, **members)
    return out


def test_truncated_files(saved, tmp_path):
    data = saved.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 100, 0):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=r"cut\d+\.npz is truncated or corrupt"):
            sheaflab.SheafTrainer.load(bad)


def test_corrupt_bytes_inside_a_member(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as z:
        info = z.getinfo("W_1.npy")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size - 3] ^= 0xFF          # one byte of W_1's values
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="flipped.npz is truncated or corrupt.*CRC"):
        sheaflab.SheafTrainer.load(bad)


def test_not_a_checkpoint(saved, tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("epoch 3: loss 0.1\n")
    # a text file: numpy would unpickle it; the message says what the file is not, and what would be
    with pytest.raises(CheckpointError, match="notes.npz is neither an .npz archive nor an .npy array"
                                              ".*not a sheaflab checkpoint.*written by trainer.save"):
        sheaflab.SheafTrainer.load(text)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(CheckpointError, match="single .npy array"):
        sheaflab.NeuralSheaf.load(single)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros((2, 2)))
    with pytest.raises(CheckpointError, match="no 'format' entry, so it is not a sheaflab checkpoint"):
        sheaflab.SheafTrainer.load(foreign)
    with pytest.raises(FileNotFoundError):
        sheaflab.SheafTrainer.load(tmp_path / "missing.npz")


class _Payload:
    """Unpickling this would create a file: the proof that a load ran code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_loading_never_unpickles(saved, tmp_path):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.npz"
    with open(evil, "wb") as f:
        pickle.dump(_Payload(marker), f)
    with pytest.raises(CheckpointError, match="pickled data.*never runs code"):
        sheaflab.SheafTrainer.load(evil)
    # an object array inside an otherwise valid checkpoint
    inside = tmp_path / "inside.npz"
    _rewrite(saved, inside, **{"W_1": np.array([_Payload(marker)], dtype=object)})
    with pytest.raises(CheckpointError, match="pickled data"):
        sheaflab.SheafTrainer.load(inside)
    assert not marker.exists()


def test_other_version_kind_and_trainer(saved, tmp_path):
    v2 = _rewrite(saved, tmp_path / "v2.npz", version=np.array(2))
    with pytest.raises(CheckpointError, match="v2.npz is format version 2; this sheaflab reads version 1"):
        sheaflab.SheafTrainer.load(v2)
    with pytest.raises(CheckpointError, match="holds a SheafTrainer, not an SGDTrainer: load it with "
                                              "SheafTrainer.load"):
        sheaflab.SGDTrainer.load(saved)
    weights = sheaflab.NeuralSheaf.random([2, 3, 1]).save(tmp_path / "w.npz")
    with pytest.raises(CheckpointError, match="holds a NeuralSheaf's weights.*not a trainer"):
        sheaflab.SheafTrainer.load(weights)
    odd = _rewrite(saved, tmp_path / "odd.npz", format=np.array("other.tool"))
    with pytest.raises(CheckpointError, match="format 'other.tool'"):
        sheaflab.SheafTrainer.load(odd)


def test_other_network(saved, tmp_path):
    with pytest.raises(CheckpointError, match=r"dims \[2, 6, 5, 1\], not the expected \[2, 8, 1\]"):
        sheaflab.SheafTrainer.load(saved, dims=[2, 8, 1])
    with pytest.raises(CheckpointError, match="'identity' head, not the expected 'softmax'"):
        sheaflab.SheafTrainer.load(saved, head="softmax")
    # arrays that do not fit the dims the file declares
    wrong = _rewrite(saved, tmp_path / "wrong.npz", W_2=np.zeros((5, 7)))
    with pytest.raises(CheckpointError, match=r"entry 'W_2' has shape \(5, 7\), expected \(5, 6\)"):
        sheaflab.SheafTrainer.load(wrong)
    warm = _rewrite(saved, tmp_path / "warm.npz", **{"warm.z_1": np.zeros((39, 6))})
    with pytest.raises(CheckpointError, match=r"'warm.z_1' has shape \(39, 6\), expected \(40, 6\)"):
        sheaflab.SheafTrainer.load(warm)
    adam = _rewrite(saved, tmp_path / "adam.npz", **{"opt.m.3": np.zeros(4)})
    with pytest.raises(CheckpointError, match=r"'opt.m.3' has shape \(4,\), expected \(6,\)"):
        sheaflab.SheafTrainer.load(adam)


def test_incomplete_or_inconsistent_files(saved, tmp_path):
    gone = _rewrite(saved, tmp_path / "gone.npz", **{"history.residual": None})
    with pytest.raises(CheckpointError, match="no entry 'history.residual': it is incomplete"):
        sheaflab.SheafTrainer.load(gone)
    step = _rewrite(saved, tmp_path / "step.npz", **{"history.residual": np.zeros(3)})
    with pytest.raises(CheckpointError, match="'history.residual' has shape.*out of step"):
        sheaflab.SheafTrainer.load(step)
    meta = json.loads(str(_members(saved)["meta"]))
    for key, value, match in (("rng", {"bit_generator": "os.system", "state": {}}, "unknown bit generator"),
                              ("optimizer", {"name": "lbfgs"}, "unknown optimizer 'lbfgs'"),
                              ("hyper", {**meta["hyper"], "lr": -1.0}, "hyperparameters.*lr"),
                              ("head", "tanh", "unknown head 'tanh'")):
        bad = _rewrite(saved, tmp_path / f"{key}.npz", meta=np.array(json.dumps({**meta, key: value})))
        with pytest.raises(CheckpointError, match=match):
            sheaflab.SheafTrainer.load(bad)
    broken = _rewrite(saved, tmp_path / "json.npz", meta=np.array("{not json"))
    with pytest.raises(CheckpointError, match="corrupt 'meta' entry"):
        sheaflab.SheafTrainer.load(broken)
