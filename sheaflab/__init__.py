"""sheaflab: training ReLU networks by sheaf diffusion, without backpropagation.

The network is a cellular sheaf on a path graph (:class:`NeuralSheaf`); the fast phase relaxes each
example's cochain to equilibrium (:func:`equilibrium`); the slow phase moves each weight by an
edge-local rule (:func:`local_gradients`); :class:`SheafTrainer` runs the two in turn (Algorithm 4)
and :class:`SGDTrainer` is the backprop baseline.

Importing the package needs only numpy, scipy and tqdm and changes nothing process-wide. The figures and
widgets (``from sheaflab import figures, widgets``) need the ``viz`` extra (plotly, ipywidgets).
"""

from . import augment, closed_form, comparison, datasets, heads, measure, spectral  # noqa: F401
from ._alloc import tune_allocator
from .backprop import backprop_gradients
from .checkpoint import CheckpointError
from .dynamics import Trajectory, euler_step, flow_velocity
from .joint import JointFlow, JointHistory
from .local_rule import local_gradients
from .sheaf import Cochain, Discords, Edge, NeuralSheaf, flatten
from .solve import Equilibrium, equilibrium, residual
from .global_min import global_equilibrium
from .parameter_sheaf import ParameterSheaf, parameter_sheaf
from .train import History, SGDTrainer, SheafTrainer, TrainingDiverged
from . import experiments, minima, parallel, timescales  # noqa: E402,F401
from .parallel import WorkersLost  # noqa: E402

from ._version import __version__  # noqa: E402

__all__ = [
    "Cochain", "Discords", "Edge", "NeuralSheaf", "flatten",
    "Equilibrium", "Trajectory", "equilibrium", "global_equilibrium", "residual", "parameter_sheaf", "ParameterSheaf",
    "local_gradients", "backprop_gradients", "flow_velocity", "euler_step",
    "History", "JointFlow", "JointHistory", "SGDTrainer", "SheafTrainer", "TrainingDiverged",
    "CheckpointError", "WorkersLost",
    "tune_allocator", "augment", "closed_form", "comparison", "datasets", "experiments", "heads", "measure",
    "parallel", "spectral",
]
