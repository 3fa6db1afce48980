"""UP-NAS (Huang et al., CVPR-W 2024): unified-proxy search by gradient ascent in an architecture
embedding space.

1. **Score** a set of architectures with M zero-cost proxies: computed through the registry on freshly
   initialised networks (``create_proxy(name).score(space.build(arch, num_classes), images)``, cached on
   disk as JSON keyed by space configuration, proxy, data and seed), or the published scores of a
   :class:`nas_core.BenchmarkTable`.
2. **Pretrain** an arch2vec variational graph autoencoder on the space's graph encodings (no scores needed).
3. **Train** the multi-proxy estimator (MPE: 2 hidden Linear-BN-ReLU layers) on the frozen embeddings to
   predict the M standardised (z-scored) proxy scores (MSE).
4. **Combine** the predictions with the unified weights ``lambda`` (given, ``"sum"``, or fitted by the
   ``unified`` proxy of nas-proxies against a table's accuracy): ``UP = sum_i lambda_i z_i``.
5. **Search**: gradient ascent on the embedding (Adam, lr 1e-3) from several starts until the decoded
   architecture turns invalid; the best decoded architectures (by predicted UP) are re-scored with the real
   proxies (or the table) and ranked by their true UP. ``search="random"`` / ``"evolution"`` run the
   UP-NAS table-6 baselines over the same estimator instead.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch

from nas_core import (
    Architecture,
    ConfigError,
    SearchResult,
    SearchSpace,
    Strategy,
    UnknownNameError,
    atomic_write_text,
    check_compatible,
    evaluator_kind,
)

from ._batches import num_classes_for, proxy_images
from ._constraints import Constraints
from ._fitness import TableFitness, build_loss_fn, label_free_targets, score_with_proxies, undefined_reason
from ._helpers import arch_seed, fingerprint, seeded, space_name
from ._pool import CandidatePool
from ._results import make_result
from ._vgae import (
    ArchAutoencoder,
    EstimatorEnsemble,
    GraphCodec,
    MultiProxyEstimator,
    train_autoencoder,
    train_estimator,
)

__all__ = ["GradientAscentSearch", "ProxyScoreCache", "ScoreNormalizer", "UPNAS_PROXIES", "unified_scores"]

#: The 13 proxies UP-NAS combines (its table 1).
UPNAS_PROXIES: tuple[str, ...] = (
    "snip", "flops", "params", "l2_norm", "grasp", "grad_norm", "synflow", "jacov", "epe_nas", "zen", "fisher",
    "plain", "nwot",
)


# ---------------------------------------------------------------------------------------------
# scores
# ---------------------------------------------------------------------------------------------
class ScoreNormalizer:
    """Per-proxy standardisation fitted on the scored set, applied to any later score.

    ``"rank"`` (default): a score's mid-rank position in the fitted scores' empirical distribution,
    ``F in [0, 1]``, standardised to mean 0 and variance 1 (``(F - 0.5) * sqrt(12)``). Robust to the heavy
    tails and the ``-1e8`` failure sentinels of published zero-cost scores (NASLib), and an affine map of the
    rank normalisation of nas-proxies' ``unified`` proxy, so weights fitted there rank candidates the same
    here. ``"zscore"``: ``(s - mean) / std``. Missing scores stay NaN.
    """

    METHODS = ("rank", "zscore")

    def __init__(self, method: str = "rank"):
        if method not in self.METHODS:
            raise ConfigError(f"normalize must be one of {', '.join(self.METHODS)}, got {method!r}")
        self.method = method
        self.columns: list[np.ndarray] = []
        self.mean = np.zeros(0)
        self.std = np.ones(0)

    def fit(self, scores: np.ndarray) -> ScoreNormalizer:
        scores = np.asarray(scores, dtype=np.float64)
        self.columns = [np.sort(scores[:, j][np.isfinite(scores[:, j])]) for j in range(scores.shape[1])]
        self.mean = np.array([c.mean() if c.size else 0.0 for c in self.columns])
        self.std = np.array([c.std() if c.size > 1 and c.std() > 0 else 1.0 for c in self.columns])
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        out = np.full(scores.shape, np.nan)
        for j, ref in enumerate(self.columns):
            col = scores[:, j]
            ok = np.isfinite(col)
            if not ok.any() or ref.size == 0:
                continue
            if self.method == "zscore":
                out[ok, j] = (col[ok] - self.mean[j]) / self.std[j]
            else:
                lo = np.searchsorted(ref, col[ok], side="left")
                hi = np.searchsorted(ref, col[ok], side="right")
                out[ok, j] = ((lo + hi) / (2.0 * ref.size) - 0.5) * math.sqrt(12.0)
        return out


def unified_scores(z: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_i w_i z_i`` over normalised scores; a missing score counts as average (z = 0)."""
    z = np.where(np.isfinite(z), z, 0.0)
    return z @ np.asarray(weights, dtype=np.float64)


def _proxy_config(proxy: Any) -> Any:
    cfg = getattr(proxy, "config", None)
    if callable(cfg):
        try:
            return cfg()
        except Exception:  # noqa: BLE001
            pass
    return {k: v for k, v in sorted(vars(proxy).items()) if isinstance(v, (int, float, str, bool)) or v is None}


