"""Train one model on one fold, with early stopping; predict a loader.

One training step (:meth:`FoldTrainer.step`): the collate has augmented the batch (its
:class:`~gpuaug.data.batch.Batch` carries the label action; clips the policy drops get weight
0 in the loss) -> log-mel on the batch's device -> z-normalisation (training-fold
statistics) -> model -> :func:`~gpuaug.train.loss.ser_loss` (masked clips out of the loss,
relabelled ones with shifted dimensional targets) -> RMSprop step.

Early stopping: after every epoch the clean validation fold's loss (the same weighted loss,
no augmentation) is computed; training stops after ``patience`` epochs without improvement
(or at ``epochs``) and the weights of the best epoch are restored.

Timing: every epoch records wall and process CPU seconds of (a) the augmentation (the
collate's pipeline call, measured inside the collate when it runs in this process), (b) the
rest of batch preparation and (c) the model step, so the augmentation's share of a training
step is reported next to the clips per second.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from ..data.batch import Batch
from ..data.collate import AugmentCollate
from ..transforms import Pipeline
from .distributed import DistContext, EpochBatchSampler, global_sum
from .features import LogMel, Normalizer
from .loss import aux_targets_from_dims, class_weights, ser_loss, weight_sums
from .model import CNNGRU, CNNGRUConfig

__all__ = ["TrainConfig", "TimedCollate", "FoldData", "FoldTrainer", "Prediction", "predict", "aux_targets"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (seed 001: RMSprop, up to 50 epochs, patience 5).

    Attributes:
        epochs: maximum epochs. patience: epochs without a lower validation loss before
        stopping. batch_size: global batch size (all ranks together). lr: RMSprop learning
        rate. aux_weight: weight of the activation + valence losses (0: emotion only).
        norm: ``global`` | ``speaker`` z-normalisation. sample_rate: the model's rate (Hz;
        items are resampled by the collate). max_seconds: crop longer clips (None: keep).
        num_workers: DataLoader workers (0: augment in this process, which is also what
        the timing measures). ratio, ratio_mode: the collate's selection (share of
        training items augmented, ``bernoulli`` | ``fixed_subset``).
    """

    epochs: int = 50
    patience: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    aux_weight: float = 1.0
    norm: str = "global"
    sample_rate: int = 16000
    max_seconds: float | None = None
    num_workers: int = 0
    ratio: float = 1.0
    ratio_mode: str = "bernoulli"

    def __post_init__(self):
        for name in ("epochs", "patience", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"TrainConfig: {name} must be a positive int, got {v!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig: lr must be > 0, got {self.lr!r}")
        if not 0.0 <= self.ratio <= 1.0:
            raise ValueError(f"TrainConfig: ratio must be in [0, 1], got {self.ratio!r}")


class TimedCollate:
    """An :class:`AugmentCollate` whose augmentation (``apply``) is timed: ``wall`` and
    ``cpu`` seconds accumulate while it runs in this process (``reset()`` zeroes them)."""

    def __init__(self, collate: AugmentCollate):
        self.collate = collate
        self.wall = self.cpu = 0.0

    def reset(self) -> None:
        self.wall = self.cpu = 0.0

    def set_epoch(self, epoch: int) -> None:
        self.collate.set_epoch(epoch)

    def __call__(self, items) -> Batch:
        batch = self.collate.collate(items)
        w, c = time.perf_counter(), time.process_time()
        out = self.collate.apply(batch.to(self.collate.device))
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c
        return out


@dataclass
class FoldData:
    """A fold's datasets (positions are corpus indices) and what the loss needs.

    Attributes:
        dataset: the corpus dataset (items carry their corpus ``index``).
        train, valid, test: corpus indices.
        n_classes: emotion classes. aux_table: ``(n_classes, 2)`` int64 (activation bin,
        valence bin) per class for corpora without dimensional ratings (EmoDB), or None
        (bins come from the items' ``dims``, or there are no aux targets).
    """

    dataset: object
    train: list[int]
    valid: list[int]
    test: list[int]
    n_classes: int
    labels: list[int]
    aux_table: Tensor | None = None


def aux_targets(batch: Batch, aux_table: Tensor | None) -> tuple[Tensor, Tensor] | None:
    """``(activation_bin, valence_bin)`` of a batch: from the dimensional targets (with the
    policy's relabel deltas) when the batch has ``dims``, else from ``aux_table[label]``; in
    the latter case a relabelled clip gets ``-1`` (its class-level bins no longer hold);
    ``None`` when neither exists."""
    if batch.dims is not None:
        return aux_targets_from_dims(batch.dimensional_targets())
    if aux_table is None or batch.labels is None:
        return None
    table = aux_table.to(batch.labels.device)
    act, val = table[batch.labels, 0].clone(), table[batch.labels, 1].clone()
    if batch.label_action is not None:
        relabelled = torch.tensor([a == "relabel" for a in batch.label_action.action], device=act.device)
        act[relabelled] = -1
        val[relabelled] = -1
    return act, val


