"""DARTS genotypes: the ``Genotype(normal=[(op, input), ...], normal_concat=..., reduce=..., reduce_concat=...)``
value, its parser, published genotypes, and the S0-S4 op sets (R-DARTS, Zela et al., ICLR 2020)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from nas_core import Architecture, ArchitectureError

from ._darts_ops import OP_NAMES

__all__ = [
    "DartsArch",
    "Genotype",
    "S0_OPS",
    "PRESETS",
    "edge_index",
    "edge_nodes",
    "NUM_EDGES",
    "GENOTYPES",
    "DARTS_V1",
    "DARTS_V2",
    "PC_DARTS",
    "PC_DARTS_IMAGENET",
    "PDARTS",
    "NASNET",
    "AMOEBANET",
]

#: S0: the original DARTS op set, in the order of ``arch_weights`` columns.
S0_OPS: tuple[str, ...] = OP_NAMES[:8]
STEPS = 4
NUM_EDGES = sum(2 + i for i in range(STEPS))  # 14
_KNOWN = ", ".join(OP_NAMES)


def edge_index(node: int, src: int) -> int:
    """Row of ``arch_weights`` of the edge ``node <- src`` (DARTS numbering: nodes 2..5, inputs 0, 1)."""
    i = node - 2
    return sum(2 + k for k in range(i)) + src


def edge_nodes(e: int) -> tuple[int, int]:
    """(node, src) of edge row ``e``."""
    for node in range(2, 2 + STEPS):
        for src in range(node):
            if edge_index(node, src) == e:
                return node, src
    raise IndexError(f"edge {e} out of range 0..{NUM_EDGES - 1}")


Cell = tuple[tuple[str, int], ...]


@dataclass(frozen=True, eq=False)
class DartsArch(Architecture):
    """A DARTS genotype. ``str()`` is the DARTS ``Genotype(...)`` form, so published genotypes paste in.

    Entry ``k`` of a cell list feeds node ``2 + k // 2`` from ``input`` (0 and 1 are the two previous
    cells, 2.. earlier nodes). Equality ignores the order of the two entries of a node (their sum is
    the same network); the string keeps the order given.
    """

    normal: Cell
    normal_concat: tuple[int, ...]
    reduce: Cell
    reduce_concat: tuple[int, ...]
    space: ClassVar[str] = "darts"

    def __post_init__(self) -> None:
        for name in ("normal", "reduce"):
            cell = getattr(self, name)
            try:
                norm = tuple((str(op), int(j)) for op, j in cell)
            except (TypeError, ValueError) as exc:
                raise ArchitectureError(f"DARTS genotype: '{name}' must be a list of (op, input) pairs, got {cell!r}") from exc
            object.__setattr__(self, name, norm)
            _check_cell(name, norm)
            concat = getattr(self, f"{name}_concat")
            try:
                cc = tuple(int(i) for i in concat)
            except (TypeError, ValueError) as exc:
                raise ArchitectureError(f"DARTS genotype: '{name}_concat' must be a list of node indices, got {concat!r}") from exc
            object.__setattr__(self, f"{name}_concat", cc)
            n_nodes = len(norm) // 2
            if not cc or len(set(cc)) != len(cc) or any(not 2 <= i < 2 + n_nodes for i in cc):
                raise ArchitectureError(
                    f"DARTS genotype: '{name}_concat' = {list(cc)} must list distinct intermediate nodes in 2..{1 + n_nodes}"
                )

    # -- string form ----------------------------------------------------------------------------
    def __str__(self) -> str:
        def cell(c: Cell) -> str:
            return "[" + ", ".join(f"('{op}', {j})" for op, j in c) + "]"

        return (
            f"Genotype(normal={cell(self.normal)}, normal_concat={list(self.normal_concat)}, "
            f"reduce={cell(self.reduce)}, reduce_concat={list(self.reduce_concat)})"
        )

    @classmethod
    def parse(cls, text: Any) -> DartsArch:
        """Parse a ``Genotype(...)`` string (``range(2, 6)`` accepted for concat), or convert a DARTS
        ``Genotype`` namedtuple / a mapping with the four fields."""
        if isinstance(text, DartsArch):
            return text
        if not isinstance(text, str):
            if all(hasattr(text, f) for f in ("normal", "normal_concat", "reduce", "reduce_concat")):
                return cls(text.normal, tuple(text.normal_concat), text.reduce, tuple(text.reduce_concat))
            if isinstance(text, dict):
                return cls.from_fields(text)
            raise ArchitectureError(f"a DARTS genotype is a 'Genotype(normal=..., ...)' string, got {type(text).__name__}")
        s = text.strip()
        if not s:
            raise ArchitectureError(
                "DARTS genotype string is empty; expected \"Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], "
                "reduce=[...], reduce_concat=[2, 3, 4, 5])\""
            )
        try:
            tree = ast.parse(s, mode="eval").body
        except SyntaxError as exc:
            where = f" at column {exc.offset}" if exc.offset else ""
            raise ArchitectureError(f"DARTS genotype {s!r} is not valid Genotype(...) syntax{where}: {exc.msg}") from None
        if not isinstance(tree, ast.Call) or _call_name(tree.func) != "Genotype":
            raise ArchitectureError(
                f"DARTS genotype {s[:60]!r}... must be a call Genotype(normal=..., normal_concat=..., reduce=..., reduce_concat=...)"
            )
        fields = ("normal", "normal_concat", "reduce", "reduce_concat")
        values: dict[str, Any] = {}
        if len(tree.args) > 4:
            raise ArchitectureError(f"DARTS genotype takes 4 fields, got {len(tree.args)} positional values")
        for name, node in zip(fields, tree.args):
            values[name] = _literal(name, node)
        for kw in tree.keywords:
            if kw.arg not in fields:
                raise ArchitectureError(f"DARTS genotype: unknown field {kw.arg!r}; the fields are {', '.join(fields)}")
            if kw.arg in values:
                raise ArchitectureError(f"DARTS genotype: field {kw.arg!r} given twice")
            values[kw.arg] = _literal(kw.arg, kw.value)
        return cls.from_fields(values)

    @classmethod
    def from_fields(cls, values: dict[str, Any]) -> DartsArch:
        fields = ("normal", "normal_concat", "reduce", "reduce_concat")
        missing = [f for f in fields if f not in values]
        if missing:
            raise ArchitectureError(f"DARTS genotype is missing field(s) {', '.join(missing)}")
        for name in ("normal", "reduce"):
            cell = values[name]
            if not isinstance(cell, (list, tuple)):
                raise ArchitectureError(f"DARTS genotype: '{name}' must be a list of (op, input) pairs, got {cell!r}")
            for k, item in enumerate(cell):
                if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], int)):
                    raise ArchitectureError(
                        f"DARTS genotype: {name}[{k}] = {item!r} must be an (op, input) pair like ('sep_conv_3x3', 0)"
                    )
        return cls(tuple(values["normal"]), tuple(values["normal_concat"]), tuple(values["reduce"]), tuple(values["reduce_concat"]))

    # -- equality -------------------------------------------------------------------------------
    def canonical(self) -> tuple[Any, ...]:
        def cell(c: Cell) -> tuple[Any, ...]:
            return tuple(tuple(sorted(c[2 * i : 2 * i + 2], key=lambda t: (t[1], t[0]))) for i in range(len(c) // 2))

        return (cell(self.normal), tuple(sorted(self.normal_concat)), cell(self.reduce), tuple(sorted(self.reduce_concat)))

    def sorted(self) -> DartsArch:
        """The same genotype with each node's two entries ordered by input."""
        n, nc, r, rc = self.canonical()
        return DartsArch(tuple(e for pair in n for e in pair), nc, tuple(e for pair in r for e in pair), rc)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DartsArch):
            return NotImplemented
        return self.canonical() == other.canonical()

    def __hash__(self) -> int:
        return hash(("DartsArch", self.canonical()))

    @property
    def num_nodes(self) -> int:
        return len(self.normal) // 2

    def cell(self, kind: str) -> Cell:
        return self.reduce if kind == "reduce" else self.normal

    def concat(self, kind: str) -> tuple[int, ...]:
        return self.reduce_concat if kind == "reduce" else self.normal_concat


