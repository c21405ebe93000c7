"""Train the shape CNN from scratch on a simulated training set (:mod:`tempipe.training`).

Loss per crop and ensemble member: mean squared error of ``log p`` and ``l_ratio``
(``l_ratio`` weighted so both have comparable spread), cross-entropy of the ``d`` class,
and a Gaussian negative log-likelihood that trains the spread heads on the detached means
(so predicting a spread never trades off against accuracy); the members' losses are summed
(each member learns on its own, from its own random initialisation). Augmentation: the
eight flips and quarter turns of each crop (eq. 1 shapes keep their parameters under
rotation and reflection). AdamW with a one-cycle learning rate; early stopping on the
validation loss; fixed seeds.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from tempipe.shape_model import (D_VALUES, ShapeModel, ShapeNet, ShapeNetConfig, decode_outputs,
                                  native_bf16)
from tempipe.training import (TRAINING_DISTRIBUTIONS, canonical_parameters, distributions_card,
                              make_training_set)

#: Weight of the l_ratio error relative to log p (their spreads differ ~2x).
L_RATIO_WEIGHT = 3.0
#: Share of the one-cycle schedule spent raising the learning rate.
_PCT_START = 0.3


@dataclass(frozen=True)
class TrainConfig:
    """Data, architecture and optimisation settings of :func:`train_shape_model`."""

    n_samples: int = 65_000
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)  # train / validation / test
    architecture: ShapeNetConfig = field(default_factory=ShapeNetConfig)
    batch_size: int = 128
    max_epochs: int = 24
    learning_rate: float = 4e-3
    weight_decay: float = 1e-4
    patience: int = 4  # epochs without validation improvement (after the LR peak) to stop
    seed: int = 0
    n_jobs: int = 2
    bf16: bool | None = None  # bfloat16 autocast for the conv layers; None = when the CPU has it

    @property
    def input_size(self) -> int:
        return self.architecture.input_size


def targets(params: pd.DataFrame, d_values=D_VALUES) -> tuple[np.ndarray, np.ndarray]:
    """Regression targets ``(log p, l_ratio)`` of the canonical parameters, ``d`` class indices."""
    params = canonical_parameters(params)
    reg = np.stack([np.log(params["p"]), params["l_ratio"]], axis=1).astype(np.float32)
    d_index = np.searchsorted(np.asarray(d_values), params["d"].to_numpy()).astype(np.int64)
    return reg, d_index


def loss_terms(out: torch.Tensor, reg: torch.Tensor, d_index: torch.Tensor) -> torch.Tensor:
    """Total loss of a batch, summed over ensemble members (see module docstring).

    ``out`` is ``(members, N, K)`` (or one member's ``(N, K)``).
    """
    if out.dim() == 2:
        out = out[None]
    mu, logvar, logits = out[..., :2], out[..., 2:4].clamp(-12.0, 6.0), out[..., 4:]
    weight = torch.tensor([1.0, L_RATIO_WEIGHT])
    mse = ((mu - reg) ** 2 * weight).mean(dim=(1, 2))  # per member
    nll = 0.5 * (logvar + (mu.detach() - reg) ** 2 * torch.exp(-logvar)).mean(dim=(1, 2))
    ce = torch.stack([F.cross_entropy(member, d_index) for member in logits])
    return (mse + ce + 0.1 * nll).sum()


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    k = int(torch.randint(0, 4, (1,), generator=generator))
    x = torch.rot90(x, k, dims=(2, 3))
    if int(torch.randint(0, 2, (1,), generator=generator)):
        x = torch.flip(x, dims=(3,))
    return x


def _batches(n: int, batch: int, generator: torch.Generator | None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch):
        yield order[start:start + batch]


def _rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))


def evaluate(model: ShapeModel, crops: np.ndarray, params: pd.DataFrame) -> dict:
    """Test metrics of ``model`` on crops with known (raw) parameters.

    ``log p`` errors are also given against the canonical ``p`` the network learns
    (``*_canonical``: near-square twins folded, see :func:`canonical_parameters`).
    """
    pred = model.predict(crops)
    canonical_log_p = np.log(canonical_parameters(params)["p"].to_numpy())
    true_d = params["d"].to_numpy()
    log_p, true_log_p = np.log(pred["p"].to_numpy()), np.log(params["p"].to_numpy())
    l_ratio, true_l = pred["l_ratio"].to_numpy(), params["l_ratio"].to_numpy()
    metrics = {
        "n": int(len(params)),
        "rmse_log_p": _rmse(log_p, true_log_p),
        "rmse_p": _rmse(pred["p"], params["p"]),
        "rmse_d": _rmse(pred["d"], true_d),
        "rmse_l_ratio": _rmse(l_ratio, true_l),
        "round_d_accuracy": float(np.mean(pred["d_class"] == true_d)),
    }
    metrics["rmse_log_p_canonical"] = _rmse(log_p, canonical_log_p)
    by_d = {str(int(d)): true_d == d for d in np.unique(true_d)}
    metrics["rmse_log_p_by_d"] = {k: _rmse(log_p[m], true_log_p[m]) for k, m in by_d.items()}
    metrics["rmse_l_ratio_by_d"] = {k: _rmse(l_ratio[m], true_l[m]) for k, m in by_d.items()}
    return metrics


def _run_epoch(net, opt, sched, crops, reg, d_index, config, generator, bf16) -> float:
    net.train()
    total, count = 0.0, 0
    for idx in _batches(len(crops), config.batch_size, generator):
        rows = idx.numpy()
        x = _augment(torch.from_numpy(crops[rows])[:, None], generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x.contiguous(memory_format=torch.channels_last))
        loss = loss_terms(out, torch.from_numpy(reg[rows]), torch.from_numpy(d_index[rows]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total, count = total + float(loss.detach()) * len(idx), count + len(idx)
    return total / count


def _validation(net, crops, reg, d_index) -> tuple[float, dict]:
    net.eval()
    outs = []
    with torch.inference_mode():
        for idx in _batches(len(crops), 512, None):
            x = torch.from_numpy(crops[idx.numpy()])[:, None]
            outs.append(net(x.contiguous(memory_format=torch.channels_last)))
        out = torch.cat(outs, dim=1)
        loss = float(loss_terms(out, torch.from_numpy(reg), torch.from_numpy(d_index)))
    table = decode_outputs(out.numpy(), net.config.d_values)
    rmse = {"log_p": _rmse(np.log(table["p"]), reg[:, 0]),
            "l_ratio": _rmse(table["l_ratio"], reg[:, 1]),
            "d": _rmse(table["d"], np.asarray(net.config.d_values)[d_index])}
    return loss / net.config.members, rmse


def _train_loop(net, crops, reg, d_index, n_train, n_val, config, progress, start):
    """Epochs with early stopping; returns the history and leaves the best weights in ``net``."""
    tr, va = slice(0, n_train), slice(n_train, n_train + n_val)
    opt = torch.optim.AdamW(net.parameters(), lr=config.learning_rate,
                            weight_decay=config.weight_decay)
    steps = config.max_epochs * -(-n_train // config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.learning_rate, total_steps=steps,
                                                pct_start=_PCT_START)
    generator = torch.Generator().manual_seed(config.seed)
    bf16 = native_bf16() if config.bf16 is None else bool(config.bf16)
    history, best, best_state, stale = [], np.inf, None, 0
    sub = slice(0, min(n_train, 3000))  # training-set RMSE on a fixed subset
    for epoch in range(1, config.max_epochs + 1):
        epoch_start = time.perf_counter()
        train_loss = _run_epoch(net, opt, sched, crops[tr], reg[tr], d_index[tr], config,
                                generator, bf16)
        epoch_s = time.perf_counter() - epoch_start
        _, train_rmse = _validation(net, crops[sub], reg[sub], d_index[sub])
        val_loss, val_rmse = _validation(net, crops[va], reg[va], d_index[va])
        history.append({"epoch": epoch, "samples_seen": epoch * n_train, "train_loss": train_loss,
                        "val_loss": val_loss, "train_rmse": train_rmse, "val_rmse": val_rmse,
                        "epoch_seconds": round(epoch_s, 1), "bf16": bf16,
                        "seconds": time.perf_counter() - start})
        if progress:
            progress("epoch", epoch, config.max_epochs, history[-1])
        if val_loss < best - 1e-4:
            best, stale = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        elif epoch > _PCT_START * config.max_epochs:  # not while the learning rate still rises
            stale += 1
            if stale >= config.patience:
                break
    net.load_state_dict(best_state)
    return history


def fit_shape_model(crops: np.ndarray, params: pd.DataFrame, config: TrainConfig = TrainConfig(),
                    progress=None, start: float | None = None):
    """Train, early-stop and test a :class:`ShapeModel` on given crops (see train_shape_model).

    ``crops`` and ``params`` (raw parameters) are split in order into train / validation /
    test by ``config.split``; ``start`` is the :func:`time.perf_counter` the training time
    counts from.
    """
    start = time.perf_counter() if start is None else start
    torch.manual_seed(config.seed)
    n_train = int(config.split[0] * len(crops))
    n_val = int(config.split[1] * len(crops))
    reg, d_index = targets(params, config.architecture.d_values)
    net = ShapeNet(config.architecture).to(memory_format=torch.channels_last)
    history = _train_loop(net, crops, reg, d_index, n_train, n_val, config, progress, start)
    model = ShapeModel(net=net.eval())
    te = slice(n_train + n_val, None)
    test_params = params.iloc[te].reset_index(drop=True)
    model.card = {
        "name": "tempipe shape CNN",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_time_s": round(time.perf_counter() - start, 1),
        "epochs_run": len(history),
        "best_epoch": int(np.argmin([h["val_loss"] for h in history]) + 1),
        "sizes": {"train": n_train, "validation": n_val, "test": len(crops) - n_train - n_val},
        "config": asdict(config), "bf16_training": history[0]["bf16"],
        "distributions": distributions_card(TRAINING_DISTRIBUTIONS),
        "input": "crop_particles(image, labels, size=input_size, margin=CROP_MARGIN, "
                 "context=context_px): the particle's own mask times its normalised intensity, "
                 "plus the normalised background within context_px image pixels of the mask, "
                 "in a square window (aspect ratio kept), longer bounding-box side spanning a "
                 "fixed fraction",
        "outputs": "ensemble means: p = exp(mean log p), l_ratio = mean l_ratio, d = expected "
                   "value of the mean 6-way class distribution over d = 1..6; *_std "
                   "per-particle spreads (members' own variance + variance between members)",
        "test": evaluate(model, crops[te], test_params), "history": history,
        "number_of_parameters": int(sum(p.numel() for p in net.parameters()))}
    return model, (crops[te], test_params)


def train_shape_model(config: TrainConfig = TrainConfig(), progress=None):
    """Make the training set, train, early-stop and test a :class:`ShapeModel`.

    Parameters
    ----------
    config : TrainConfig
    progress : callable ``(stage, done, total, info)``, optional
        Called per training-set mosaic (stage ``"data"``) and per epoch (``"epoch"``).

    Returns
    -------
    model : ShapeModel
        With ``model.card`` filled (distributions, sizes, epochs, history, test metrics).
    test : tuple
        ``(crops, params)`` of the test split, for diagnostics.
    """
    start = time.perf_counter()
    crops, params = make_training_set(
        config.n_samples, config.seed, size=config.input_size,
        context=config.architecture.context_px, n_jobs=config.n_jobs,
        progress=(lambda d, t: progress("data", d, t, {})) if progress else None)
    data_s = time.perf_counter() - start
    model, test = fit_shape_model(crops, params, config, progress, start)
    model.card["data_seconds"] = round(data_s, 1)
    return model, test