@dataclass
class Prediction:
    """Predictions of a loader: ``index`` (corpus), ``label``, ``pred`` (lists of ints) and
    each clip's ``condition`` (:func:`~gpuaug.train.conditions.clip_condition`)."""

    index: list[int] = field(default_factory=list)
    label: list[int] = field(default_factory=list)
    pred: list[int] = field(default_factory=list)
    condition: list[str] = field(default_factory=list)


class FoldTrainer:
    """Train a :class:`CNNGRU` on one fold (module docstring).

    Args:
        data: the fold. model_config: the model. config: optimisation. pipeline: the
        training augmentation (None: none). seed: run seed (model initialisation, data
        order, augmentation draws). device: where features and the model run. ctx: the
        data-parallel context (rank / world).
    """

    def __init__(self, data: FoldData, model_config: CNNGRUConfig, config: TrainConfig, *,
                 pipeline: Pipeline | None, seed: int, device: torch.device, ctx: DistContext = DistContext()):
        self.data, self.model_config, self.config = data, model_config, config
        self.pipeline, self.seed, self.device, self.ctx = pipeline, seed, torch.device(device), ctx
        self.frontend = LogMel(config.sample_rate, n_mels=model_config.n_mels).to(self.device)
        self.normalizer = Normalizer(config.norm)
        self.class_weights = class_weights([data.labels[i] for i in data.train], data.n_classes).to(self.device)
        torch.manual_seed(seed)
        self.model = CNNGRU(model_config).to(self.device)
        self.net = self.model
        if ctx.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(self.model)
        self.optimizer = torch.optim.RMSprop(self.model.parameters(), lr=config.lr)
        collate = AugmentCollate(pipeline, ratio=config.ratio if pipeline is not None else 0.0,
                                 mode=config.ratio_mode, seed=seed, subset_indices=data.train,
                                 max_seconds=config.max_seconds,
                                 **({} if pipeline is not None else {"sample_rate": config.sample_rate}))
        self.train_collate = TimedCollate(collate)
        self.sampler = EpochBatchSampler(len(data.train), config.batch_size, seed=seed, rank=ctx.rank, world=ctx.world)
        # persistent workers: the epoch reaches them through the collate's shared memory, and each
        # keeps its compiled kernels and its corpus cache across epochs
        self.train_loader = DataLoader(Subset(data.dataset, data.train), batch_sampler=self.sampler,
                                       collate_fn=self.train_collate, num_workers=config.num_workers,
                                       persistent_workers=config.num_workers > 0)
        self.history: list[dict] = []

    # ---- data ----------------------------------------------------------------------
    def eval_loader(self, indices: list[int], pipeline: Pipeline | None = None, seed: int = 0) -> DataLoader:
        """A loader over ``indices`` in their order; ``pipeline`` applied to every clip with
        the fixed ``seed`` at epoch 0 (a replayable test condition), or clean."""
        collate = AugmentCollate(pipeline, ratio=1.0, seed=seed, max_seconds=self.config.max_seconds,
                                 **({} if pipeline is not None else {"sample_rate": self.config.sample_rate}))
        return DataLoader(Subset(self.data.dataset, indices), batch_size=self.config.batch_size, shuffle=False,
                          collate_fn=collate, num_workers=self.config.num_workers)

    def features(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Normalised log-mel ``(B, F, n_mels)`` and frame lengths of a batch (on the device)."""
        wave = batch.wave.to(self.device)
        feats, flen = self.frontend(wave, batch.lengths.to(self.device))
        return self.normalizer(feats, flen, batch.speaker), flen

    def fit_normalizer(self) -> None:
        """z-normalisation statistics from the clean training fold (valid frames only)."""
        def stream():
            with torch.no_grad():
                for batch in self.eval_loader(self.data.train):
                    feats, flen = self.frontend(batch.wave.to(self.device), batch.lengths.to(self.device))
                    yield feats, flen, batch.speaker
        self.normalizer.fit(stream())

    # ---- optimisation ----------------------------------------------------------------
    def step(self, batch: Batch, dummy: bool = False) -> tuple[float, int]:
        """One optimisation step on (this rank's share of) a batch; ``(loss, clips)``.

        Clips the policy drops stay in the forward pass with weight 0 in the loss (the same
        as leaving them out: :func:`~gpuaug.train.loss.ser_loss`), so every rank runs a
        forward / backward on every step. ``dummy``: this rank has no clip of the global
        batch (a last batch smaller than the world); it runs the batch it was given with
        every label unknown (weight 0), which keeps the ranks in step and adds nothing.
        """
        targets = aux_targets(batch, self.data.aux_table) if self.model_config.aux_heads else None
        action = None if batch.label_action is None else batch.label_action.to(self.device)
        labels = batch.labels.to(self.device)
        if dummy:
            labels = torch.full_like(labels, -1)
            targets = None if targets is None else tuple(torch.full_like(t, -1) for t in targets)
        if targets is not None:
            targets = tuple(t.to(self.device) for t in targets)
        self.model.train()
        feats, flen = self.features(batch)
        sums = None
        if self.ctx.world > 1:  # normalise by the global batch (module docstring of .distributed)
            sums = {k: global_sum(v, self.ctx)
                    for k, v in weight_sums(labels, action, self.class_weights, targets).items()}
        out = self.net(feats, flen)
        loss, _ = ser_loss(out, labels, action, self.class_weights, targets, self.config.aux_weight, weight_sums=sums)
        self.optimizer.zero_grad(set_to_none=True)
        (loss * self.ctx.world).backward()  # DDP averages the ranks' gradients: the sum is the global one
        self.optimizer.step()
        kept = len(batch) if action is None else int(action.keep.sum())
        return float(loss.detach()) * self.ctx.world, 0 if dummy else kept

    @torch.no_grad()
    def eval_loss(self, loader: DataLoader) -> float:
        """Mean weighted loss over a clean loader (each batch weighted by its normaliser)."""
        self.model.eval()
        total = weight = 0.0
        for batch in loader:
            feats, flen = self.features(batch)
            targets = aux_targets(batch, self.data.aux_table) if self.model_config.aux_heads else None
            out = self.model(feats, flen)
            loss, parts = ser_loss(out, batch.labels.to(self.device), None, self.class_weights, targets,
                                   self.config.aux_weight)
            w = float(parts["emotion_weight"])
            total += float(loss) * w
            weight += w
        return total / max(weight, 1e-12)

    def train(self, progress=None) -> list[dict]:
        """Fit the normaliser, train with early stopping, restore the best epoch; returns the
        per-epoch history (``epoch``, ``train_loss``, ``valid_loss``, ``clips``, timings)."""
        self.fit_normalizer()
        valid_loader = self.eval_loader(self.data.valid)
        best, best_state, bad = math.inf, None, 0
        for epoch in range(self.config.epochs):
            self.sampler.set_epoch(epoch)
            self.train_collate.set_epoch(epoch)
            self.train_collate.reset()
            w0, c0 = time.perf_counter(), time.process_time()
            losses, clips, step_wall, step_cpu = [], 0, 0.0, 0.0
            dummies = self.sampler.dummy_steps()
            for batch, dummy in zip(self.train_loader, dummies):
                sw, sc = time.perf_counter(), time.process_time()
                loss, n = self.step(batch, dummy)
                step_wall += time.perf_counter() - sw
                step_cpu += time.process_time() - sc
                losses.append(loss)
                clips += n
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            valid = self.eval_loss(valid_loader)
            row = {"epoch": epoch, "train_loss": sum(losses) / max(len(losses), 1), "valid_loss": valid,
                   "clips": clips, "wall_s": wall, "cpu_s": cpu, "step_wall_s": step_wall, "step_cpu_s": step_cpu,
                   "augment_wall_s": self.train_collate.wall, "augment_cpu_s": self.train_collate.cpu}
            self.history.append(row)
            if progress is not None:
                progress(row)
            if valid < best - 1e-7:
                best, bad = valid, 0
                best_state = copy.deepcopy(self.model.state_dict())
            else:
                bad += 1
                if bad >= self.config.patience:
                    break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return self.history

    @property
    def best_epoch(self) -> int:
        """The epoch whose weights were restored (lowest validation loss)."""
        return min(self.history, key=lambda r: r["valid_loss"])["epoch"] if self.history else -1

    # ---- state -----------------------------------------------------------------------
    def state_tensors(self) -> dict[str, Tensor]:
        """Model weights (``model.*``) and normaliser statistics (``norm.*``): tensors only."""
        state = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        state.update({f"norm.{k}": v for k, v in self.normalizer.state_dict().items()})
        return state

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        self.normalizer.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("norm.")})


@torch.no_grad()
def predict(trainer: FoldTrainer, loader: DataLoader) -> Prediction:
    """Arg-max emotion predictions of ``trainer``'s model over ``loader``."""
    from .conditions import clip_condition

    trainer.model.eval()
    out = Prediction()
    for batch in loader:
        feats, flen = trainer.features(batch)
        logits = trainer.model(feats, flen)["emotion"]
        out.index += batch.index.tolist()
        out.label += batch.labels.tolist()
        out.pred += logits.argmax(dim=1).cpu().tolist()
        out.condition += [clip_condition(r) for r in batch.record] if batch.record else ["clean"] * len(batch)
    return out
