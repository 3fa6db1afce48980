"""``feature_info`` exactly as timm defines it: one dict per output stage.

Each stage has ``num_chs`` (channels), ``reduction`` (input size / feature-map size, never
decreasing along the list), ``module`` (the producing sub-module's name) and ``index``. Objectives
build their heads and decoders from this description alone.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Sequence, overload

__all__ = ["FeatureInfo", "feature_take_indices"]


def feature_take_indices(num_features: int, indices: int | Sequence[int] | None = None) -> list[int]:
    """timm's ``out_indices`` rule: an int ``n`` means the last ``n`` stages; negatives count from the end."""
    if indices is None:
        return list(range(num_features))
    if isinstance(indices, int):
        if not 0 < indices <= num_features:
            raise ValueError(f"out_indices={indices} must be in 1..{num_features} (the last n stages)")
        return list(range(num_features - indices, num_features))
    out = []
    for i in indices:
        j = i + num_features if i < 0 else i
        if not 0 <= j < num_features:
            raise ValueError(f"out index {i} is out of range for {num_features} stages")
        out.append(j)
    return out


class FeatureInfo(Sequence[Mapping[str, Any]]):
    """An immutable list of stage descriptions with timm's accessors."""

    __slots__ = ("_stages",)

    def __init__(self, stages: Iterable[Mapping[str, Any]]):
        items = []
        last_red = 0
        for i, st in enumerate(stages):
            if "num_chs" not in st or "reduction" not in st:
                raise ValueError(f"feature_info stage {i} needs 'num_chs' and 'reduction', got keys {sorted(st)}")
            num_chs, red = int(st["num_chs"]), int(st["reduction"])
            if num_chs <= 0 or red <= 0:
                raise ValueError(f"feature_info stage {i}: num_chs and reduction must be positive, got {dict(st)}")
            if red < last_red:
                raise ValueError(
                    f"feature_info reductions must never decrease, stage {i} has {red} after {last_red}"
                )
            last_red = red
            d = dict(st)
            d["num_chs"], d["reduction"] = num_chs, red
            d.setdefault("module", f"stages.{i}")
            d.setdefault("index", i)
            items.append(d)
        if not items:
            raise ValueError("feature_info needs at least one stage")
        self._stages = tuple(items)

    @overload
    def __getitem__(self, i: int) -> Mapping[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> FeatureInfo: ...
    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        if isinstance(i, slice):
            return FeatureInfo(self._stages[i])
        return dict(self._stages[i])

    def __len__(self) -> int:
        return len(self._stages)

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return (dict(s) for s in self._stages)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FeatureInfo):
            return self._stages == other._stages
        if isinstance(other, (list, tuple)):
            return list(self) == [dict(x) for x in other]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple((s["num_chs"], s["reduction"], s["module"]) for s in self._stages))

    def __repr__(self) -> str:
        inner = ", ".join(f"(chs={s['num_chs']}, red={s['reduction']})" for s in self._stages)
        return f"FeatureInfo([{inner}])"

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> list[Any]:
        """Values of ``key`` for the stages selected by ``idx`` (timm ``out_indices`` rules)."""
        return [self._stages[i][key] for i in feature_take_indices(len(self), idx)]

    def channels(self, idx: int | Sequence[int] | None = None) -> list[int]:
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> list[int]:
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> list[str]:
        return self.get("module", idx)

    def select(self, idx: int | Sequence[int] | None) -> FeatureInfo:
        """A new FeatureInfo holding only the selected stages."""
        return FeatureInfo(self._stages[i] for i in feature_take_indices(len(self), idx))

    def to_list(self) -> list[dict[str, Any]]:
        return [dict(s) for s in self._stages]

    @classmethod
    def coerce(cls, value: FeatureInfo | Iterable[Mapping[str, Any]]) -> FeatureInfo:
        return value if isinstance(value, FeatureInfo) else cls(value)
