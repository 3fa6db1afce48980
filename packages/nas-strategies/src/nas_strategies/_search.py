"""Sample-based searches: ``random`` and ``evolution`` (SPOS/MaskTAS-style top-k evolution, or
regularised aging evolution), with one fitness interface:

* an **objective**: a single-path supernet is first trained by uniform path sampling (SPOS); a candidate's
  fitness is the objective's label-free ``score`` on held-out batches with its BN statistics recalibrated;
* a **proxy**: the proxy's score of a freshly initialised standalone network (training-free);
* a **BenchmarkTable**: the table's ground truth (or a published proxy, or a unified combination of them);
  the table's rows are then the candidate pool.

Candidates are deduplicated (an architecture is evaluated at most once), hard ``max_params`` /
``max_flops`` constraints from ``space.cost`` are never violated, the evaluation of each batch of new
candidates is sharded across ranks under torchrun, and the run checkpoints after every generation.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Callable, ClassVar, Mapping

from nas_core import (
    Architecture,
    ConfigError,
    SearchResult,
    SearchSpace,
    Strategy,
    check_compatible,
    evaluator_kind,
)

from ._batches import num_classes_for, proxy_images
from ._constraints import Constraints
from ._distributed import evaluate_sharded
from ._fitness import ObjectiveFitness, ProxyFitness, TableFitness, build_loss_fn, label_free_targets, undefined_reason
from ._pool import CandidatePool
from ._results import make_result
from ._oneshot import OneShotTrainer

__all__ = ["RandomSearch", "EvolutionSearch"]


class _Run:
    """The state one sample-based search works on: pool, constraints, fitness, evaluated candidates."""

    def __init__(self, strategy: _SampledSearch, space: SearchSpace, pool: CandidatePool, constraints: Constraints,
                 fitness: Callable[[Architecture], dict[str, float]], context: Any, epoch_offset: int):
        self.strategy = strategy
        self.space = space
        self.pool = pool
        self.constraints = constraints
        self.fitness = fitness
        self.context = context
        self.epoch_offset = epoch_offset
        self.evaluated: dict[str, tuple[Architecture, dict[str, float]]] = {}
        self.reference: list[str] = []  # the candidates a proxy's normalisation was calibrated on
        self.rng = context.rng(f"{strategy.registered_name or strategy.name}/search")

    # -- bookkeeping ------------------------------------------------------------------------------
    def fitness_of(self, key: str) -> float:
        v = self.evaluated[key][1]["fitness"]
        return v if math.isfinite(v) else -math.inf

    def seen(self, arch: Architecture) -> bool:
        return str(arch) in self.evaluated

    def feasible_new(self, arch: Architecture, taken: set[str]) -> bool:
        key = str(arch)
        return key not in self.evaluated and key not in taken and arch in self.pool and self.constraints.ok(arch)

    def random_new(self, n: int, taken: set[str] | None = None) -> list[Architecture]:
        """Up to ``n`` feasible, never-evaluated architectures drawn uniformly from the pool."""
        taken = set() if taken is None else taken
        out: list[Architecture] = []
        tries = 0
        limit = 200 * max(1, n) + 2000
        while len(out) < n and tries < limit:
            tries += 1
            a = self.pool.sample(self.rng)
            if self.feasible_new(a, taken):
                out.append(a)
                taken.add(str(a))
        return out

    def evaluate(self, archs: list[Architecture], desc: str) -> list[dict[str, float]]:
        for a in archs:  # the invariant the tests check: constraints are never violated
            if not self.constraints.ok(a):  # pragma: no cover - guarded by every proposer
                raise AssertionError(f"{a} violates {self.constraints.describe()}")
        # a cell with a structural defect (no input-output path) is not worth a network: the worst fitness,
        # unless a table knows its true value
        table = isinstance(self.fitness, TableFitness)
        todo = [a for a in archs if table or self.space.defect(a) is None]
        if getattr(self.fitness, "needs_reference", False) and todo:
            # the first candidates (random) are the reference set of a proxy that normalises against one
            self.reference = [str(a) for a in todo]
            self.fitness.calibrate_on(todo)
        computed = iter(evaluate_sharded(self.fitness, todo, self.context, desc=desc) if todo else [])
        scores = [next(computed) if (table or self.space.defect(a) is None) else {"fitness": math.nan, "undefined": 1.0}
                  for a in archs]
        for a, s in zip(archs, scores):
            self.evaluated[str(a)] = (a, s)
        return scores

    def undefined(self) -> dict[str, str]:
        """Evaluated architectures whose fitness is undefined, with the reason (recorded in the result)."""
        what = f"fitness '{getattr(self.fitness, 'name', 'fitness')}'"
        return {k: undefined_reason(self.space, a, what) for k, (a, s) in self.evaluated.items()
                if not math.isfinite(float(s.get("fitness", math.nan)))}

    def ranked(self) -> list[str]:
        keys = list(self.evaluated)
        order = sorted(range(len(keys)), key=lambda i: (-self.fitness_of(keys[i]), i))
        return [keys[i] for i in order]

    def log(self, generation: int, extra: Mapping[str, Any]) -> None:
        ranked = self.ranked()
        best = ranked[0] if ranked else None
        metrics: dict[str, Any] = {
            "phase": "search",
            "generation": generation,
            "evaluated": len(self.evaluated),
            "best_fitness": self.fitness_of(best) if best else math.nan,
            "best_arch": best or "",
        }
        if best is not None and "val_accuracy" in self.evaluated[best][1]:
            metrics["best_val_accuracy"] = self.evaluated[best][1]["val_accuracy"]
        metrics.update(extra)
        self.context.log_epoch(self.epoch_offset + generation, metrics)

    def to_state(self) -> list[list[Any]]:
        return [[k, s] for k, (_, s) in self.evaluated.items()]

    def load_state(self, items: list[list[Any]]) -> None:
        self.evaluated = {k: (self.space.parse(k), {n: float(v) for n, v in s.items()}) for k, s in items}


@dataclass
class _SampledSearch(Strategy):
    """Options shared by ``random`` and ``evolution`` (fitness, constraints, one-shot training)."""

    max_params: float | None = None
    max_flops: float | None = None
    table_metric: str = "val_accuracy"
    unified_weights: dict[str, float] | None = None
    proxy_batch_size: int = 64
    num_classes: int | None = None
    loss_objective: str | None = None
    train_epochs: int = 5
    batch_size: int = 64
    steps_per_epoch: int | None = None
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 4e-5
    grad_clip: float | None = 5.0
    optimizer: str = "sgd"
    val_fraction: float = 0.2
    eval_batches: int = 2
    calib_batches: int = 4
    supernet: dict[str, Any] | None = None

    needs: ClassVar[Mapping[str, frozenset[str]]] = {
        "objective": frozenset({"single_path"}),
        "proxy": frozenset(),
        "table": frozenset(),
    }
    name: ClassVar[str] = "search"

    def __post_init__(self) -> None:
        for opt in ("proxy_batch_size", "batch_size"):
            if int(getattr(self, opt)) < 1:
                raise ConfigError(f"strategy '{self.name}': {opt} must be >= 1, got {getattr(self, opt)}")
        if self.train_epochs < 0:
            raise ConfigError(f"strategy '{self.name}': train_epochs must be >= 0, got {self.train_epochs}")

    def config(self) -> dict[str, Any]:
        return asdict(self)

    # -- set-up -----------------------------------------------------------------------------------
    def _fitness(self, space: SearchSpace, evaluator: Any, data: Any, context: Any, kind: str, hints: Mapping[str, Any]) -> tuple[Any, CandidatePool, OneShotTrainer | None]:
        trainer = None
        if kind == "table":
            fit: Any = TableFitness(evaluator, space, metric=self.table_metric, weights=self.unified_weights)
            pool = CandidatePool(space, fit.members, mutation_hints=hints)
        elif kind == "proxy":
            pool = CandidatePool(space, mutation_hints=hints)
            images, targets = proxy_images(data, self.proxy_batch_size, context.seed, [evaluator], space)
            n_classes = num_classes_for(space, data, self.num_classes)
            targets, how = label_free_targets([evaluator], images, targets, loss_objective=self.loss_objective,
                                              num_classes=n_classes, seed=context.seed)
            objective = build_loss_fn([evaluator], has_targets=targets is not None, loss_objective=self.loss_objective,
                                      what=f"strategy '{self.registered_name or self.name}'")
            fit = ProxyFitness(evaluator, space, images, targets, context=context, num_classes=n_classes,
                               loss_objective=objective, seed=context.seed)
            fit.label_free_loss = how
        else:
            pool = CandidatePool(space, mutation_hints=hints)
            trainer = OneShotTrainer(
                space, evaluator, data, context, pool=pool, epochs=self.train_epochs, batch_size=self.batch_size,
                steps_per_epoch=self.steps_per_epoch, lr=self.lr, momentum=self.momentum,
                weight_decay=self.weight_decay, grad_clip=self.grad_clip, optimizer=self.optimizer,
                val_fraction=self.val_fraction, eval_batches=self.eval_batches, calib_batches=self.calib_batches,
                supernet_kwargs=self.supernet, stream=f"{self.registered_name or self.name}",
            )
            fit = ObjectiveFitness(evaluator, trainer.supernet, trainer.calib, trainer.heldout, context=context,
                                   heldout_targets=trainer.heldout_targets)
        return fit, pool, trainer

    def _hints(self) -> dict[str, Any]:
        return {}

    def run(self, space: SearchSpace, evaluator: Any, data: Any, context: Any) -> SearchResult:
        check_compatible(self, space, evaluator, has_labels=getattr(data, "has_labels", None))
        kind = evaluator_kind(evaluator)
        with context.lifecycle():
            fitness, pool, trainer = self._fitness(space, evaluator, data, context, kind, self._hints())
            constraints = Constraints(space, self.max_params, self.max_flops)
            state = context.load_checkpoint() or {}
            offset = self.train_epochs if trainer is not None else 0
            # phase 1: one-shot supernet training (objective fitness only)
            if trainer is not None:
                if "trainer" in state:
                    trainer.load_state_dict(state["trainer"])
                path_rng = context.rng(f"{self.registered_name or self.name}/paths")
                for epoch in range(int(state.get("train_epoch", 0)), self.train_epochs):
                    metrics = trainer.train_epoch(epoch, path_rng)
                    context.log_epoch(epoch, {"phase": "train", **metrics})
                    context.save_checkpoint({"train_epoch": epoch + 1, "trainer": trainer.state_dict()})
            # phase 2: search
            run = _Run(self, space, pool, constraints, fitness, context, offset)
            search_state = json.loads(state["search"]) if "search" in state else None
            if search_state is not None:
                run.load_state(search_state["evaluated"])
                if search_state.get("reference") and getattr(fitness, "needs_reference", False):
                    run.reference = list(search_state["reference"])
                    fitness.calibrate_on([space.parse(a) for a in run.reference])

            def checkpoint(extra: dict[str, Any]) -> None:
                payload: dict[str, Any] = {
                    "train_epoch": self.train_epochs,
                    "search": json.dumps({"evaluated": run.to_state(), "reference": run.reference, **extra}),
                }
                if trainer is not None:
                    payload["trainer"] = trainer.state_dict()
                context.save_checkpoint(payload)

            extra = self._search(run, search_state, checkpoint)
            name = getattr(evaluator, "registered_name", None) or getattr(fitness, "name", None)
            items = [run.evaluated[k] for k in run.evaluated]
            extra = {
                "evaluations": len(items),
                "constraints": {"max_params": self.max_params, "max_flops": self.max_flops},
                "pool_size": len(pool) if pool.restricted else None,
                "fitness": fitness.name,
                **({"label_free_loss": fitness.label_free_loss} if getattr(fitness, "label_free_loss", None) else {}),
                **({"reference": f"normalised against the first {len(run.reference)} (random) candidates"}
                   if run.reference else {}),
                **extra,
            }
            undefined = run.undefined()
            if undefined:
                extra["undefined"] = undefined
            result = make_result(self, space, items, context, kind=kind, evaluator_name=name, extra=extra)
            return context.finish(result)

    def _search(self, run: _Run, state: dict[str, Any] | None, checkpoint: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        raise TypeError(f"{type(self).__name__} must define _search")  # pragma: no cover


@dataclass
class RandomSearch(_SampledSearch):
    """Random search: ``budget`` distinct feasible architectures drawn uniformly (from the pool), evaluated
    in chunks of ``chunk`` (one checkpoint and one history record per chunk)."""

    budget: int = 100
    chunk: int = 25
    name: ClassVar[str] = "random"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.budget < 1 or self.chunk < 1:
            raise ConfigError(f"strategy 'random': budget and chunk must be >= 1, got {self.budget}, {self.chunk}")

    def _search(self, run: _Run, state: dict[str, Any] | None, checkpoint: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        chunk_idx = int(state["chunk"]) if state else 0
        exhausted = bool(state.get("exhausted", False)) if state else False
        while len(run.evaluated) < self.budget and not exhausted:
            n = min(self.chunk, self.budget - len(run.evaluated))
            archs = run.random_new(n)
            exhausted = len(archs) < n
            if archs:
                run.evaluate(archs, desc=f"random chunk {chunk_idx}")
            run.log(chunk_idx, {"new": len(archs)})
            chunk_idx += 1
            checkpoint({"chunk": chunk_idx, "exhausted": exhausted})
        if not run.evaluated:
            raise ConfigError(
                f"random search found no feasible architecture ({run.constraints.describe()}); relax the constraints"
            )
        return {"chunks": chunk_idx, "exhausted": exhausted}


@dataclass
class EvolutionSearch(_SampledSearch):
    """Evolutionary search (SPOS / MaskTAS): a random initial population of ``population``; each generation
    takes the top-``parents`` of everything evaluated so far and breeds ``population`` new, never-seen,
    feasible children, a ``mutation_ratio`` share by mutation of one parent and the rest by crossover of two
    (topped up with random samples when breeding runs dry). ``aging=True`` runs regularised evolution
    instead (Real et al. 2019): tournament of ``tournament`` members, mutate the winner, the oldest member
    dies. ``budget`` caps the number of evaluations (default ``population * generations``).

    ``mutation_prob`` (per-block P_m) and ``depth_mutation_prob`` (P_d) are passed to ``space.mutate`` when
    it accepts them (ViT-like spaces); other spaces ignore them with a warning.
    """

    population: int = 50
    generations: int = 20
    parents: int = 10
    mutation_ratio: float = 0.5
    mutation_prob: float | None = None
    depth_mutation_prob: float | None = None
    budget: int | None = None
    aging: bool = False
    tournament: int = 10
    name: ClassVar[str] = "evolution"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.population < 2:
            raise ConfigError(f"strategy 'evolution': population must be >= 2, got {self.population}")
        if self.generations < 1:
            raise ConfigError(f"strategy 'evolution': generations must be >= 1, got {self.generations}")
        if self.parents < 1:
            raise ConfigError(f"strategy 'evolution': parents must be >= 1, got {self.parents}")
        if not 0.0 <= self.mutation_ratio <= 1.0:
            raise ConfigError(f"strategy 'evolution': mutation_ratio must be in [0, 1], got {self.mutation_ratio}")
        if self.budget is not None and self.budget < 1:
            raise ConfigError(f"strategy 'evolution': budget must be >= 1, got {self.budget}")
        if self.tournament < 1:
            raise ConfigError(f"strategy 'evolution': tournament must be >= 1, got {self.tournament}")

    def _hints(self) -> dict[str, Any]:
        return {"mutation_prob": self.mutation_prob, "depth_mutation_prob": self.depth_mutation_prob}

    @property
    def max_evaluations(self) -> int:
        return int(self.budget) if self.budget is not None else self.population * self.generations

    def _search(self, run: _Run, state: dict[str, Any] | None, checkpoint: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        if self.aging:
            return self._aging(run, state, checkpoint)
        return self._topk(run, state, checkpoint)

    # -- top-k evolution (SPOS / MaskTAS) ---------------------------------------------------------
    def _topk(self, run: _Run, state: dict[str, Any] | None, checkpoint: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        budget = self.max_evaluations
        gen = int(state["generation"]) if state else 0
        while gen < self.generations and len(run.evaluated) < budget:
            n = min(self.population, budget - len(run.evaluated))
            if gen == 0:
                children = run.random_new(n)
                if not children:
                    raise ConfigError(
                        f"evolution found no feasible architecture ({run.constraints.describe()}); relax the constraints"
                    )
                made = {"random": len(children)}
            else:
                children, made = self._breed(run, n)
            if not children:
                break
            run.evaluate(children, desc=f"generation {gen}")
            run.log(gen, made)
            gen += 1
            checkpoint({"generation": gen})
        return {"generations": gen}

    def _breed(self, run: _Run, n: int) -> tuple[list[Architecture], dict[str, int]]:
        rng = run.rng
        ranked = run.ranked()
        k = min(self.parents, len(ranked))
        parents = [run.evaluated[key][0] for key in ranked[:k]]
        taken: set[str] = set()
        children: list[Architecture] = []
        n_mut = int(round(n * self.mutation_ratio))
        counts = {"mutation": 0, "crossover": 0, "random": 0}
        tries = 0
        while len(children) < n_mut and tries < 30 * n:
            tries += 1
            child = run.pool.mutate(parents[int(rng.integers(k))], rng)
            if run.feasible_new(child, taken):
                children.append(child)
                taken.add(str(child))
                counts["mutation"] += 1
        tries = 0
        while len(children) < n and k >= 2 and tries < 30 * n:
            tries += 1
            i, j = rng.choice(k, size=2, replace=False)
            child = run.pool.crossover(parents[int(i)], parents[int(j)], rng)
            if run.feasible_new(child, taken):
                children.append(child)
                taken.add(str(child))
                counts["crossover"] += 1
        tries = 0
        while len(children) < n and tries < 30 * n:  # crossover impossible (k == 1) or exhausted: mutate more
            tries += 1
            child = run.pool.mutate(parents[int(rng.integers(k))], rng)
            if run.feasible_new(child, taken):
                children.append(child)
                taken.add(str(child))
                counts["mutation"] += 1
        if len(children) < n:
            extra = run.random_new(n - len(children), taken)
            children += extra
            counts["random"] += len(extra)
        return children, counts

    # -- regularised (aging) evolution ------------------------------------------------------------
    def _aging(self, run: _Run, state: dict[str, Any] | None, checkpoint: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        budget = self.max_evaluations
        rng = run.rng
        if state is None:
            init = run.random_new(min(self.population, budget))
            if not init:
                raise ConfigError(
                    f"evolution found no feasible architecture ({run.constraints.describe()}); relax the constraints"
                )
            run.evaluate(init, desc="initial population")
            queue = deque(str(a) for a in init)
            gen, since = 1, 0
            run.log(0, {"random": len(init)})
            checkpoint({"queue": list(queue), "generation": gen, "steps": 0})
            steps = 0
        else:
            queue = deque(state["queue"])
            gen, steps, since = int(state["generation"]), int(state["steps"]), 0
        max_steps = 20 * budget
        while len(run.evaluated) < budget and steps < max_steps:
            steps += 1
            members = list(queue)
            pick = rng.choice(len(members), size=min(self.tournament, len(members)), replace=False)
            parent_key = max((members[int(i)] for i in pick), key=lambda key: (run.fitness_of(key), -members.index(key)))
            parent = run.evaluated[parent_key][0]
            child = None
            for _ in range(20):
                c = run.pool.mutate(parent, rng)
                if run.constraints.ok(c) and c in run.pool and str(c) != parent_key:
                    child = c
                    if not run.seen(c):
                        break
            if child is None:
                continue
            if not run.seen(child):
                run.evaluate([child], desc=f"generation {gen}")
                since += 1
            queue.append(str(child))
            queue.popleft()
            if since >= self.population or len(run.evaluated) >= budget:
                run.log(gen, {"children": since})
                gen += 1
                since = 0
                checkpoint({"queue": list(queue), "generation": gen, "steps": steps})
        return {"generations": gen, "population": list(queue)}
