"""Training: TrainState, the jitted data-parallel step, the fit loop, orbax checkpoints, runs."""

from genjax_models.train.checkpoint import Checkpointer
from genjax_models.train.config import TrainConfig, learning_rate_schedule, make_optimizer
from genjax_models.train.fit import FitResult, abstract_state, fit, init_state
from genjax_models.train.mixed_precision import with_compute_dtype
from genjax_models.train.run import LoadedRun, build, load_run, resolve_config
from genjax_models.train.sharding import data_mesh
from genjax_models.train.state import TrainState
from genjax_models.train.step import make_train_step, make_update

__all__ = [
    "Checkpointer",
    "FitResult",
    "LoadedRun",
    "TrainConfig",
    "TrainState",
    "abstract_state",
    "build",
    "data_mesh",
    "fit",
    "init_state",
    "learning_rate_schedule",
    "load_run",
    "make_optimizer",
    "make_train_step",
    "make_update",
    "resolve_config",
    "with_compute_dtype",
]
