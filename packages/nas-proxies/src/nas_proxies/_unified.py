"""UP-NAS' unified proxy: a weighted sum of normalised zero-cost proxies, with weights fitted to
maximise Kendall's tau against a benchmark table (TPE, as the paper)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
from nas_core import ConfigError, LossFn, NasError, Proxy

from ._engine import LOSS_PROXIES, ProxySettings, score_all
from ._utils import PROXY_NAMES, arch_label, check_finite

if TYPE_CHECKING:  # pragma: no cover
    from nas_core import BenchmarkTable

__all__ = ["UnifiedProxy", "PRESETS", "normalize_scores", "kendall_tau"]

#: UP-NAS table 1: the four published weight sets (sum- leaves grasp out for its cost).
PRESETS: dict[str, dict[str, float]] = {
    "sum": dict.fromkeys(PROXY_NAMES, 1.0),
    "sum_minus": {p: (0.0 if p == "grasp" else 1.0) for p in PROXY_NAMES},
    "weighted": {
        "snip": -0.164,
        "flops": 0.609,
        "params": -0.587,
        "l2_norm": -0.100,
        "grasp": 0.441,
        "grad_norm": 0.089,
        "synflow": 0.840,
        "jacov": 1.000,
        "epe_nas": 0.094,
        "zen": 0.416,
        "fisher": -0.342,
        "plain": 0.275,
        "nwot": 0.138,
    },
    "selected": {p: (1.0 if p in ("flops", "synflow", "jacov", "nwot") else 0.0) for p in PROXY_NAMES},
}
_PRESET_ALIASES = {"sum-": "sum_minus", "summinus": "sum_minus", "sum_": "sum_minus", "up_sum": "sum",
                   "up_weighted": "weighted", "up_selected": "selected"}
NORMALIZATIONS = ("rank", "zscore")


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of ``x`` against ``y`` over the entries where both are finite (NaN if < 2)."""
    from scipy.stats import kendalltau

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2:
        return float("nan")
    return float(kendalltau(a[ok], b[ok]).statistic)


def normalize_scores(values: Sequence[float], method: str = "rank") -> np.ndarray:
    """Normalise one proxy's scores across a candidate set.

    ``"rank"``: average ranks mapped to [0, 1] ((rank - 1) / (n - 1)); ``"zscore"``: (x - mean) / std.
    Missing (non-finite) entries get the neutral value (0.5 for ranks, 0 for z-scores).
    """
    from scipy.stats import rankdata

    x = np.asarray(values, dtype=float)
    ok = np.isfinite(x)
    out = np.full(x.shape, 0.5 if method == "rank" else 0.0)
    n = int(ok.sum())
    if n == 0:
        return out
    if method == "rank":
        out[ok] = (rankdata(x[ok]) - 1.0) / (n - 1) if n > 1 else 0.5
    elif method == "zscore":
        sd = float(x[ok].std())
        out[ok] = (x[ok] - x[ok].mean()) / sd if sd > 0 else 0.0
    else:
        raise ConfigError(f"normalisation must be one of {', '.join(NORMALIZATIONS)}, got {method!r}")
    return out


