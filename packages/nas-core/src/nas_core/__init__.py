"""nas-core: contracts, plugin system, data, runtime and CLI of the label-free NAS ecosystem.

Plugins import only :data:`hookimpl`::

    from nas_core import hookimpl

    @hookimpl
    def nas_register_spaces(registry):
        registry.add("thing", "nas_thing.space:ThingSpace", summary="my space")

Torch-heavy names (``RunContext``, ``Objective``, data loading, ...) are imported lazily on first
access, so listing plugins and ``nas --help`` never import torch.

Importing nas_core before torch makes idle OpenMP threads sleep instead of spinning
(``OMP_WAIT_POLICY=PASSIVE`` unless set): on a machine where other processes hold cores, spinning threads made
each training step up to 30x slower (see :mod:`nas_core._threads`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .__about__ import __version__
from ._arch import CAPABILITIES, Architecture, Cost, SearchSpace, make_rng
from ._errors import (
    ArchitectureError,
    CheckpointError,
    ConfigError,
    DataError,
    IncompatibleError,
    NasError,
    NonFiniteError,
    PluginError,
    RegistryClashError,
    Terminated,
    UnknownNameError,
)
from ._factory import (
    arch_from_json,
    create_objective,
    create_proxy,
    create_space,
    create_strategy,
    get_entry,
    list_objectives,
    list_proxies,
    list_spaces,
    list_strategies,
)
from ._lazy import lazy_exports
from ._features import FeatureInfo, feature_take_indices
from ._io import atomic_write, atomic_write_bytes, atomic_write_text
from ._markers import hookimpl
from ._options import Range
from ._plugins import (
    NasPluginManager,
    PluginInfo,
    get_plugin_manager,
    register_plugin,
    set_plugin_manager,
    unregister_plugin,
    use_plugin_manager,
)
from ._registry import Entry, Origin, Registry, accepted_kwargs, normalize_name
from ._result import Candidate, SearchResult
from ._table import BenchmarkTable, TableRow
from ._threads import prefer_passive_wait

prefer_passive_wait()  # before anything imports torch (none of the imports above does)

_LAZY = {
    # contracts needing torch
    "Supernet": "._contracts",
    "Objective": "._contracts",
    "Proxy": "._contracts",
    "Strategy": "._contracts",
    "LossFn": "._contracts",
    "forward_features": "._contracts",
    "check_compatible": "._compat",
    "evaluator_kind": "._contracts",
    # runtime
    "RunContext": "._context",
    # label-free pseudo-classes (torch)
    "pseudo_targets": "._pseudo",
    "DistState": "._runtime",
    "select_device": "._runtime",
    "seed_everything": "._runtime",
    "autocast": "._runtime",
    "init_distributed": "._runtime",
    "save_checkpoint": "._runtime",
    "load_checkpoint": "._runtime",
    "apply_threads": "._threads",
    # data
    "ImageData": "._data",
    "TensorImages": "._data",
    "EmbeddedDigits": "._data",
    "EmbeddedPhotos": "._data",
    "ImageFolderData": "._data",
    "TorchvisionImages": "._data",
    "load_data": "._data",
    "split_dataset": "._data",
    "make_loader": "._data",
    "GlobalBatchSampler": "._data",
    "preserved_state": "._preserve",
    # composition
    "search": "._search",
    "resolve_config": "._search",
    "load_config": "._config",
    "train_architecture": "._train",
}

__all__ = [
    "__version__",
    "hookimpl",
    "lazy_exports",
    # plugins and registry
    "NasPluginManager",
    "PluginInfo",
    "get_plugin_manager",
    "set_plugin_manager",
    "use_plugin_manager",
    "register_plugin",
    "unregister_plugin",
    "Registry",
    "Entry",
    "Origin",
    "normalize_name",
    "accepted_kwargs",
    "create_space",
    "create_objective",
    "create_strategy",
    "create_proxy",
    "list_spaces",
    "list_objectives",
    "list_strategies",
    "list_proxies",
    "get_entry",
    # values and contracts
    "Architecture",
    "Cost",
    "SearchSpace",
    "CAPABILITIES",
    "make_rng",
    "arch_from_json",
    "FeatureInfo",
    "feature_take_indices",
    "Candidate",
    "SearchResult",
    "BenchmarkTable",
    "TableRow",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    # errors
    "NasError",
    "UnknownNameError",
    "RegistryClashError",
    "ConfigError",
    "IncompatibleError",
    "ArchitectureError",
    "NonFiniteError",
    "CheckpointError",
    "DataError",
    "PluginError",
    "Terminated",
    # option declarations
    "Range",
    *sorted(_LAZY),
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


if TYPE_CHECKING:  # pragma: no cover
    from ._compat import check_compatible
    from ._context import RunContext
    from ._contracts import (
        LossFn,
        Objective,
        Proxy,
        Strategy,
        Supernet,
        evaluator_kind,
        forward_features,
    )
    from ._data import (
        EmbeddedDigits,
        EmbeddedPhotos,
        GlobalBatchSampler,
        ImageData,
        ImageFolderData,
        TensorImages,
        TorchvisionImages,
        load_data,
        make_loader,
        split_dataset,
    )
    from ._config import load_config
    from ._preserve import preserved_state
    from ._search import resolve_config, search
    from ._train import train_architecture
    from ._runtime import (
        DistState,
        autocast,
        init_distributed,
        load_checkpoint,
        save_checkpoint,
        seed_everything,
        select_device,
    )
    from ._threads import apply_threads
