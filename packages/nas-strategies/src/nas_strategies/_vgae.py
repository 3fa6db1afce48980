"""arch2vec-style variational graph autoencoder (Yan et al., 2020) over any space's ``encode`` output,
and the UP-NAS multi-proxy estimator (Huang et al., 2024).

Encoder: L GIN layers over the symmetrised adjacency ``A + A^T`` and the one-hot operations ``X``
(``h <- MLP((1 + eps) h + (A + A^T) h)``), then linear heads for the per-node mean and log-variance.
Unlike arch2vec, the node features also carry the node's index (one-hot; ``positional=False`` turns it
off): without it two nodes in symmetric positions with the same operation get identical embeddings, and
the inner-product decoder must then predict an edge between them.
Decoder: an inner-product adjacency decoder ``sigmoid(z_i . z_j)`` (upper triangle) and a linear
operation decoder ``softmax(W z + b)``. Loss: operation cross-entropy + adjacency binary cross-entropy +
``kl_weight`` times the KL divergence to N(0, I). The embedding of an architecture is the flattened mean
``mu`` (``num_nodes * latent_dim`` values).

Spaces whose graphs differ in size are padded to the largest graph; padded nodes carry an extra ``pad``
operation class, and decoding strips trailing pad nodes.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_core import Architecture, ConfigError, SearchSpace

__all__ = [
    "GraphBatch",
    "GraphCodec",
    "encode_architectures",
    "ArchAutoencoder",
    "train_autoencoder",
    "reconstruction_accuracy",
    "MultiProxyEstimator",
    "EstimatorEnsemble",
    "estimator_loss",
    "train_estimator",
]


class GraphBatch:
    """Encoded architectures as dense tensors: ``adj [n, N, N]``, ``ops [n, N, K(+1 pad)]`` and node ``mask``."""

    def __init__(self, adj: torch.Tensor, ops: torch.Tensor, mask: torch.Tensor, num_ops: int, padded: bool):
        self.adj, self.ops, self.mask = adj, ops, mask
        self.num_ops = num_ops  # K, the space's operation classes (without pad)
        self.padded = padded

    def __len__(self) -> int:
        return self.adj.shape[0]

    @property
    def num_nodes(self) -> int:
        return self.adj.shape[1]

    @property
    def num_classes(self) -> int:
        return self.ops.shape[2]

    def subset(self, idx: Any) -> GraphBatch:
        return GraphBatch(self.adj[idx], self.ops[idx], self.mask[idx], self.num_ops, self.padded)


class GraphCodec:
    """Fixed graph shape for one autoencoder: ``num_nodes`` (the largest graph), ``K`` operation classes of the
    space, and whether a ``pad`` class is needed (graphs of different sizes). Encodes architectures into a
    :class:`GraphBatch` and decodes discrete graphs back through ``space.decode``. When every architecture
    shares one adjacency (``fixed_adj``: NB201), decoding keeps it and reads only the operations."""

    def __init__(self, space: SearchSpace, archs: Sequence[Architecture]):
        if not archs:
            raise ConfigError("no architectures to encode")
        self.space = space
        shapes = {tuple(np.asarray(m).shape) for a in archs for m in space.encode(a)[1:]}
        ks = {s[1] for s in shapes}
        if len(ks) != 1:
            raise ConfigError(
                f"space '{space.name}' encodes operations with different widths {sorted(ks)}; the graph autoencoder "
                f"needs one operation vocabulary"
            )
        self.num_ops = ks.pop()
        sizes = {s[0] for s in shapes}
        self.num_nodes = max(sizes)
        self.padded = len(sizes) > 1
        self.num_classes = self.num_ops + 1 if self.padded else self.num_ops
        # a space whose graph never changes (NB201: the operations sit on the nodes of one fixed DAG): only the
        # operations are decoded; a decoded adjacency carries no information there and, moving off the data
        # manifold, flips long before an operation does (which would end every ascent at its start)
        adjs = {np.asarray(space.encode(a)[0], np.float32).tobytes() for a in archs}
        self.fixed_adj = np.asarray(space.encode(archs[0])[0], np.float32) if len(adjs) == 1 and not self.padded else None
        # with a fixed graph, each node's position fixes which classes it can take (NB201: the input label, an
        # operation, the output label): decoding keeps to them, so an ascent is never stopped by a decoding that
        # puts an input label on an operation node
        self.allowed: torch.Tensor | None = None
        if self.fixed_adj is not None:
            seen = np.zeros((self.num_nodes, self.num_classes), bool)
            for a in archs:
                seen[np.arange(self.num_nodes), np.asarray(space.encode(a)[1]).argmax(-1)] = True
            self.allowed = torch.from_numpy(seen)

    def encode(self, archs: Sequence[Architecture]) -> GraphBatch:
        n_max, k = self.num_nodes, self.num_ops
        adj = np.zeros((len(archs), n_max, n_max), np.float32)
        ops = np.zeros((len(archs), n_max, self.num_classes), np.float32)
        mask = np.zeros((len(archs), n_max), np.float32)
        for i, arch in enumerate(archs):
            a, o = self.space.encode(arch)
            a, o = np.asarray(a, np.float32), np.asarray(o, np.float32)
            n = a.shape[0]
            if n > n_max or o.shape[1] != k:
                raise ConfigError(
                    f"{arch} encodes to {n} nodes x {o.shape[1]} ops; this autoencoder takes at most {n_max} x {k}"
                )
            adj[i, :n, :n] = a
            ops[i, :n, :k] = o
            mask[i, :n] = 1
            if self.padded:
                ops[i, n:, k] = 1
        return GraphBatch(torch.from_numpy(adj), torch.from_numpy(ops), torch.from_numpy(mask), k, self.padded)

    def decode(self, adj: np.ndarray, ops: np.ndarray) -> Architecture | None:
        """One discrete graph (from :meth:`ArchAutoencoder.reconstruct`) -> architecture or ``None`` (invalid)."""
        n = self.num_nodes
        if self.padded:
            is_pad = ops.argmax(-1) == self.num_ops
            n = int(np.argmax(is_pad)) if is_pad.any() else self.num_nodes
            if is_pad[n:].size and not is_pad[n:].all():
                return None  # a real node after a pad node
            if n == 0:
                return None
        if self.fixed_adj is not None:
            adj = self.fixed_adj
        try:
            return self.space.decode(adj[:n, :n], ops[:n, : self.num_ops])
        except Exception:  # noqa: BLE001 - a space may raise on a malformed graph instead of returning None
            return None


def encode_architectures(space: SearchSpace, archs: Sequence[Architecture], codec: GraphCodec | None = None) -> GraphBatch:
    """Encode architectures with ``space.encode`` into one (padded when needed) :class:`GraphBatch`."""
    return (codec or GraphCodec(space, archs)).encode(archs)


class _GIN(nn.Module):
    def __init__(self, d_in: int, d_hidden: int):
        super().__init__()
        self.eps = nn.Parameter(torch.zeros(1))
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.bn1 = nn.BatchNorm1d(d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_hidden)
        self.bn2 = nn.BatchNorm1d(d_hidden)

    @staticmethod
    def _bn(bn: nn.BatchNorm1d, h: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        return bn(h.reshape(b * n, d)).reshape(b, n, d)

    def forward(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        h = (1 + self.eps) * h + adj @ h
        h = F.relu(self._bn(self.bn1, self.fc1(h)))
        return F.relu(self._bn(self.bn2, self.fc2(h)))


class ArchAutoencoder(nn.Module):
    """The variational graph autoencoder (arch2vec). ``embed`` gives the flattened mean embedding."""

    def __init__(
        self,
        num_nodes: int,
        num_classes: int,
        *,
        hidden_dim: int = 128,
        latent_dim: int = 16,
        layers: int = 5,
        dropout: float = 0.0,
        positional: bool = True,
    ):
        super().__init__()
        if layers < 1 or hidden_dim < 1 or latent_dim < 1:
            raise ConfigError(f"autoencoder: layers, hidden_dim and latent_dim must be >= 1, got {layers}, {hidden_dim}, {latent_dim}")
        self.num_nodes, self.num_classes, self.latent_dim = num_nodes, num_classes, latent_dim
        self.positional = positional
        d_in = num_classes + (num_nodes if positional else 0)
        self.gins = nn.ModuleList(_GIN(d_in if i == 0 else hidden_dim, hidden_dim) for i in range(layers))
        self.fc_mu = nn.Linear(hidden_dim, latent_dim)
        self.fc_logvar = nn.Linear(hidden_dim, latent_dim)
        self.dropout = nn.Dropout(dropout)
        self.op_decoder = nn.Linear(latent_dim, num_classes)

    @property
    def embedding_dim(self) -> int:
        return self.num_nodes * self.latent_dim

    def encode(self, adj: torch.Tensor, ops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = adj + adj.transpose(1, 2)
        h = ops
        if self.positional:  # node index one-hot: tells apart nodes in symmetric positions with the same op
            pos = torch.eye(self.num_nodes, dtype=ops.dtype, device=ops.device).expand(ops.shape[0], -1, -1)
            h = torch.cat([ops, pos], -1)
        for gin in self.gins:
            h = gin(h, a)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(operation logits ``[B, N, K]``, adjacency logits ``[B, N, N]``) for latent nodes ``z [B, N, F]``."""
        z = self.dropout(z)
        return self.op_decoder(z), z @ z.transpose(1, 2)

    def forward(self, adj: torch.Tensor, ops: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        mu, logvar = self.encode(adj, ops)
        if self.training:
            noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
            z = mu + noise * torch.exp(0.5 * logvar)
        else:
            z = mu
        op_logits, adj_logits = self.decode(z)
        return op_logits, adj_logits, mu, logvar

    def embed(self, adj: torch.Tensor, ops: torch.Tensor) -> torch.Tensor:
        """Flattened mean embeddings ``[B, N * F]`` (eval mode, no noise)."""
        mu, _ = self.encode(adj, ops)
        return mu.flatten(1)

    def reconstruct(self, z_flat: torch.Tensor, allowed: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Discrete (adjacency ``[B, N, N]`` upper-triangular 0/1, one-hot ops ``[B, N, K(+pad)]``) from embeddings.
        ``allowed`` (bool ``[N, K]``): the operation classes each node may take (the space's grammar)."""
        z = z_flat.reshape(z_flat.shape[0], self.num_nodes, self.latent_dim)
        op_logits, adj_logits = self.decode(z)
        if allowed is not None:
            op_logits = op_logits.masked_fill(~allowed.to(op_logits.device), float("-inf"))
        n = self.num_nodes
        triu = torch.triu(torch.ones(n, n, dtype=torch.bool, device=z.device), diagonal=1)
        adj = ((adj_logits > 0) & triu).float()
        ops = F.one_hot(op_logits.argmax(-1), self.num_classes).float()
        return adj.detach().cpu().numpy(), ops.detach().cpu().numpy()

    def loss(self, batch: GraphBatch, generator: torch.Generator | None = None, kl_weight: float = 0.005) -> tuple[torch.Tensor, dict[str, float]]:
        op_logits, adj_logits, mu, logvar = self(batch.adj, batch.ops, generator)
        n = batch.num_nodes
        mask = batch.mask
        if batch.padded:  # pad nodes must be predicted as pad too
            mask = torch.ones_like(mask)
        ops_loss = (F.cross_entropy(op_logits.transpose(1, 2), batch.ops.argmax(-1), reduction="none") * mask).sum() / mask.sum()
        triu = torch.triu(torch.ones(n, n, dtype=torch.bool, device=adj_logits.device), diagonal=1)
        pair_mask = (batch.mask.unsqueeze(2) * batch.mask.unsqueeze(1))[:, triu]
        adj_loss = (F.binary_cross_entropy_with_logits(adj_logits[:, triu], batch.adj[:, triu], reduction="none") * pair_mask).sum() / pair_mask.sum().clamp_min(1)
        kl = -0.5 * ((1 + logvar - mu.pow(2) - logvar.exp()).sum(-1) * batch.mask).sum() / batch.mask.sum()
        total = ops_loss + adj_loss + kl_weight * kl
        return total, {"ops_loss": float(ops_loss.detach()), "adj_loss": float(adj_loss.detach()), "kl": float(kl.detach())}


def train_autoencoder(
    model: ArchAutoencoder,
    data: GraphBatch,
    *,
    epochs: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    kl_weight: float = 0.005,
    generator: torch.Generator | None = None,
    start_epoch: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    on_epoch: Any = None,
) -> torch.optim.Optimizer:
    """Train the autoencoder (Adam). ``on_epoch(epoch, metrics)`` is called after each epoch (checkpoints)."""
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    n = len(data)
    bs = max(2, min(batch_size, n))
    for epoch in range(start_epoch, epochs):
        model.train()
        perm = torch.randperm(n, generator=generator)
        totals: dict[str, float] = {"loss": 0.0, "ops_loss": 0.0, "adj_loss": 0.0, "kl": 0.0}
        count = 0
        for s in range(0, n - bs + 1, bs):  # full batches only (BatchNorm)
            idx = perm[s : s + bs]
            loss, parts = model.loss(data.subset(idx), generator, kl_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            totals["loss"] += float(loss.detach())
            for k, v in parts.items():
                totals[k] += v
            count += 1
        metrics = {k: v / max(1, count) for k, v in totals.items()}
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    return opt


@torch.no_grad()
def reconstruction_accuracy(model: ArchAutoencoder, data: GraphBatch) -> dict[str, float]:
    """Per-node operation accuracy, per-pair adjacency accuracy and whole-graph exact-match rate (eval mode)."""
    model.eval()
    adj, ops = model.reconstruct(model.embed(data.adj, data.ops))
    true_adj, true_ops = data.adj.numpy(), data.ops.numpy()
    n = data.num_nodes
    triu = np.triu(np.ones((n, n), bool), k=1)
    mask = data.mask.numpy() > 0
    op_ok = (ops.argmax(-1) == true_ops.argmax(-1))
    pair_mask = (mask[:, :, None] & mask[:, None, :])[:, triu]
    adj_ok = (adj[:, triu] == true_adj[:, triu])
    exact = (op_ok | ~mask).all(1) & (adj_ok | ~pair_mask).all(1)
    return {
        "ops": float(op_ok[mask].mean()),
        "adjacency": float(adj_ok[pair_mask].mean()) if pair_mask.any() else 1.0,
        "exact": float(exact.mean()),
    }


class MultiProxyEstimator(nn.Module):
    """The UP-NAS MPE head: two hidden layers of Linear-BatchNorm-ReLU, then a linear layer predicting the
    M (standardised) proxy scores from an architecture embedding."""

    def __init__(self, in_dim: int, num_proxies: int, hidden_dim: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, num_proxies),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class EstimatorEnsemble(nn.Module):
    """The mean prediction of several independently initialised estimators (``mpe_ensemble``); one member is
    exactly the UP-NAS MPE. Averaging lowers the variance of an estimator trained on few scored architectures."""

    def __init__(self, members: Sequence[MultiProxyEstimator]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(z) for m in self.members]).mean(0)


def estimator_loss(model: nn.Module, embeddings: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """MSE over the finite targets (missing scores are masked out)."""
    valid = torch.isfinite(targets)
    pred = model(embeddings)
    diff = torch.where(valid, pred - torch.where(valid, targets, torch.zeros_like(targets)), torch.zeros_like(pred))
    return (diff**2).sum() / valid.sum().clamp_min(1)


def train_estimator(
    model: MultiProxyEstimator | EstimatorEnsemble,
    embeddings: torch.Tensor,
    targets: torch.Tensor,
    *,
    epochs: int = 70,
    batch_size: int = 16,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
    start_epoch: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    on_epoch: Any = None,
    val_embeddings: torch.Tensor | None = None,
    val_targets: torch.Tensor | None = None,
    best: dict[str, Any] | None = None,
) -> torch.optim.Optimizer:
    """MSE on standardised scores (NaN targets are masked out), Adam without weight decay (UP-NAS 3.5).

    With validation data, ``best`` (a dict updated in place: ``loss``, ``epoch``, ``state``) tracks the
    epoch with the lowest validation MSE and the model ends with those weights (early stopping by model
    selection; pass the same dict again when resuming)."""
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    members = list(model.members) if isinstance(model, EstimatorEnsemble) else [model]
    n = embeddings.shape[0]
    bs = max(2, min(batch_size, n))
    track = val_embeddings is not None and val_targets is not None and len(val_embeddings) > 0
    best = {} if best is None else best
    for epoch in range(start_epoch, epochs):
        model.train()
        perms = [torch.randperm(n, generator=generator) for _ in members]
        total, count = 0.0, 0
        for s in range(0, n - bs + 1, bs):
            # each member sees its own order; disjoint parameters, so one Adam on the summed loss trains
            # every member exactly as its own optimiser would
            loss = sum(estimator_loss(m, embeddings[p[s : s + bs]], targets[p[s : s + bs]]) for m, p in zip(members, perms))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) / len(members)
            count += 1
        metrics = {"loss": total / max(1, count)}
        if track:
            model.eval()
            with torch.no_grad():
                v = float(estimator_loss(model, val_embeddings, val_targets))
            metrics["val_loss"] = v
            if "loss" not in best or v < best["loss"]:
                best.update(loss=v, epoch=epoch, state={k: t.detach().clone() for k, t in model.state_dict().items()})
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    if track and "state" in best:
        model.load_state_dict(best["state"])
    return opt