def _call_name(func: ast.AST) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _literal(field: str, node: ast.AST) -> Any:
    if isinstance(node, ast.Call) and _call_name(node.func) == "range":
        try:
            args = [ast.literal_eval(a) for a in node.args]
            return list(range(*args))
        except (ValueError, TypeError) as exc:
            raise ArchitectureError(f"DARTS genotype: field {field!r} has an invalid range(...): {exc}") from None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        raise ArchitectureError(
            f"DARTS genotype: field {field!r} must be a literal list, got {ast.unparse(node)!r}"
        ) from None


def _check_cell(name: str, cell: Cell) -> None:
    if not cell or len(cell) % 2:
        raise ArchitectureError(
            f"DARTS genotype: '{name}' has {len(cell)} entries; a cell lists 2 (op, input) pairs per intermediate node"
        )
    for k, (op, j) in enumerate(cell):
        node = 2 + k // 2
        where = f"{name}[{k}] ({op!r}, {j}) (node {node} <- {j})"
        if op not in OP_NAMES:
            raise ArchitectureError(f"DARTS genotype: {where}: unknown op {op!r}; valid: {_KNOWN}")
        if not 0 <= j < node:
            raise ArchitectureError(
                f"DARTS genotype: {where}: input {j} is out of range; node {node} reads the two cell inputs (0, 1) "
                f"or an earlier node (2..{node - 1})"
                if node > 2
                else f"DARTS genotype: {where}: input {j} is out of range; node 2 reads only the cell inputs 0 and 1"
            )