class UnifiedProxy(Proxy):
    """Unified proxy (UP-NAS): ``UP = sum_i w_i * normalise(proxy_i)``.

    Components are any registered proxies (the thirteen of this package are scored together with
    shared passes). Normalisation is per proxy and across the candidate set: ranks in [0, 1]
    (default; robust to the proxies' wildly different scales) or z-scores.

    * :meth:`combine` normalises across the candidates it is given (what searches over a population use).
    * :meth:`score` scores one network: each component is normalised against **reference statistics**
      (its position in the reference scores' empirical distribution for ranks, mean/std for z-scores).
      :meth:`fit` stores them from the fitting set; with a preset or hand-given weights, pass
      ``reference={proxy: scores of a reference candidate set}`` or call :meth:`calibrate`.
    * :meth:`fit` searches the weights in ``weight_range`` maximising Kendall's tau against accuracy
      (TPE from optuna as UP-NAS, or ``method="random"``), then scales them so the largest |w| is 1.

    :param preset: ``"sum"``, ``"sum_minus"`` (``"sum-"``), ``"weighted"`` or ``"selected"`` (UP-NAS table 1).
    :param weights: ``{proxy: weight}`` instead of a preset.
    :param proxies: equal weights over these proxies (or, with ``weights``/``preset``, not allowed).
    """

    higher_is_better = True
    needs_targets = False

    def __init__(
        self,
        preset: str | None = None,
        weights: Mapping[str, float] | None = None,
        proxies: Sequence[str] | str | None = None,
        normalize: str = "rank",
        reference: Mapping[str, Sequence[float]] | None = None,
        method: str = "tpe",
        n_trials: int = 200,
        seed: int = 0,
        weight_range: Sequence[float] = (-1.0, 1.0),
    ):
        given = [k for k, v in (("preset", preset), ("weights", weights), ("proxies", proxies)) if v is not None]
        if len(given) > 1:
            raise ConfigError(f"proxy 'unified': give one of preset, weights or proxies, not {' and '.join(given)}")
        if normalize not in NORMALIZATIONS:
            raise ConfigError(f"proxy 'unified': normalize must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")
        if method not in ("tpe", "random"):
            raise ConfigError(f"proxy 'unified': method must be 'tpe' or 'random', got {method!r}")
        lo, hi = (float(v) for v in weight_range)
        if not lo < hi:
            raise ConfigError(f"proxy 'unified': weight_range must be (low, high) with low < high, got {weight_range}")
        if weights is not None:
            table = {self._check_name(k): float(v) for k, v in dict(weights).items()}
            self.preset: str | None = None
        elif proxies is not None:
            names = [p for p in proxies.split(",")] if isinstance(proxies, str) else list(proxies)
            table = {self._check_name(p): 1.0 for p in names if p.strip()}
            self.preset = None
        else:
            key = (preset or "weighted").strip().lower().replace("-", "_")
            key = _PRESET_ALIASES.get(key, key)
            if key not in PRESETS:
                import difflib

                close = difflib.get_close_matches(key, PRESETS, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ConfigError(f"proxy 'unified': unknown preset '{preset}'.{hint} Presets: {', '.join(PRESETS)}")
            table = dict(PRESETS[key])
            self.preset = key
        if not table:
            raise ConfigError("proxy 'unified': no component proxy given")
        if not any(v != 0 for v in table.values()):
            raise ConfigError("proxy 'unified': every weight is 0")
        #: names the weight search may use (zero-weight preset entries included, as UP-NAS fits all 13)
        self.search_proxies: list[str] = list(table)
        self.weights: dict[str, float] = {k: v for k, v in table.items() if v != 0}
        self.normalize = normalize
        self.method = method
        self.n_trials = int(n_trials)
        self.seed = int(seed)
        self.weight_range = (lo, hi)
        self.reference: dict[str, np.ndarray] | None = None
        self.fit_result: dict[str, Any] | None = None
        if reference is not None:
            self.calibrate(reference)

    # -- introspection ---------------------------------------------------------------------------
    @property
    def proxies(self) -> list[str]:
        """The component proxies (non-zero weight), in order."""
        return list(self.weights)

    @property
    def needs_loss(self) -> bool:  # type: ignore[override]
        return any(p in LOSS_PROXIES for p in self.proxies)

    @property
    def data_free(self) -> bool:  # type: ignore[override]
        return all(p in ("synflow", "zen", "flops", "params", "l2_norm") for p in self.proxies)

    def config(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "normalize": self.normalize, "seed": self.seed}

    def __repr__(self) -> str:
        src = f"preset={self.preset!r}" if self.preset else f"weights={self.weights!r}"
        return f"UnifiedProxy({src}, normalize={self.normalize!r})"

    @staticmethod
    def _check_name(name: str) -> str:
        key = str(name).strip().lower().replace("-", "_")
        if key in PROXY_NAMES:
            return key
        if key == "unified":
            raise ConfigError("proxy 'unified' cannot be a component of itself")
        from nas_core import get_plugin_manager

        if key in get_plugin_manager().registry("proxy"):
            return key
        raise ConfigError(
            f"proxy 'unified': unknown component proxy '{name}' (built in: {', '.join(PROXY_NAMES)}; "
            f"or any registered proxy)"
        )

    # -- combination -----------------------------------------------------------------------------
    def _matrix(self, scores: Mapping[str, Sequence[float]], names: Sequence[str]) -> np.ndarray:
        missing = [p for p in names if p not in scores]
        if missing:
            raise ConfigError(
                f"unified proxy: scores lack component(s) {', '.join(missing)} (given: {', '.join(scores) or 'none'})"
            )
        cols = [np.asarray(scores[p], dtype=float).reshape(-1) for p in names]
        n = {len(c) for c in cols}
        if len(n) != 1:
            raise ConfigError(f"unified proxy: component score lists differ in length: { {p: len(c) for p, c in zip(names, cols)} }")
        return np.stack(cols, axis=1)

    def normalized(self, scores: Mapping[str, Sequence[float]], names: Sequence[str] | None = None) -> np.ndarray:
        """``[n_candidates, n_proxies]`` scores normalised across the candidates."""
        names = list(names or self.proxies)
        mat = self._matrix(scores, names)
        return np.stack([normalize_scores(mat[:, j], self.normalize) for j in range(mat.shape[1])], axis=1)

    def combine(self, scores: Mapping[str, Sequence[float]]) -> np.ndarray:
        """Unified scores of the candidates: each component normalised across them, then weighted."""
        z = self.normalized(scores)
        return z @ np.array([self.weights[p] for p in self.proxies])

    # -- reference statistics --------------------------------------------------------------------
    def calibrate(self, scores: Mapping[str, Sequence[float]]) -> UnifiedProxy:
        """Store per-proxy normalisation statistics from the scores of a reference candidate set."""
        ref: dict[str, np.ndarray] = {}
        for p in self.search_proxies:
            if p not in scores:
                continue
            v = np.asarray(scores[p], dtype=float).reshape(-1)
            v = np.sort(v[np.isfinite(v)])
            if len(v) < 2:
                raise ConfigError(f"unified proxy: reference scores of '{p}' need at least 2 finite values, got {len(v)}")
            ref[p] = v
        missing = [p for p in self.proxies if p not in ref]
        if missing:
            raise ConfigError(f"unified proxy: reference scores lack component(s) {', '.join(missing)}")
        self.reference = ref
        return self

    def _normalize_one(self, name: str, value: float) -> float:
        assert self.reference is not None
        ref = self.reference[name]
        if self.normalize == "rank":
            below = np.searchsorted(ref, value, side="left")
            upto = np.searchsorted(ref, value, side="right")
            return float((below + upto) / 2.0 / len(ref))
        sd = float(ref.std())
        return float((value - ref.mean()) / sd) if sd > 0 else 0.0

    # -- fitting ---------------------------------------------------------------------------------
    def fit(
        self,
        scores: Mapping[str, Sequence[float]],
        accuracy: Sequence[float],
        *,
        n_trials: int | None = None,
        seed: int | None = None,
        method: str | None = None,
    ) -> UnifiedProxy:
        """Search weights maximising Kendall's tau between the unified score and ``accuracy``.

        Searches over the components in :attr:`search_proxies` present in ``scores`` (each weight in
        ``weight_range``); the equal-weight start and the current weights are tried first. Afterwards
        :attr:`weights` hold the best weights scaled to max |w| = 1, the fitting scores become the
        reference statistics, and :attr:`fit_result` records the training tau and what was used.
        """
        names = [p for p in self.search_proxies if p in scores]
        if not names:
            raise ConfigError(
                f"unified proxy: none of {', '.join(self.search_proxies)} is in the scores ({', '.join(scores)})"
            )
        acc = np.asarray(accuracy, dtype=float).reshape(-1)
        z = self.normalized(scores, names)
        if z.shape[0] != acc.shape[0]:
            raise ConfigError(f"unified proxy: {z.shape[0]} candidates but {acc.shape[0]} accuracies")
        ok = np.isfinite(acc)
        z, acc = z[ok], acc[ok]
        if len(acc) < 3:
            raise ConfigError(f"unified proxy: fitting needs at least 3 candidates with an accuracy, got {len(acc)}")
        n_trials = self.n_trials if n_trials is None else int(n_trials)
        seed = self.seed if seed is None else int(seed)
        method = method or self.method
        lo, hi = self.weight_range

        def tau(lam: np.ndarray) -> float:
            t = kendall_tau(z @ lam, acc)
            return -1.0 if math.isnan(t) else t

        starts = [np.ones(len(names)), np.array([self.weights.get(p, 0.0) for p in names])]
        starts = [np.clip(s, lo, hi) for s in starts if np.any(s != 0)]
        if method == "tpe":
            best, best_tau = _fit_tpe(names, tau, starts, n_trials, seed, lo, hi)
        elif method == "random":
            best, best_tau = _fit_random(names, tau, starts, n_trials, seed, lo, hi)
        else:
            raise ConfigError(f"unified proxy: method must be 'tpe' or 'random', got {method!r}")
        scale = float(np.abs(best).max())
        best = best / scale if scale > 0 else best
        self.weights = {p: round(float(w), 6) for p, w in zip(names, best) if round(float(w), 6) != 0}
        self.preset = None
        self.calibrate(scores)
        self.fit_result = {
            "tau": float(best_tau),
            "n": int(len(acc)),
            "n_trials": n_trials,
            "method": method,
            "seed": seed,
            "normalize": self.normalize,
            "proxies": names,
            "dropped": [p for p in self.search_proxies if p not in names],
        }
        return self

    def fit_table(
        self,
        table: BenchmarkTable,
        archs: Sequence[Any] | None = None,
        *,
        n_trials: int | None = None,
        seed: int | None = None,
        method: str | None = None,
    ) -> UnifiedProxy:
        """:meth:`fit` on a benchmark table's published proxy scores and validation accuracies
        (``archs``: the rows to use, default all). Components the table lacks are left out (listed in
        ``fit_result["dropped"]``); rows missing a score get the neutral normalised value."""
        keys = [str(a) for a in (archs if archs is not None else table.archs())]
        rows = [table.row(a) for a in keys]
        present = set().union(*(r.proxies.keys() for r in rows))
        names = [p for p in self.search_proxies if p in present]
        scores = {p: [r.proxies.get(p, float("nan")) for r in rows] for p in names}
        return self.fit(scores, [r.val_accuracy for r in rows], n_trials=n_trials, seed=seed, method=method)

    # -- one network -----------------------------------------------------------------------------
    def components(
        self,
        net: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        loss_fn: LossFn | None = None,
        arch: Any = None,
    ) -> dict[str, float]:
        """The raw score of each component (this package's proxies share their passes)."""
        ours = [p for p in self.proxies if p in PROXY_NAMES]
        out: dict[str, float] = {}
        if ours:
            out.update(score_all(net, images, targets, ours, loss_fn=loss_fn, arch=arch, settings=ProxySettings(seed=self.seed)))
        others = [p for p in self.proxies if p not in PROXY_NAMES]
        if others:
            from nas_core import create_proxy

            label = arch_label(net, arch)
            for p in others:
                out[p] = check_finite(p, create_proxy(p).score(net, images, targets, loss_fn=loss_fn), label)
        return {p: out[p] for p in self.proxies}

    def score(
        self,
        net: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        loss_fn: LossFn | None = None,
    ) -> float:
        """The unified score of one network, normalised with the stored reference statistics."""
        if self.reference is None:
            raise NasError(
                "unified proxy: score() of a single network needs normalisation statistics. Call fit(...) / "
                "fit_table(...), or calibrate({proxy: scores of a reference candidate set}), or pass reference=... "
                "to create_proxy('unified', ...). To rank a set of candidates, use combine(scores) instead."
            )
        return self.score_components(self.components(net, images, targets, loss_fn=loss_fn))

    def score_components(self, components: Mapping[str, float]) -> float:
        """The unified score of one network from its raw :meth:`components` (what :meth:`score` returns for
        the network they were computed on), normalised with the stored reference statistics."""
        if self.reference is None:
            raise NasError("unified proxy: score_components() needs normalisation statistics (fit, fit_table, "
                           "calibrate or reference=...)")
        missing = [p for p in self.proxies if p not in components]
        if missing:
            raise ConfigError(f"unified proxy: components lack {', '.join(missing)} (need {', '.join(self.proxies)})")
        return float(sum(self.weights[p] * self._normalize_one(p, components[p]) for p in self.proxies))


def _fit_tpe(
    names: list[str], tau: Any, starts: list[np.ndarray], n_trials: int, seed: int, lo: float, hi: float
) -> tuple[np.ndarray, float]:
    import logging

    import optuna

    log = logging.getLogger("optuna")
    level = log.level
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        for s in starts:
            study.enqueue_trial({p: float(v) for p, v in zip(names, s)})

        def objective(trial: Any) -> float:
            return tau(np.array([trial.suggest_float(p, lo, hi) for p in names]))

        study.optimize(objective, n_trials=max(n_trials, len(starts)))
        best = np.array([study.best_params[p] for p in names])
        return best, float(study.best_value)
    finally:
        log.setLevel(level)


def _fit_random(
    names: list[str], tau: Any, starts: list[np.ndarray], n_trials: int, seed: int, lo: float, hi: float
) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(seed)
    cands = list(starts) + [rng.uniform(lo, hi, len(names)) for _ in range(max(0, n_trials - len(starts)))]
    taus = [tau(c) for c in cands]
    i = int(np.argmax(taus))
    return cands[i], float(taus[i])