class ProxyScoreCache:
    """On-disk cache of proxy scores: one JSON file per (space configuration, proxy, data, seed, classes,
    package and torch versions) under ``directory``, mapping architecture strings to scores (``null`` where a
    proxy is undefined on the cell). Files are written atomically and merged, so runs (and resumed runs) reuse
    each other's scores.

    Nothing read back is trusted blindly: a file whose checksum, configuration, versions or values do not
    check out (a score that is not a number, non-finite, or of implausible magnitude) is ignored with a
    warning naming it and its scores are computed again.
    """

    #: larger magnitudes are no proxy score (synflow is kept on a log scale): a corrupted or planted value
    MAX_ABS = 1e60

    def __init__(self, directory: str | Path | None, meta: Mapping[str, Any]):
        self.directory = None if directory is None else Path(directory).expanduser()
        self.meta = {**dict(meta), "versions": _score_versions()}

    def path(self, proxy: str, proxy_cfg: Any) -> Path | None:
        if self.directory is None:
            return None
        key = fingerprint({**self.meta, "proxy": proxy, "proxy_config": proxy_cfg})
        return self.directory / f"{proxy}-{key}.json"

    @staticmethod
    def _checksum(meta: Any, scores: Mapping[str, Any]) -> str:
        blob = json.dumps({"meta": meta, "scores": scores}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def load(self, proxy: str, proxy_cfg: Any) -> dict[str, float]:
        p = self.path(proxy, proxy_cfg)
        if p is None or not p.is_file():
            return {}
        try:
            data = json.loads(p.read_text())
            meta, raw, check = data["meta"], data["scores"], data["sha256"]
            expected = json.loads(json.dumps({**self.meta, "proxy": proxy, "proxy_config": proxy_cfg}, default=str))
            if meta != expected:
                raise ValueError("it was written for another configuration or other package versions")
            if check != self._checksum(meta, raw):
                raise ValueError("its checksum does not match its content (edited or corrupted)")
            out: dict[str, float] = {}
            for arch, v in raw.items():
                if v is None:
                    out[str(arch)] = math.nan
                    continue
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > self.MAX_ABS:
                    raise ValueError(f"the score of {arch} is {v!r}, not a finite proxy score")
                out[str(arch)] = float(v)
            return out
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            warnings.warn(f"proxy score cache {p} is ignored and its scores are computed again: {exc}", RuntimeWarning,
                          stacklevel=2)
            return {}

    def save(self, proxy: str, proxy_cfg: Any, scores: Mapping[str, float]) -> None:
        p = self.path(proxy, proxy_cfg)
        if p is None:
            return
        merged: dict[str, float | None] = {k: (v if math.isfinite(v) else None) for k, v in self.load(proxy, proxy_cfg).items()}
        for k, v in scores.items():
            merged[k] = float(v) if math.isfinite(float(v)) else None
        meta = json.loads(json.dumps({**self.meta, "proxy": proxy, "proxy_config": proxy_cfg}, default=str))
        payload = {"meta": meta, "scores": merged, "sha256": self._checksum(meta, merged)}
        atomic_write_text(p, json.dumps(payload, sort_keys=True))


def _score_versions() -> dict[str, str]:
    """The versions a cached score depends on: the computing packages and torch."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"torch": torch.__version__}
    for dist in ("nas-core", "nas-strategies", "nas-proxies"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out


def default_cache_dir() -> Path:
    return Path(os.environ.get("NAS_CACHE_DIR", Path.home() / ".cache" / "nas")) / "proxy_scores"


# ---------------------------------------------------------------------------------------------
# the strategy
# ---------------------------------------------------------------------------------------------
@dataclass
class GradientAscentSearch(Strategy):
    """UP-NAS: multi-proxy estimator over an arch2vec embedding, gradient ascent on the unified proxy."""

    proxies: list[str] | None = None
    weights: Any = "sum"
    unified: dict[str, Any] | None = None
    num_samples: int | None = None
    pretrain_samples: int = 2000
    cache_dir: str | None = None
    proxy_batch_size: int = 64
    num_classes: int | None = None
    loss_objective: str | None = None
    hidden_dim: int = 128
    latent_dim: int = 16
    gin_layers: int = 5
    vgae_epochs: int = 10
    vgae_batch_size: int = 32
    vgae_lr: float = 1e-3
    kl_weight: float = 0.005
    mpe_hidden: int = 256
    mpe_epochs: int = 70
    mpe_batch_size: int = 16
    mpe_lr: float = 1e-3
    mpe_val_fraction: float = 0.0
    mpe_ensemble: int = 1
    normalize: str = "rank"
    search: str = "gradient"
    num_starts: int = 10
    starts: str = "best"
    ascent_lr: float = 1e-3
    max_steps: int = 3000
    queries: int = 1500
    population: int = 100
    tournament: int = 10
    rescore_top: int = 20
    include_scored: bool = True
    max_params: float | None = None
    max_flops: float | None = None

    needs: ClassVar[Mapping[str, frozenset[str]]] = {"none": frozenset(), "proxy": frozenset(), "table": frozenset()}
    name: ClassVar[str] = "gradient_ascent"

    def __post_init__(self) -> None:
        if self.starts not in ("best", "random"):
            raise ConfigError(f"strategy 'gradient_ascent': starts must be 'best' or 'random', got '{self.starts}'")
        if self.search not in ("gradient", "random", "evolution"):
            raise ConfigError(f"strategy 'gradient_ascent': search must be gradient, random or evolution, got '{self.search}'")
        for opt in ("num_starts", "max_steps", "queries", "rescore_top", "vgae_batch_size", "mpe_batch_size", "proxy_batch_size",
                    "mpe_ensemble"):
            if int(getattr(self, opt)) < 1:
                raise ConfigError(f"strategy 'gradient_ascent': {opt} must be >= 1, got {getattr(self, opt)}")
        if self.num_samples is not None and self.num_samples < 4:
            raise ConfigError(f"strategy 'gradient_ascent': num_samples must be >= 4, got {self.num_samples}")
        if not isinstance(self.weights, (str, Mapping)):
            raise ConfigError(
                "strategy 'gradient_ascent': weights must be a {proxy: weight} mapping, 'sum', 'fit' or a preset of "
                f"nas-proxies' unified proxy (weighted, selected, sum_minus), got {type(self.weights).__name__}"
            )
        if self.normalize not in ScoreNormalizer.METHODS:
            raise ConfigError(f"strategy 'gradient_ascent': normalize must be rank or zscore, got '{self.normalize}'")
        if not 0.0 <= self.mpe_val_fraction < 0.5:
            raise ConfigError(f"strategy 'gradient_ascent': mpe_val_fraction must be in [0, 0.5), got {self.mpe_val_fraction}")
        if self.population < 2 or self.tournament < 1:
            raise ConfigError("strategy 'gradient_ascent': population must be >= 2 and tournament >= 1")

    def config(self) -> dict[str, Any]:
        cfg = asdict(self)
        if isinstance(self.weights, Mapping):
            cfg["weights"] = dict(self.weights)
        return cfg

    # -- proxies and weights ----------------------------------------------------------------------
    def _unified_proxy(self, what: str, **options: Any) -> Any:
        from nas_core import create_proxy

        try:
            return create_proxy("unified", **{**(self.unified or {}), **options})
        except UnknownNameError as exc:
            raise ConfigError(
                f"strategy 'gradient_ascent': {what} needs the 'unified' proxy from nas-proxies, which is not "
                f"installed (pip install nas-proxies); or pass weights={{proxy: weight, ...}} or weights='sum'"
            ) from exc

    def _weight_table(self, evaluator: Any, kind: str) -> tuple[dict[str, float] | None, bool]:
        """(the weights known before scoring, whether the user named them explicitly)."""
        w = self.weights
        if isinstance(w, Mapping):
            return {str(k): float(v) for k, v in w.items()}, True
        uw = getattr(evaluator, "weights", None) if kind == "proxy" else None
        if w == "sum" and isinstance(uw, Mapping) and uw:  # a unified proxy as evaluator brings its weights
            return {str(k): float(v) for k, v in uw.items()}, False
        if w in ("sum", "fit"):
            return None, False
        return {str(k): float(v) for k, v in self._unified_proxy(f"weights='{w}'", preset=w).weights.items()}, False

    def _proxy_names(self, evaluator: Any, kind: str, table_w: Mapping[str, float] | None, explicit: bool) -> tuple[list[str], list[str]]:
        """(proxy names to score, names dropped because the table lacks them)."""
        if self.proxies:
            names, strict = [str(p) for p in self.proxies], True
            unscored = [k for k, v in (table_w or {}).items() if v != 0 and k not in names]
            if unscored:
                raise ConfigError(
                    f"strategy 'gradient_ascent': weights name proxies that are not scored: {', '.join(unscored)} "
                    f"(proxies: {', '.join(names)})"
                )
        elif table_w:
            names, strict = [k for k, v in table_w.items() if v != 0], explicit
        elif kind == "proxy":
            names, strict = [getattr(evaluator, "registered_name", "") or type(evaluator).__name__], True
        elif kind == "table":
            names, strict = evaluator.proxy_names(), True
        else:
            names, strict = list(UPNAS_PROXIES), True
        dropped: list[str] = []
        if kind == "table":
            have = set(evaluator.proxy_names())
            dropped = [n for n in names if n not in have]
            if dropped and strict:
                raise ConfigError(
                    f"strategy 'gradient_ascent': the table has no published '{dropped[0]}' scores (it has: "
                    f"{', '.join(sorted(have))})"
                )
            names = [n for n in names if n in have]
        if not names:
            raise ConfigError("strategy 'gradient_ascent': no proxy to score with (proxies=[...])")
        return names, dropped

    def _create_proxies(self, names: Sequence[str], evaluator: Any, kind: str) -> dict[str, Any]:
        from nas_core import create_proxy

        out: dict[str, Any] = {}
        own = (getattr(evaluator, "registered_name", "") or type(evaluator).__name__) if kind == "proxy" else None
        for n in names:
            if n == own and not isinstance(getattr(evaluator, "weights", None), Mapping):
                out[n] = evaluator
                continue
            try:
                out[n] = create_proxy(n)
            except UnknownNameError as exc:
                raise ConfigError(
                    f"strategy 'gradient_ascent': proxy '{n}' is not installed ({exc}). The UP-NAS proxies come with "
                    f"nas-proxies (pip install nas-proxies); or pass proxies=[...] naming installed proxies, or a "
                    f"BenchmarkTable to use published scores"
                ) from exc
        return out

    def _weights(self, names: list[str], table_w: Mapping[str, float] | None, scores: np.ndarray, accuracy: np.ndarray | None) -> np.ndarray:
        if table_w is not None:
            return np.array([float(table_w.get(n, 0.0)) for n in names])
        if self.weights == "sum":
            return np.ones(len(names))
        # "fit": the unified proxy of nas-proxies fits the weights (Kendall tau against accuracy)
        if accuracy is None:
            raise ConfigError(
                "strategy 'gradient_ascent': weights='fit' needs accuracies to fit against; pass a BenchmarkTable as "
                "the evaluator, or give the weights as a {proxy: weight} mapping"
            )
        unified = self._unified_proxy("weights='fit'", proxies=list(names))
        unified.fit({n: scores[:, j] for j, n in enumerate(names)}, accuracy)
        fitted = dict(getattr(unified, "weights", {}) or {})
        return np.array([float(fitted.get(n, 0.0)) for n in names])

    # -- run --------------------------------------------------------------------------------------
    def run(self, space: SearchSpace, evaluator: Any, data: Any, context: Any) -> SearchResult:
        check_compatible(self, space, evaluator, has_labels=getattr(data, "has_labels", None))
        kind = evaluator_kind(evaluator)
        with context.lifecycle():
            run = self._prepare(space, evaluator, data, context, kind)
            state = context.load_checkpoint() or {}
            self._score_set(run, state)
            self._train_models(run, state)
            run.timings["search"] = -time.perf_counter()
            found, info = self._search_embedding(run)
            run.timings["search"] += time.perf_counter()
            evaluated, searched_best = self._rescore(run, found)
            return context.finish(self._assemble(run, evaluator, kind, found, info, evaluated, searched_best))

    def _prepare(self, space: SearchSpace, evaluator: Any, data: Any, context: Any, kind: str) -> _AscentRun:
        """Proxies, weights, the candidate pool and the scorer (real proxies, or a table's published scores)."""
        table_w, explicit = self._weight_table(evaluator, kind)
        names, dropped = self._proxy_names(evaluator, kind, table_w, explicit)
        table: TableFitness | None = None
        if kind == "table":
            table = TableFitness(evaluator, space)
            pool = CandidatePool(space, table.members)
            scorer: Any = _TableScorer(table, names)
        else:
            pool = CandidatePool(space)
            scorer = self._proxy_scorer(space, self._create_proxies(names, evaluator, kind), data, context)
        # proxy scores are undefined on cells with a structural defect: never a candidate without a table
        constraints = Constraints(space, self.max_params, self.max_flops, sound=table is None)
        return _AscentRun(space=space, context=context, names=names, dropped=dropped, table_w=table_w, table=table,
                          pool=pool, scorer=scorer, constraints=constraints)

    def _score_set(self, run: _AscentRun, state: Mapping[str, Any]) -> None:
        """1. The scored set (real proxy queries) and the autoencoder's pretraining set; weights, normaliser."""
        space, context = run.space, run.context
        run.timings["scoring"] = -time.perf_counter()
        if "scored" in state:
            saved = json.loads(state["scored"])
            run.scored = [space.parse(a) for a in saved["archs"]]
            run.scores = np.array(saved["scores"], dtype=np.float64).reshape(len(run.scored), len(run.names))
            run.pretrain = [space.parse(a) for a in saved["pretrain"]]
        else:
            rng = context.rng("gradient_ascent/sample")
            run.scored = self._choose_scored(space, run.pool, rng, run.constraints)
            run.scores = run.scorer(run.scored, context)
            run.pretrain = self._choose_pretrain(space, run.pool, run.scored, rng)
        run.timings["scoring"] += time.perf_counter()
        run.scored_json = json.dumps({"archs": [str(a) for a in run.scored], "scores": _json_rows(run.scores),
                                      "pretrain": [str(a) for a in run.pretrain]})
        if "scored" not in state:
            context.log_epoch(0, {"phase": "scores", "scored": len(run.scored), "proxies": len(run.names)})
            context.save_checkpoint({"scored": run.scored_json})
        table = run.table
        accuracy = np.array([table.row(a).val_accuracy for a in run.scored]) if table is not None else None
        run.lam = self._weights(run.names, run.table_w, run.scores, accuracy)
        run.norm = ScoreNormalizer(self.normalize).fit(run.scores)

    def _train_models(self, run: _AscentRun, state: Mapping[str, Any]) -> None:
        """2.-3. The arch2vec autoencoder (on graphs only), then the multi-proxy estimator on its frozen embedding."""
        context = run.context
        run.codec = codec = GraphCodec(run.space, run.pretrain + run.scored)
        with seeded(arch_seed(context.seed, "gradient_ascent/vgae")):
            vgae = ArchAutoencoder(codec.num_nodes, codec.num_classes, hidden_dim=self.hidden_dim,
                                   latent_dim=self.latent_dim, layers=self.gin_layers)
            members = [MultiProxyEstimator(vgae.embedding_dim, len(run.names), hidden_dim=self.mpe_hidden)
                       for _ in range(self.mpe_ensemble)]
            mpe = members[0] if self.mpe_ensemble == 1 else EstimatorEnsemble(members)
        vgae_opt = torch.optim.Adam(vgae.parameters(), lr=self.vgae_lr, foreach=True)
        mpe_opt = torch.optim.Adam(mpe.parameters(), lr=self.mpe_lr, foreach=True)
        best: dict[str, Any] = dict(state.get("mpe_best") or {})
        if "vgae" in state:
            vgae.load_state_dict(state["vgae"])
            vgae_opt.load_state_dict(state["vgae_opt"])
        if "mpe" in state:
            mpe.load_state_dict(state["mpe"])
            mpe_opt.load_state_dict(state["mpe_opt"])

        def ckpt(**extra: Any) -> None:
            context.save_checkpoint({"scored": run.scored_json, "vgae": vgae.state_dict(), "vgae_opt": vgae_opt.state_dict(),
                                     "mpe": mpe.state_dict(), "mpe_opt": mpe_opt.state_dict(), "mpe_best": best, **extra})

        def vgae_epoch(epoch: int, metrics: dict[str, float]) -> None:
            context.log_epoch(1 + epoch, {"phase": "autoencoder", **metrics})
            ckpt(vgae_epoch=epoch + 1, mpe_epoch=0)

        run.timings["autoencoder"] = -time.perf_counter()
        train_autoencoder(vgae, codec.encode(run.pretrain), epochs=self.vgae_epochs, batch_size=self.vgae_batch_size,
                          lr=self.vgae_lr, kl_weight=self.kl_weight, generator=context.torch_generator("gradient_ascent/vgae"),
                          start_epoch=int(state.get("vgae_epoch", 0)), optimizer=vgae_opt, on_epoch=vgae_epoch)
        run.timings["autoencoder"] += time.perf_counter()
        vgae.eval()
        for p in vgae.parameters():
            p.requires_grad_(False)

        run.timings["estimator"] = -time.perf_counter()
        with torch.no_grad():
            sg = codec.encode(run.scored)
            emb = vgae.embed(sg.adj, sg.ops)
        targets = torch.from_numpy(run.norm.transform(run.scores).astype(np.float32))
        n_val = int(round(self.mpe_val_fraction * len(run.scored))) if len(run.scored) >= 20 else 0
        split = np.random.default_rng(arch_seed(context.seed, "gradient_ascent/mpe_split")).permutation(len(run.scored))
        tr_idx, va_idx = torch.from_numpy(np.sort(split[n_val:])), torch.from_numpy(np.sort(split[:n_val]))

        def mpe_epoch(epoch: int, metrics: dict[str, float]) -> None:
            context.log_epoch(1 + self.vgae_epochs + epoch, {"phase": "estimator", **metrics})
            ckpt(vgae_epoch=self.vgae_epochs, mpe_epoch=epoch + 1)

        train_estimator(mpe, emb[tr_idx], targets[tr_idx], epochs=self.mpe_epochs, batch_size=self.mpe_batch_size,
                        lr=self.mpe_lr, generator=context.torch_generator("gradient_ascent/mpe"),
                        start_epoch=int(state.get("mpe_epoch", 0)), optimizer=mpe_opt, on_epoch=mpe_epoch,
                        val_embeddings=emb[va_idx] if n_val else None, val_targets=targets[va_idx] if n_val else None,
                        best=best)
        run.timings["estimator"] += time.perf_counter()
        mpe.eval()
        for p in mpe.parameters():
            p.requires_grad_(False)
        run.vgae, run.mpe, run.mpe_best = vgae, mpe, best
        run.lam_t = torch.tensor(run.lam, dtype=torch.float32)

    def _search_embedding(self, run: _AscentRun) -> tuple[list[Architecture], dict[str, Any]]:
        """4. Gradient ascent (or the table-6 baselines) over the estimator's predicted unified proxy."""
        rng = run.context.rng("gradient_ascent/search")
        if self.search == "gradient":
            starts = self._best_scored(run) if self.starts == "best" else self._starts(run.pool, run.constraints, rng)
            found, info = self._ascent(run.vgae, run.mpe, run.codec, run.lam_t, run.pool, run.constraints, starts,
                                       rng, run.predict)
        elif self.search == "random":
            found, info = self._random(run.pool, run.constraints, rng, run.predict)
        else:
            found, info = self._evolution(run.pool, run.constraints, rng, run.predict)
        if not found:
            raise ConfigError(
                f"strategy 'gradient_ascent': the search found no valid feasible architecture "
                f"({run.constraints.describe()}); more steps/starts or looser constraints"
            )
        return found, info

    def _rescore(self, run: _AscentRun, found: list[Architecture]) -> tuple[list[tuple[Architecture, dict[str, float]]], float]:
        """5. The best found (by predicted UP) are scored with the real proxies (or the table) and ranked by their
        true UP; with ``include_scored`` the scored set's architectures compete too (they were queried)."""
        context, table, names = run.context, run.table, run.names
        pred = run.predict(found)
        # real queries go to architectures whose scores are not known yet (the scored set competes with its own)
        known = {str(a) for a in run.scored} if self.include_scored else set()
        fresh = [i for i in range(len(found)) if str(found[i]) not in known] or list(range(len(found)))
        order = sorted(fresh, key=lambda i: (-pred[i], i))[: self.rescore_top]
        top = [found[i] for i in order]
        run.timings["rescoring"] = -time.perf_counter()
        true = run.scorer(top, context)
        run.timings["rescoring"] += time.perf_counter()
        true_up = run.true_up(top, true)
        evaluated = []
        for j, (a, i) in enumerate(zip(top, order)):
            sc: dict[str, float] = {"fitness": float(true_up[j]), "predicted": float(pred[i]), "searched": 1.0}
            evaluated.append((a, run.scores_dict(a, sc, true[j])))
            if context.is_main:
                context.candidate_evaluated(a, evaluated[-1][1])
        searched_best = max(s["fitness"] for _, s in evaluated)
        run.queries = len(run.scored) + len(top)
        if self.include_scored:
            seen = {str(a) for a, _ in evaluated}
            scored_up = run.true_up(run.scored, run.scores)
            for j, a in enumerate(run.scored):
                if str(a) in seen or not run.constraints.ok(a):
                    continue
                evaluated.append((a, run.scores_dict(a, {"fitness": float(scored_up[j]), "searched": 0.0}, run.scores[j])))
        return evaluated, searched_best

    def _assemble(self, run: _AscentRun, evaluator: Any, kind: str, found: list[Architecture], info: dict[str, Any],
                  evaluated: list[tuple[Architecture, dict[str, float]]], searched_best: float) -> SearchResult:
        context, space, table = run.context, run.space, run.table
        finite = [s["fitness"] for _, s in evaluated if math.isfinite(s["fitness"])]
        context.log_epoch(1 + self.vgae_epochs + self.mpe_epochs, {
            "phase": "search", "search": self.search, "found": len(found),
            "best_fitness": max(finite) if finite else math.nan, "best_searched_fitness": searched_best,
        })
        if "starts" in info and table is not None:
            start_archs = [space.parse(s) for s in info["starts"]]
            info["start_fitness"] = run.true_up(start_archs, run.scorer(start_archs, context)).tolist()
        undefined = {str(a): undefined_reason(space, a, "the unified proxy") for a, s in evaluated
                     if not math.isfinite(s["fitness"])}
        extra = {
            "search": self.search,
            "proxies": run.names,
            "weights": dict(zip(run.names, run.lam.tolist())),
            "normalize": self.normalize,
            "dropped_proxies": run.dropped,
            "estimator_epoch": run.mpe_best.get("epoch"),
            "scored": len(run.scored),
            "queries": run.queries,
            "found": len(found),
            "source": "table" if table is not None else "proxies",
            **({"label_free_loss": self._label_free_loss} if getattr(self, "_label_free_loss", None) else {}),
            "seconds": {k: round(v, 3) for k, v in run.timings.items()},
            **({"undefined": undefined} if undefined else {}),
            **info,
        }
        proxy_name = getattr(evaluator, "registered_name", None) if kind == "proxy" else None
        return make_result(self, space, evaluated, context, kind=kind, evaluator_name=proxy_name, extra=extra)

    # -- pieces -----------------------------------------------------------------------------------
    def _proxy_scorer(self, space: SearchSpace, proxies: dict[str, Any], data: Any, context: Any) -> Any:
        images, targets = proxy_images(data, self.proxy_batch_size, context.seed, list(proxies.values()), space)
        n_classes = num_classes_for(space, data, self.num_classes)
        targets, self._label_free_loss = label_free_targets(list(proxies.values()), images, targets,
                                                            loss_objective=self.loss_objective, num_classes=n_classes,
                                                            seed=context.seed)
        objective = build_loss_fn(list(proxies.values()), has_targets=targets is not None,
                                  loss_objective=self.loss_objective, what="strategy 'gradient_ascent'")
        meta = {
            "space": space_name(space),
            "space_config": space.config(),
            "data": fingerprint(images),
            "targets": None if targets is None else fingerprint(targets),
            "num_classes": n_classes,
            "seed": context.seed,
            "loss_objective": self.loss_objective,
        }
        cache_dir = default_cache_dir() if self.cache_dir is None else (None if self.cache_dir == "" else self.cache_dir)
        cache = ProxyScoreCache(cache_dir, meta)
        return _ProxyScorer(space, proxies, images, targets, objective, n_classes, cache)

    def _choose_scored(self, space: SearchSpace, pool: CandidatePool, rng: np.random.Generator,
                       constraints: Constraints) -> list[Architecture]:
        if pool.restricted:
            assert pool.members is not None
            n = self.num_samples if self.num_samples is not None else max(4, len(pool) // 2)
            n = min(n, len(pool))
            idx = rng.choice(len(pool), size=n, replace=False)
            return [pool.members[int(i)] for i in sorted(idx.tolist())]
        n = self.num_samples if self.num_samples is not None else 1000
        # a proxy query is never spent on a cell with a structural defect (its scores are undefined)
        defective = {str(a) for a in space.enumerate() if space.defect(a) is not None} if constraints.sound and \
            "enumerable" in space.capabilities else set()
        return _unique_samples(space, n, rng, exclude=defective)

    def _choose_pretrain(self, space: SearchSpace, pool: CandidatePool, scored: list[Architecture], rng: np.random.Generator) -> list[Architecture]:
        seen = {str(a): a for a in scored}
        if pool.restricted and pool.members is not None:
            for a in pool.members:
                seen.setdefault(str(a), a)
        extra = _unique_samples(space, self.pretrain_samples, rng, exclude=set(seen)) if self.pretrain_samples > 0 else []
        for a in extra:
            seen.setdefault(str(a), a)
        return list(seen.values())

    def _starts(self, pool: CandidatePool, constraints: Constraints, rng: np.random.Generator) -> list[Architecture]:
        starts: list[Architecture] = []
        taken: set[str] = set()
        for _ in range(200 * self.num_starts):
            if len(starts) >= self.num_starts:
                break
            a = constraints.sample(pool, rng, exclude=taken)
            if a is None:
                break
            starts.append(a)
            taken.add(str(a))
        if not starts:
            raise ConfigError(f"strategy 'gradient_ascent': no feasible start ({constraints.describe()})")
        return starts

    def _best_scored(self, run: _AscentRun) -> list[Architecture]:
        """The ``num_starts`` scored architectures with the highest true unified proxy (feasible ones)."""
        up = run.true_up(run.scored, run.scores)
        order = sorted(range(len(run.scored)), key=lambda i: (-(up[i] if math.isfinite(up[i]) else -math.inf), i))
        starts = [run.scored[i] for i in order if run.constraints.ok(run.scored[i])][: self.num_starts]
        if not starts:
            raise ConfigError(f"strategy 'gradient_ascent': no feasible start ({run.constraints.describe()})")
        return starts

    def _ascent(self, vgae: ArchAutoencoder, mpe: torch.nn.Module, codec: GraphCodec, lam: torch.Tensor,
                pool: CandidatePool, constraints: Constraints, starts: list[Architecture], rng: np.random.Generator,
                predict: Any) -> tuple[list[Architecture], dict[str, Any]]:
        with torch.no_grad():
            g = codec.encode(starts)
            z = vgae.embed(g.adj, g.ops).clone()
        z.requires_grad_(True)
        opt = torch.optim.Adam([z], lr=self.ascent_lr)
        active = np.ones(len(starts), bool)
        last_key: list[bytes | None] = [None] * len(starts)
        steps_valid = np.zeros(len(starts), int)
        found: dict[str, Architecture] = {str(a): a for a in starts}  # the starts are valid by construction
        step = 0
        for step in range(self.max_steps + 1):
            if step > 0:
                opt.zero_grad(set_to_none=True)
                loss = -(mpe(z) @ lam).sum()
                loss.backward()
                opt.step()
            adj, ops = vgae.reconstruct(z.detach(), allowed=codec.allowed)
            for s in np.flatnonzero(active):
                key = adj[s].tobytes() + ops[s].tobytes()
                if key == last_key[s]:
                    steps_valid[s] = step
                    continue
                last_key[s] = key
                arch = codec.decode(adj[s], ops[s])
                if arch is None:
                    active[s] = False
                    continue
                steps_valid[s] = step
                if pool.restricted:
                    arch = pool.nearest(arch, rng)
                if constraints.ok(arch):
                    found.setdefault(str(arch), arch)
            if not active.any():
                break
        info = {
            "starts": [str(a) for a in starts],
            "start_predicted": predict(starts).tolist(),
            "ascent_steps": steps_valid.tolist(),
            "stopped_invalid": int((~active).sum()),
            "steps_run": step,
        }
        return list(found.values()), info

    def _random(self, pool: CandidatePool, constraints: Constraints, rng: np.random.Generator, predict: Any) -> tuple[list[Architecture], dict[str, Any]]:
        if pool.restricted and pool.members is not None:  # without replacement from the pool
            order = rng.permutation(len(pool.members))
            archs = [pool.members[int(i)] for i in order if constraints.ok(pool.members[int(i)])][: self.queries]
            return archs, {"estimator_queries": len(archs)}
        found: dict[str, Architecture] = {}
        taken: set[str] = set()
        misses = 0
        while len(found) < self.queries and misses < 20 * self.queries:
            a = constraints.sample(pool, rng, exclude=taken)
            if a is None:
                break
            if str(a) in found:
                misses += 1
                continue
            found[str(a)] = a
            taken.add(str(a))
        return list(found.values()), {"estimator_queries": len(found)}

    def _evolution(self, pool: CandidatePool, constraints: Constraints, rng: np.random.Generator, predict: Any) -> tuple[list[Architecture], dict[str, Any]]:
        cache: dict[str, float] = {}

        def fit(archs: list[Architecture]) -> list[float]:
            new = [a for a in archs if str(a) not in cache]
            if new:
                for a, v in zip(new, predict(new)):
                    cache[str(a)] = float(v)
            return [cache[str(a)] for a in archs]

        init: list[Architecture] = []
        taken: set[str] = set()
        for _ in range(self.population):
            a = constraints.sample(pool, rng, exclude=taken)
            if a is None:
                break
            init.append(a)
            taken.add(str(a))
        if not init:
            return [], {"estimator_queries": 0}
        fit(init)
        queue = deque(init)
        visited = {str(a): a for a in init}
        queries = len(init)
        while queries < self.queries:
            members = list(queue)
            pick = rng.choice(len(members), size=min(self.tournament, len(members)), replace=False)
            parent = max((members[int(i)] for i in pick), key=lambda a: cache[str(a)])
            child = None
            for _ in range(20):
                c = pool.mutate(parent, rng)
                if constraints.ok(c):
                    child = c
                    break
            queries += 1  # every child is one estimator query (a repeat is answered from the cache)
            if child is None:
                continue
            fit([child])
            visited.setdefault(str(child), child)
            queue.append(child)
            queue.popleft()
        return list(visited.values()), {"estimator_queries": queries}


@dataclass
class _AscentRun:
    """The state of one UP-NAS search, filled in step by step."""

    space: SearchSpace
    context: Any
    names: list[str]
    dropped: list[str]
    table_w: Mapping[str, float] | None
    table: TableFitness | None
    pool: CandidatePool
    scorer: Any
    constraints: Constraints
    scored: list[Architecture] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    pretrain: list[Architecture] = field(default_factory=list)
    scored_json: str = ""
    lam: np.ndarray = field(default_factory=lambda: np.zeros(0))
    norm: ScoreNormalizer = field(default_factory=ScoreNormalizer)
    codec: Any = None
    vgae: Any = None
    mpe: Any = None
    mpe_best: dict[str, Any] = field(default_factory=dict)
    lam_t: torch.Tensor | None = None
    queries: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The estimator's unified proxy of ``archs``."""
        with torch.no_grad():
            g = self.codec.encode(archs)
            return (self.mpe(self.vgae.embed(g.adj, g.ops)) @ self.lam_t).numpy().astype(np.float64)

    def true_up(self, archs: Sequence[Architecture], scores: np.ndarray) -> np.ndarray:
        """The unified proxy of real scores; NaN (the worst) where every proxy is undefined or the cell has a
        structural defect, unless a table knows its scores."""
        up = unified_scores(self.norm.transform(scores), self.lam)
        for i, a in enumerate(archs):
            if self.table is None and (not np.isfinite(scores[i]).any() or self.space.defect(a) is not None):
                up[i] = math.nan
        return up

    def scores_dict(self, arch: Architecture, base: dict[str, float], row: np.ndarray) -> dict[str, float]:
        out = dict(base)
        if self.table is not None:
            out["val_accuracy"] = float(self.table.row(arch).val_accuracy)
        for k, n in enumerate(self.names):
            out[n] = float(row[k])
        return out


def _json_rows(scores: np.ndarray) -> list[list[float | None]]:
    """Score rows for JSON (undefined scores as null)."""
    return [[float(v) if math.isfinite(v) else None for v in row] for row in np.asarray(scores, dtype=np.float64)]


def _unique_samples(space: SearchSpace, n: int, rng: np.random.Generator, exclude: set[str] | None = None) -> list[Architecture]:
    exclude = set() if exclude is None else set(exclude)
    out: dict[str, Architecture] = {}
    if "enumerable" in space.capabilities:
        # small spaces: draw without replacement from the enumeration when it is cheap enough
        try:
            everything = [a for a in space.enumerate()]
        except Exception:  # noqa: BLE001
            everything = []
        if everything and len(everything) <= 200_000:
            cands = [a for a in everything if str(a) not in exclude]
            if not cands:
                return []
            idx = rng.permutation(len(cands))[: min(n, len(cands))]
            return [cands[int(i)] for i in sorted(idx.tolist())]
    misses = 0
    while len(out) < n and misses < 50 * n + 1000:
        a = space.sample(rng)
        k = str(a)
        if k in exclude or k in out:
            misses += 1
            continue
        out[k] = a
    return list(out.values())


class _TableScorer:
    """Published proxy scores from a benchmark table (NaN where a row lacks a proxy)."""

    def __init__(self, table: TableFitness, names: Sequence[str]):
        self.table, self.names = table, list(names)

    def __call__(self, archs: Sequence[Architecture], context: Any) -> np.ndarray:
        out = np.full((len(archs), len(self.names)), np.nan)
        for i, a in enumerate(archs):
            p = self.table.row(a).proxies
            for j, n in enumerate(self.names):
                v = p.get(n)
                if v is not None and math.isfinite(v):
                    out[i, j] = v
        return out


class _ProxyScorer:
    """Proxy scores of freshly initialised networks, sharded across ranks and cached on disk."""

    def __init__(self, space: SearchSpace, proxies: dict[str, Any], images: torch.Tensor, targets: torch.Tensor | None,
                 objective: Any, num_classes: int, cache: ProxyScoreCache):
        self.space, self.proxies = space, proxies
        self.images, self.targets = images, targets
        self.objective, self.num_classes, self.cache = objective, num_classes, cache
        self.cfgs = {n: _proxy_config(p) for n, p in proxies.items()}

    def __call__(self, archs: Sequence[Architecture], context: Any) -> np.ndarray:
        names = list(self.proxies)
        known = {n: self.cache.load(n, self.cfgs[n]) for n in names}
        todo = [a for a in archs if any(str(a) not in known[n] for n in names)]
        if todo:
            images = context.to_device(self.images)
            targets = None if self.targets is None else context.to_device(self.targets)
            mine = context.shard(todo)
            local = []
            for a in context.progress(mine, total=len(mine), desc="proxy scores"):
                missing = [n for n in names if str(a) not in known[n]]
                vals = score_with_proxies([self.proxies[n] for n in missing], self.space, a, images, targets,
                                          context=context, num_classes=self.num_classes, objective=self.objective,
                                          seed=context.seed)
                local.append((str(a), dict(zip(missing, vals))))
            new: dict[str, dict[str, float]] = {n: {} for n in names}
            for part in context.all_gather_object(local):
                for key, vals in part:
                    for n, v in vals.items():
                        new[n][key] = float(v)
            for n in names:
                known[n].update(new[n])
                if new[n] and context.is_main:
                    self.cache.save(n, self.cfgs[n], new[n])
        return np.array([[known[n][str(a)] for n in names] for a in archs], dtype=np.float64)