def Genotype(normal: Sequence[Any], normal_concat: Sequence[int], reduce: Sequence[Any], reduce_concat: Sequence[int]) -> DartsArch:
    """Build a :class:`DartsArch` with DARTS' ``Genotype`` signature (so genotype files paste in)."""
    return DartsArch(tuple(normal), tuple(normal_concat), tuple(reduce), tuple(reduce_concat))


# ----------------------------------------------------------------------------------------------
# published genotypes (as printed in the papers' code releases)
# ----------------------------------------------------------------------------------------------

#: DARTS first order (Liu et al., 2019), CIFAR-10.
DARTS_V1 = Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])  # noqa: E501
#: DARTS second order (Liu et al., 2019), CIFAR-10: 3.3M parameters at C=36, L=20.
DARTS_V2 = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])  # noqa: E501
#: PC-DARTS (Xu et al., ICLR 2020), searched on CIFAR-10: 3.6M parameters at C=36, L=20.
PC_DARTS = Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))  # noqa: E501
#: PC-DARTS searched on ImageNet.
PC_DARTS_IMAGENET = Genotype(normal=[('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_5x5', 2), ('max_pool_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 3)], reduce_concat=range(2, 6))  # noqa: E501
#: P-DARTS (Chen et al., ICCV 2019), CIFAR-10.
PDARTS = Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))  # noqa: E501
#: NASNet-A (Zoph et al., 2018) in DARTS' notation (5 nodes; builds, but is outside the DARTS space).
NASNET = Genotype(normal=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 0), ('sep_conv_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 0), ('avg_pool_3x3', 0), ('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1)], normal_concat=[2, 3, 4, 5, 6], reduce=[('sep_conv_5x5', 1), ('sep_conv_7x7', 0), ('max_pool_3x3', 1), ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('sep_conv_5x5', 0), ('skip_connect', 3), ('avg_pool_3x3', 2), ('sep_conv_3x3', 2), ('max_pool_3x3', 1)], reduce_concat=[4, 5, 6])  # noqa: E501
#: AmoebaNet-A (Real et al., 2019) in DARTS' notation (5 nodes; builds, but is outside the DARTS space).
AMOEBANET = Genotype(normal=[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('avg_pool_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 1), ('skip_connect', 0), ('avg_pool_3x3', 1)], normal_concat=[4, 5, 6], reduce=[('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('sep_conv_7x7', 2), ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('conv_7x1_1x7', 0), ('sep_conv_3x3', 5)], reduce_concat=[3, 4, 6])  # noqa: E501

GENOTYPES: dict[str, DartsArch] = {
    "DARTS_V1": DARTS_V1,
    "DARTS_V2": DARTS_V2,
    "PC_DARTS": PC_DARTS,
    "PC_DARTS_IMAGENET": PC_DARTS_IMAGENET,
    "PDARTS": PDARTS,
    "NASNET": NASNET,
    "AMOEBANET": AMOEBANET,
}

# ----------------------------------------------------------------------------------------------
# op sets: S0 (DARTS) and R-DARTS' S1-S4 (per edge, in arch_weights row order)
# ----------------------------------------------------------------------------------------------

# S1 as released with "Understanding and Robustifying DARTS" (Zela et al., ICLR 2020): for each of
# the 14 edges, the two ops with the highest DARTS weights on that edge.
_S1_NORMAL = [
    ["skip_connect", "dil_conv_3x3"],
    ["skip_connect", "dil_conv_5x5"],
    ["skip_connect", "dil_conv_5x5"],
    ["skip_connect", "sep_conv_3x3"],
    ["skip_connect", "dil_conv_3x3"],
    ["max_pool_3x3", "skip_connect"],
    ["skip_connect", "sep_conv_3x3"],
    ["skip_connect", "sep_conv_3x3"],
    ["skip_connect", "dil_conv_3x3"],
    ["skip_connect", "sep_conv_3x3"],
    ["max_pool_3x3", "skip_connect"],
    ["skip_connect", "dil_conv_3x3"],
    ["dil_conv_3x3", "dil_conv_5x5"],
    ["dil_conv_3x3", "dil_conv_5x5"],
]
_S1_REDUCE = [
    ["max_pool_3x3", "avg_pool_3x3"],
    ["max_pool_3x3", "dil_conv_3x3"],
    ["max_pool_3x3", "avg_pool_3x3"],
    ["max_pool_3x3", "avg_pool_3x3"],
    ["skip_connect", "dil_conv_5x5"],
    ["max_pool_3x3", "avg_pool_3x3"],
    ["max_pool_3x3", "sep_conv_3x3"],
    ["skip_connect", "dil_conv_3x3"],
    ["skip_connect", "dil_conv_5x5"],
    ["max_pool_3x3", "avg_pool_3x3"],
    ["max_pool_3x3", "avg_pool_3x3"],
    ["skip_connect", "dil_conv_5x5"],
    ["skip_connect", "dil_conv_5x5"],
    ["skip_connect", "dil_conv_5x5"],
]


def _uniform(ops: Sequence[str]) -> dict[str, tuple[tuple[str, ...], ...]]:
    return {"normal": (tuple(ops),) * NUM_EDGES, "reduce": (tuple(ops),) * NUM_EDGES}


#: Per cell type, the op list of each of the 14 edges.
PRESETS: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = {
    "s0": _uniform(S0_OPS),
    "s1": {"normal": tuple(map(tuple, _S1_NORMAL)), "reduce": tuple(map(tuple, _S1_REDUCE))},
    "s2": _uniform(("skip_connect", "sep_conv_3x3")),
    "s3": _uniform(("none", "skip_connect", "sep_conv_3x3")),
    "s4": _uniform(("noise", "sep_conv_3x3")),
}
