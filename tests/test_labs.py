"""The lab notebooks: student version generated from the solutions, TODO stubs, and the labcheck checks.

The notebooks themselves are executed by ``pytest --nbval-lax labs/``; these tests check what holds
them together: the student notebook never drifts from the solutions, every solution block becomes a
TODO stub, and every check can tell a right answer from a wrong one.
"""

import importlib.util
import re
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

import sheaflab
from sheaflab import labcheck

LABS = Path(__file__).resolve().parent.parent / "labs"
SOLUTIONS = LABS / "lab12_solutions.ipynb"
STUDENT = LABS / "lab12_sheaf_trainer.ipynb"
NOTEBOOKS = [SOLUTIONS, STUDENT, LABS / "exercises.ipynb"]

# the TODO functions of the lab and the check that grades each one
CHECKS = {
    "edge_discords": labcheck.check_discords,
    "local_update": labcheck.check_local_update,
    "sheaf_step": labcheck.check_sheaf_step,
    "epochs_to_target": labcheck.check_epochs_to_target,
    "fit_line": labcheck.check_fit_line,
    "best_time": labcheck.check_best_time,
    "softmax_output_energy": labcheck.check_softmax_energy,
}


def _load_make_student():
    spec = importlib.util.spec_from_file_location("make_student", LABS / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_student = _load_make_student()


def _todo_functions(path):
    """Run the notebook's imports (its first code cell after the install cell) and every cell
    holding a TODO; return the namespace."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"
            and "install-sheaflab" not in c.metadata.get("tags", [])]
    ns = {}
    exec(compile(code[0].source, f"{path.name}:imports", "exec"), ns)
    for cell in code:
        if "# TODO:" in cell.source:
            exec(compile(cell.source, f"{path.name}:{cell.id}", "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def solutions():
    return _todo_functions(SOLUTIONS)


@pytest.fixture(scope="module")
def stubs():
    return _todo_functions(STUDENT)


# ---------------------------------------------------------------------------------- (a) no drift
def test_student_notebook_is_generated_from_the_solutions():
    assert STUDENT.read_text(encoding="utf-8") == make_student.render(SOLUTIONS), \
        "labs/lab12_sheaf_trainer.ipynb is out of date: run python labs/make_student.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"


# ---------------------------------------------------------------------------------- (b) stubs
def test_every_solution_block_has_a_todo_stub():
    sol = nbformat.read(SOLUTIONS, as_version=4)
    stu = nbformat.read(STUDENT, as_version=4)
    blocks = make_student.solution_blocks(sol)
    assert len(blocks) == len(CHECKS)
    by_id = {c.id: c for c in stu.cells}
    for cell_id, hint in blocks:
        assert hint != make_student.DEFAULT_HINT, f"cell {cell_id}: add a '# TODO:' hint above the block"
        source = by_id[cell_id].source
        assert f"# TODO: {hint}" in source
        assert "raise NotImplementedError(\"TODO: " in source
    stub_count = sum(c.source.count("raise NotImplementedError(\"TODO: ") for c in stu.cells)
    assert stub_count == len(blocks)
    text = STUDENT.read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "STRICT = False" in text and "STRICT = True" not in text


def test_solutions_only_use_the_strict_flag_in_checks():
    sol = nbformat.read(SOLUTIONS, as_version=4)
    calls = [line for c in sol.cells if c.cell_type == "code" for line in c.source.split("\n")
             if "labcheck.check_" in line]
    assert len(calls) == len(CHECKS)
    assert all("strict=STRICT" in line for line in calls)


def test_generator_keeps_indentation_and_hints():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title\n\n<!-- BEGIN SOLUTION -->\nsecret\n<!-- END SOLUTION -->\n\nText"),
        nbformat.v4.new_markdown_cell("<!-- BEGIN SOLUTION -->only for instructors<!-- END SOLUTION -->"),
        nbformat.v4.new_code_cell("STRICT = True  # note"),
        nbformat.v4.new_code_cell(
            "def f(x):\n    # TODO: double \"x\"\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION\n\n"
            "def g():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION"),
    ]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="old")]
    nb.cells[2].execution_count = 3
    out = make_student.make_student(nb)
    assert [c.cell_type for c in out.cells] == ["markdown", "code", "code"]
    assert out.cells[0].source == "# Title\n\nText"
    assert out.cells[1].source.startswith("STRICT = False") and out.cells[1].outputs == []
    assert out.cells[1].execution_count is None
    assert out.cells[2].source == ("def f(x):\n    # TODO: double \"x\"\n"
                                   "    raise NotImplementedError(\"TODO: double \\\"x\\\"\")\n\n"
                                   "def g():\n    raise NotImplementedError(\"TODO: complete this block\")")
    ns = {}
    exec(out.cells[2].source, ns)
    with pytest.raises(NotImplementedError, match='TODO: double "x"'):
        ns["f"](1)
    assert nb.cells[3].source.count("BEGIN SOLUTION") == 2      # the input is left alone


def test_generator_renames_the_student_labels():
    nb = nbformat.v4.new_notebook()
    fig = nbformat.v4.new_code_cell("fig")
    fig.metadata["mystnb"] = {"figure": {"name": "fig-lab-a",
                                         "caption": "As {numref}`fig-lab-b`, next to {numref}`fig-gd-curves`."}}
    other = nbformat.v4.new_code_cell("fig")
    other.metadata["mystnb"] = {"figure": {"name": "fig-lab-b", "caption": "B."}}
    nb.cells = [
        nbformat.v4.new_markdown_cell("(sec-lab-x)=\n## X\n\n{numref}`fig-lab-a` and {numref}`Figure %s <fig-lab-b>`,\n"
                                      "{ref}`sec-lab-x`, {ref}`the chapter <sec-hessian>`, {numref}`fig-gd-curves`, "
                                      "[the curves](#fig-lab-a), [the chapter's](#fig-gd-curves)."),
        fig, other,
    ]
    out = make_student.make_student(nb)
    assert out.cells[0].source == ("(sec-lab-x-student)=\n## X\n\n{numref}`fig-lab-a-student` and "
                                   "{numref}`Figure %s <fig-lab-b-student>`,\n{ref}`sec-lab-x-student`, "
                                   "{ref}`the chapter <sec-hessian>`, {numref}`fig-gd-curves`, "
                                   "[the curves](#fig-lab-a-student), [the chapter's](#fig-gd-curves).")
    assert out.cells[1].metadata["mystnb"]["figure"] == {
        "name": "fig-lab-a-student",
        "caption": "As {numref}`fig-lab-b-student`, next to {numref}`fig-gd-curves`."}
    assert out.cells[2].metadata["mystnb"]["figure"]["name"] == "fig-lab-b-student"
    assert nb.cells[1].metadata["mystnb"]["figure"]["name"] == "fig-lab-a"      # the input is left alone
    assert make_student.defined_labels(out) == ["sec-lab-x-student", "fig-lab-a-student", "fig-lab-b-student"]


@pytest.mark.parametrize("source", ["# BEGIN SOLUTION\nx = 1", "x = 1\n# END SOLUTION",
                                    "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION"])
def test_generator_rejects_unmatched_markers(source):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    with pytest.raises(make_student.MarkerError, match="cell 0"):
        make_student.make_student(nb)


# ---------------------------------------------------------------------------------- (c) the checks
@pytest.mark.parametrize("name", list(CHECKS))
def test_check_accepts_the_reference_solution(solutions, name, capsys):
    assert CHECKS[name](solutions[name], strict=True) == labcheck.CORRECT
    assert capsys.readouterr().out.startswith("[correct]")


@pytest.mark.parametrize("name", list(CHECKS))
def test_check_reports_a_stub_without_raising(stubs, name, capsys):
    assert CHECKS[name](stubs[name]) == labcheck.MISSING
    assert "[not implemented yet]" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not implemented"):
        CHECKS[name](stubs[name], strict=True)


def _broken(solutions):
    """A plausible mistake for each TODO."""
    ref = solutions

    def discords_sign(sheaf, c):                  # output edge with the wrong sign
        d = ref["edge_discords"](sheaf, c)
        d["output"] = -d["output"]
        return d

    def discords_linear(sheaf, c):                # forgot the ReLU on the relu edge
        d = ref["edge_discords"](sheaf, c)
        for l in range(1, sheaf.depth):
            d[f"relu_{l}"] = c.z[l - 1] - c.a[l - 1]
        return d

    def update_sum(sheaf, eq):                    # summed over the batch instead of averaged
        gW, gb = sheaflab.local_gradients(sheaf, eq)
        B = eq.cochain.x.shape[0]
        return [B * g for g in gW], [B * g for g in gb]

    def update_wrong_stalk(sheaf, eq):            # pre-activations z_{l-1} instead of activations a_{l-1}
        _, gb = sheaflab.local_gradients(sheaf, eq)
        B = eq.cochain.x.shape[0]
        pres = [eq.cochain.x, *eq.z[:-1]]
        gW = [eq.discord[f"affine_{l}"].T @ pres[l - 1] / B for l in range(1, sheaf.depth + 1)]
        return gW, gb

    def step_backprop(sheaf, X, Y, lr):           # SGD's gradient, not the local rule
        loss, gW, gb = sheaflab.backprop_gradients(sheaf, X, Y)
        for p, g in zip(sheaf.weights + sheaf.biases, gW + gb):
            p -= lr * g
        return loss

    def step_not_in_place(sheaf, X, Y, lr):       # forgot to update the sheaf
        return float(sheaflab.equilibrium(sheaf, X, Y).energy.mean())

    def epochs_zero_based(curve, target):
        hits = np.flatnonzero(np.asarray(curve) <= target)
        return int(hits[0]) if hits.size else None

    def epochs_strict(curve, target):             # < instead of <=
        hits = np.flatnonzero(np.asarray(curve) < target)
        return int(hits[0]) + 1 if hits.size else None

    def fit_r_not_r2(x, y):
        slope, intercept = np.polyfit(x, y, 1)
        return float(slope), float(intercept), float(np.corrcoef(x, y)[0, 1])

    def fit_swapped(x, y):
        slope, intercept, r2 = labcheck.fit_line(x, y)
        return intercept, slope, r2

    def time_mean(fn, repeats):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return float(np.mean(times))

    def time_once(fn, repeats):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def energy_overflows(z, yhat):                # log(sum(exp(z))) without the shift
        with np.errstate(over="ignore"):
            return np.log(np.exp(z).sum(axis=1)) - (yhat * z).sum(axis=1)

    def energy_no_entropy(z, yhat):               # the cross-entropy only: wrong for soft labels
        m = z.max(axis=1)
        return m + np.log(np.exp(z - m[:, None]).sum(axis=1)) - (yhat * z).sum(axis=1)

    return {
        "softmax_output_energy": [energy_overflows, energy_no_entropy],
        "edge_discords": [discords_sign, discords_linear],
        "local_update": [update_sum, update_wrong_stalk],
        "sheaf_step": [step_backprop, step_not_in_place],
        "epochs_to_target": [epochs_zero_based, epochs_strict],
        "fit_line": [fit_r_not_r2, fit_swapped],
        "best_time": [time_mean, time_once],
    }


@pytest.mark.parametrize("name", list(CHECKS))
def test_check_rejects_broken_solutions(solutions, name, capsys):
    for broken in _broken(solutions)[name]:
        assert CHECKS[name](broken) == labcheck.WRONG, broken.__name__
        assert capsys.readouterr().out.startswith("[wrong]")
        with pytest.raises(AssertionError, match=r"\[wrong\]"):
            CHECKS[name](broken, strict=True)


@pytest.mark.parametrize("name", list(CHECKS))
def test_check_reports_an_exception_as_wrong(name, capsys):
    def crashes(*args):
        raise KeyError("affine_9")

    assert CHECKS[name](crashes) == labcheck.WRONG
    assert "raised KeyError" in capsys.readouterr().out


# ---------------------------------------------------------------------------------- reference helpers
def test_fit_line_matches_polyfit():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 5, 20)
    y = 2.0 * x - 1.0 + rng.normal(0, 0.3, 20)
    slope, intercept, r2 = labcheck.fit_line(x, y)
    assert np.allclose([slope, intercept], np.polyfit(x, y, 1))
    assert r2 == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)
    assert labcheck.fit_line([0, 1, 2], [1, 1, 1]) == pytest.approx((0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="constant"):
        labcheck.fit_line([1, 1, 1], [0, 1, 2])
    with pytest.raises(ValueError, match="same length"):
        labcheck.fit_line([1, 2], [1, 2, 3])


def test_best_time_takes_the_minimum_and_counts_calls():
    calls = []
    delays = iter([0.0, 0.03, 0.001, 0.03])

    def f():
        calls.append(1)
        time.sleep(next(delays))

    t = labcheck.best_time(f, repeats=3)
    assert len(calls) == 4                      # one warm-up and three timed calls
    assert 0.001 <= t < 0.02
    with pytest.raises(ValueError, match="repeats"):
        labcheck.best_time(f, repeats=0)
    with pytest.raises(TypeError, match="callable"):
        labcheck.best_time(3)


# ---------------------------------------------------------------------------------- (d) figures and labels
ROOT = LABS.parent
PAGES = sorted([*ROOT.glob("book/*.ipynb"), *ROOT.glob("labs/*.ipynb")])
#: Labels an exercise, solution or proof directive defines (``:label: ex-direct``).
DIRECTIVE_LABEL = re.compile(r"^:(?:label|name):[ \t]*(\S+)[ \t]*$", re.MULTILINE)


def _labels_and_references():
    """``({label: [pages defining it]}, [(page, referenced label)])`` over every book page."""
    defined, refs = {}, []
    for path in PAGES:
        nb = nbformat.read(path, as_version=4)
        page = path.relative_to(ROOT).as_posix()
        labels = make_student.defined_labels(nb)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                labels += DIRECTIVE_LABEL.findall(cell.source)
                refs += [(page, label) for label in make_student.references(cell.source)]
            else:
                caption = (cell.metadata.get("mystnb", {}).get("figure") or {}).get("caption", "")
                refs += [(page, label) for label in make_student.references(str(caption))]
        for label in labels:
            defined.setdefault(label, []).append(page)
    return defined, refs


def test_no_label_is_defined_twice_and_every_reference_resolves():
    """Sphinx labels are global: a label on two pages (the student and the solutions page share their
    cells) is a duplicate-label warning, and a {numref} to nothing an undefined-label one; both fail
    the -W build."""
    defined, refs = _labels_and_references()
    assert any(label.startswith("fig-lab-") for label in defined)
    twice = {label: pages for label, pages in defined.items() if len(pages) > 1}
    assert not twice, f"labels defined more than once: {twice}"
    dangling = [(page, label) for page, label in refs if label not in defined]
    assert not dangling, f"references to labels no page defines: {dangling}"
    student = STUDENT.relative_to(ROOT).as_posix()
    for page, label in refs:                      # the student page points to its own figures
        if page == student and label.startswith("fig-lab-"):
            assert label.endswith(make_student.LABEL_SUFFIX) and defined[label] == [student], label


#: A MyST role (``{numref}`...` ``, ``{doc}`...` ``, ``{prf:ref}`...` ``): JupyterLab shows it as raw text.
MYST_ROLE = re.compile(r"\{[a-z]+(:[a-z]+)?\}`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lab_prose_reads_in_jupyterlab(path):
    """Students read the labs in JupyterLab, which renders plain Markdown: the prose refers to
    figures by links (``[the loss curves](#fig-lab-curves)``, resolved by the book too), never by
    a MyST role that JupyterLab would show as ``{numref}`fig-lab-curves` ``."""
    nb = nbformat.read(path, as_version=4)
    raw = [(i, m.group(0)) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
           for m in MYST_ROLE.finditer(c.source)]
    assert not raw, f"{path.name}: MyST roles in the prose (cell, role): {raw}"


#: The last line of a cell that displays a figure: ``fig``, or a call of ``widgets.*`` / ``figures.*``.
SHOWS_FIGURE = re.compile(r"^(fig|(widgets|figures)\.\w+\(.*\))$")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_lab_figure_is_numbered_and_captioned(path):
    nb = nbformat.read(path, as_version=4)
    shown, bare = 0, []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = [line for line in cell.source.split("\n") if line.strip()]
        if not lines or not SHOWS_FIGURE.match(lines[-1].strip()):
            continue
        shown += 1
        figure = cell.metadata.get("mystnb", {}).get("figure") or {}
        if not (figure.get("name", "").startswith("fig-") and len(figure.get("caption", "")) > 40):
            bare.append(cell.id)
    assert shown, f"{path.name}: no figure cell found"
    assert not bare, f"{path.name}: figure cells without a label and caption (mystnb.figure): {bare}"


# ---------------------------------------------------------------- (e) what the prose says (issue 19, issue 22)
def _markdown(path):
    return [(c.get("id"), c.source) for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]


#: Statements the labs must not make: overclaims of locality, the old name of the equilibrium, a
#: "95% interval" over a handful of seeds, a unique minimum of the two-sided energy.
FORBIDDEN = [r"no chain rule crosses", r"never used a backward pass", r"without a backward pass",
             r"without backpropagation", r"two-sided equilibrium", r"95\s*%", r"bootstrap interval",
             r"unique (two-sided )?minim(um|iser|izer) of the (two-sided )?energy\b(?! on)",
             r"monotone root-find"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lab_prose_makes_no_overclaims(path):
    found = [(cid, pat) for cid, text in _markdown(path) for pat in FORBIDDEN
             if re.search(pat, text, re.IGNORECASE)]
    assert not found, f"{path.name}: (cell, statement): {found}"
    text = " ".join(t for _, t in _markdown(path))
    assert "reached equilibrium" in text and "global minimum" in text, \
        f"{path.name}: name the reached equilibrium and the global minimum"


def _math_problems(source, md):
    """Raw LaTeX or stray ``$`` left in the text of parsed MyST markdown, and list items that start
    with a LaTeX command (a display line beginning with ``+ `` or ``- `` read as a bullet)."""
    problems = []

    def walk(tokens):
        for t in tokens:
            if t.children:
                walk(t.children)
            if t.type == "text" and re.search(r"\\[A-Za-z]+|\$", t.content):
                problems.append(t.content[:80])
    tokens = md.parse(source)
    walk(tokens)
    lines = source.split("\n")
    problems += [lines[t.map[0]].strip()[:80] for t in tokens if t.type == "list_item_open" and t.map
                 and re.match(r"^[-+*]\s*\\", lines[t.map[0]].strip())]
    return problems


@pytest.fixture(scope="module")
def myst_md():
    config = pytest.importorskip("myst_parser.config.main")
    mdit = pytest.importorskip("myst_parser.parsers.mdit")
    from markdown_it.renderer import RendererHTML
    cfg = config.MdParserConfig(enable_extensions={"dollarmath", "amsmath", "colon_fence", "deflist",
                                                   "html_image"})
    return mdit.create_md_parser(cfg, RendererHTML)


def test_math_checker_catches_what_did_not_render(myst_md):
    """The checker flags the old exercises' forms: a display glued to its paragraph with a line
    that starts with ``+ \\Bigl(``, and accepts the same display as its own block."""
    bad = "the chain rule gives\n$$a = b\n+ \\Bigl(c\\Bigr) = d,$$\nbecause $x$ holds."
    good = "the chain rule gives\n\n$$\na = b\n+ \\Bigl(c\\Bigr) = d,\n$$\n\nbecause $x$ holds."
    assert _math_problems(bad, myst_md)
    assert _math_problems(good, myst_md) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lab_math_renders(path, myst_md):
    found = [(cid, p) for cid, text in _markdown(path) for p in _math_problems(text, myst_md)]
    assert not found, f"{path.name}: math left as raw text (cell, text): {found}"


# ---------------------------------------------------------------- (f) the case Part 1 of the lab shows
def test_one_hidden_layer_case_reached_vs_global():
    """[1, 1, 1], W1 = -0.1, b1 = 0, w = 1, b2 = 0, x = 1, y = 10: the reached equilibrium (both
    methods) has energy 50/3; the global minimum, by brute force over z_1 written out here without
    sheaflab, is 12.75125 at z_1 = 2.425, a_1 = 4.95, z_2 = 7.475; the closed form gives it with f_P and
    not with f."""
    from sheaflab.closed_form import denominators, relaxed_energy as closed_residual
    net = sheaflab.NeuralSheaf([np.array([[-0.1]]), np.array([[1.0]])], [np.zeros(1), np.zeros(1)])
    x, y = np.array([[1.0]]), np.array([[10.0]])
    for method in ("direct", "diffusion"):
        eq = sheaflab.equilibrium(net, x, y, method=method, tol=1e-12 if method == "diffusion" else None)
        assert eq.energy[0] == pytest.approx(50 / 3, abs=1e-9)
        assert eq.z[0][0, 0] == pytest.approx(-0.1, abs=1e-12)           # the forward-inactive unit stays put
    z1 = np.linspace(-5.0, 10.0, 150_001)
    a1 = (np.maximum(z1, 0.0) + 5.0) / 1.5                               # argmin over a_1 once z_2 = (a_1 + 10)/2
    z2 = (a1 + 10.0) / 2
    E = 0.5 * ((-0.1 - z1) ** 2 + (np.maximum(z1, 0.0) - a1) ** 2 + (a1 - z2) ** 2 + (z2 - 10.0) ** 2)
    k = int(np.argmin(E))
    assert E[k] == pytest.approx(12.75125, abs=1e-7)
    assert (z1[k], a1[k], z2[k]) == pytest.approx((2.425, 4.95, 7.475), abs=1e-3)
    on, off = np.array([[True]]), np.array([[False]])
    assert closed_residual(net, x, y, on, off)[0] == pytest.approx(12.75125, abs=1e-12)      # with f_P
    assert (0.0 - 10.0) ** 2 / (4 * denominators(net, on)[0]) == pytest.approx(12.5)         # with f: wrong
    assert closed_residual(net, x, y, off, off)[0] == pytest.approx(50 / 3)                  # the reached one


def test_forward_inactive_units_never_move_and_active_ones_never_turn_off():
    """The one-hidden-layer statement Part 1 of the lab checks, here on random nets with biases: at the
    reached equilibrium (direct and heat flow) z_j = u_j for forward-inactive units, z_j >= 0 for the
    forward-active ones, and the two methods agree."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        net = sheaflab.NeuralSheaf.random([3, 9, 1], seed=seed)
        net.biases[0][:] = rng.normal(0.0, 0.5, 9)
        X, Y = rng.uniform(-2, 2, (40, 3)), rng.normal(0.0, 3.0, (40, 1))
        U = X @ net.weights[0].T + net.biases[0]
        direct = sheaflab.equilibrium(net, X, Y)
        heat = sheaflab.equilibrium(net, X, Y, method="diffusion", tol=1e-10)
        for eq in (direct, heat):
            assert np.abs(eq.z[0] - U)[U < 0].max() == 0.0
            assert eq.z[0][U > 0].min() >= 0.0
        assert np.abs(direct.energy - heat.energy).max() < 1e-10
