"""The plugin module named by the entry point. It imports only ``nas_core.hookimpl`` and registers lazy
"module:attr" factories, so ``nas plugins`` and ``nas --help`` never import torch."""

from nas_core import hookimpl


@hookimpl
def nas_register_spaces(registry):
    registry.add(
        "chain",
        "nas_plugin_example.space:ChainSpace",
        summary="a chain of blocks, each conv3x3 / conv5x5 / skip (example plugin)",
        capabilities=frozenset({"single_path", "differentiable", "enumerable"}),
    )


@hookimpl
def nas_register_objectives(registry):
    registry.add(
        "denoise",
        "nas_plugin_example.objective:DenoiseObjective",
        summary="predict the clean image from a noisy copy (label-free; example plugin)",
        requires_labels=False,
        smoke={"noise": 0.3},  # options that make a composition test take seconds (nothing to shrink here)
    )


@hookimpl
def nas_register_proxies(registry):
    registry.add(
        "depth",
        "nas_plugin_example.proxy:DepthProxy",
        summary="number of non-skip blocks (example plugin)",
        data_free=True,
        higher_is_better=True,
    )
