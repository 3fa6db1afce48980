"""Registers the spaces of nas-spaces (lazy factories: importing this module does not import torch)."""

from __future__ import annotations

from typing import Any

from nas_core import hookimpl

_BOTH = frozenset({"differentiable", "single_path"})


@hookimpl
def nas_register_spaces(registry: Any) -> None:
    registry.add(
        "nb201",
        "nas_spaces._nb201:NB201Space",
        aliases=("nasbench201", "nas_bench_201", "nats_tss"),
        summary="NAS-Bench-201 cell space: 5 ops on 6 edges, 15625 cells, official C=16 N=5 network",
        capabilities=_BOTH | {"enumerable"},
        paper="Dong & Yang, NAS-Bench-201, ICLR 2020 (arXiv:2001.00326)",
    )
