"""sheaflab: training ReLU networks by sheaf diffusion, without backpropagation.

The network is a cellular sheaf on a path graph (:class:`NeuralSheaf`); the fast phase relaxes each
example's cochain to equilibrium (:func:`equilibrium`); the slow phase moves each weight by an
edge-local rule (:func:`local_gradients`).
"""

from ._alloc import tune_allocator

ALLOCATOR_TUNED = tune_allocator()

from . import augment, datasets  # noqa: E402
from .backprop import backprop_gradients
from .sheaf import Cochain, Discords, Edge, NeuralSheaf
from .solve import (Equilibrium, Trajectory, edge_gradients, equilibrium, local_gradients,
                    region_minimizer, residual)
from .train import History, JointFlow, SGDTrainer, SheafTrainer, TrainingDiverged
from . import experiments, parallel  # noqa: E402  (figures and widgets need plotly: import them explicitly)

__version__ = "0.1.0"

__all__ = [
    "Cochain", "Discords", "Edge", "NeuralSheaf", "Equilibrium", "Trajectory", "equilibrium",
    "local_gradients", "region_minimizer", "residual", "backprop_gradients", "datasets",
    "augment", "experiments", "parallel", "edge_gradients", "History", "JointFlow", "SGDTrainer", "SheafTrainer", "TrainingDiverged",
]
