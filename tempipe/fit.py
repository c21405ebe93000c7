"""Train the shape CNN from scratch on a simulated training set (:mod:`tempipe.training`).

Loss per crop: mean squared error of ``log p`` and ``l_ratio`` (``l_ratio`` weighted so both
have comparable spread), cross-entropy of the ``d`` class, and a Gaussian negative
log-likelihood that trains the spread heads on the detached means (so predicting a spread
never trades off against accuracy). Augmentation: the eight flips and quarter turns of
each crop (eq. 1 shapes keep their parameters under rotation and reflection). AdamW with a
one-cycle learning rate; early stopping on the validation loss; fixed seeds.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from tempipe.shape_model import D_VALUES, ShapeModel, ShapeNet, ShapeNetConfig, decode_outputs
from tempipe.training import TRAINING_DISTRIBUTIONS, distributions_card, make_training_set

#: Weight of the l_ratio error relative to log p (their spreads differ ~2x).
L_RATIO_WEIGHT = 3.0


@dataclass(frozen=True)
class TrainConfig:
    """Data and optimisation settings of :func:`train_shape_model`."""

    n_samples: int = 65_000
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)  # train / validation / test
    input_size: int = 48
    batch_size: int = 128
    max_epochs: int = 24
    learning_rate: float = 4e-3
    weight_decay: float = 1e-4
    patience: int = 4  # epochs without validation improvement before stopping
    seed: int = 0
    n_jobs: int = 2


def targets(params: pd.DataFrame, d_values=D_VALUES) -> tuple[np.ndarray, np.ndarray]:
    """Regression targets ``(log p, l_ratio)`` and ``d`` class indices."""
    reg = np.stack([np.log(params["p"]), params["l_ratio"]], axis=1).astype(np.float32)
    d_index = np.searchsorted(np.asarray(d_values), params["d"].to_numpy()).astype(np.int64)
    return reg, d_index


def loss_terms(out: torch.Tensor, reg: torch.Tensor, d_index: torch.Tensor) -> torch.Tensor:
    """Total loss of a batch (see module docstring)."""
    mu, logvar, logits = out[:, :2], out[:, 2:4].clamp(-12.0, 6.0), out[:, 4:]
    weight = torch.tensor([1.0, L_RATIO_WEIGHT])
    mse = ((mu - reg) ** 2 * weight).mean()
    nll = 0.5 * (logvar + (mu.detach() - reg) ** 2 * torch.exp(-logvar)).mean()
    return mse + F.cross_entropy(logits, d_index) + 0.1 * nll


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


def evaluate(model: ShapeModel, crops: np.ndarray, params: pd.DataFrame) -> dict:
    """Test metrics of ``model`` on crops with known parameters."""
    pred = model.predict(crops)
    true_d = params["d"].to_numpy()
    metrics = {
        "n": int(len(params)),
        "rmse_log_p": float(np.sqrt(np.mean((np.log(pred["p"]) - np.log(params["p"])) ** 2))),
        "rmse_p": float(np.sqrt(np.mean((pred["p"] - params["p"]) ** 2))),
        "rmse_d": float(np.sqrt(np.mean((pred["d"] - true_d) ** 2))),
        "rmse_l_ratio": float(np.sqrt(np.mean((pred["l_ratio"] - params["l_ratio"]) ** 2))),
        "round_d_accuracy": float(np.mean(pred["d_class"] == true_d)),
    }
    metrics["rmse_log_p_by_d"] = {
        str(int(d)): float(np.sqrt(np.mean((np.log(pred["p"][true_d == d])
                                            - np.log(params["p"][true_d == d])) ** 2)))
        for d in np.unique(true_d)}
    return metrics


def _run_epoch(net, opt, sched, crops, reg, d_index, config, generator) -> float:
    net.train()
    total, count = 0.0, 0
    for idx in _batches(len(crops), config.batch_size, generator):
        x = _augment(torch.from_numpy(crops[idx.numpy()])[:, None], generator)
        out = net(x.contiguous(memory_format=torch.channels_last))
        loss = loss_terms(out, torch.from_numpy(reg[idx.numpy()]), torch.from_numpy(d_index[idx.numpy()]))
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
        out = torch.cat(outs)
        loss = float(loss_terms(out, torch.from_numpy(reg), torch.from_numpy(d_index)))
    table = decode_outputs(out.numpy())
    rmse = {"log_p": float(np.sqrt(np.mean((np.log(table["p"]) - reg[:, 0]) ** 2))),
            "l_ratio": float(np.sqrt(np.mean((table["l_ratio"] - reg[:, 1]) ** 2))),
            "d": float(np.sqrt(np.mean((table["d"] - np.asarray(D_VALUES)[d_index]) ** 2)))}
    return loss, rmse


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
        ``(crops, params, predictions)`` of the test split, for diagnostics.
    """
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    crops, params = make_training_set(
        config.n_samples, config.seed, size=config.input_size, n_jobs=config.n_jobs,
        progress=(lambda d, t: progress("data", d, t, {})) if progress else None)
    n_train = int(config.split[0] * len(crops))
    n_val = int(config.split[1] * len(crops))
    reg, d_index = targets(params)
    parts = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val),
             "test": slice(n_train + n_val, None)}
    net = ShapeNet(ShapeNetConfig(input_size=config.input_size)).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps = config.max_epochs * -(-n_train // config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.learning_rate, total_steps=steps)
    generator = torch.Generator().manual_seed(config.seed)
    history, best, best_state, stale = [], np.inf, None, 0
    tr = parts["train"]
    for epoch in range(1, config.max_epochs + 1):
        train_loss = _run_epoch(net, opt, sched, crops[tr], reg[tr], d_index[tr], config, generator)
        _, train_rmse = _validation(net, crops[:min(n_train, 5000)], reg[:min(n_train, 5000)],
                                    d_index[:min(n_train, 5000)])
        val_loss, val_rmse = _validation(net, crops[parts["val"]], reg[parts["val"]],
                                         d_index[parts["val"]])
        history.append({"epoch": epoch, "samples_seen": epoch * n_train, "train_loss": train_loss,
                        "val_loss": val_loss, "train_rmse": train_rmse, "val_rmse": val_rmse,
                        "seconds": time.perf_counter() - start})
        if progress:
            progress("epoch", epoch, config.max_epochs, history[-1])
        if val_loss < best - 1e-4:
            best, stale = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                break
    net.load_state_dict(best_state)
    model = ShapeModel(net=net.eval())
    te = parts["test"]
    test_metrics = evaluate(model, crops[te], params.iloc[te].reset_index(drop=True))
    model.card = {
        "name": "tempipe shape CNN", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_time_s": round(time.perf_counter() - start, 1),
        "epochs_run": len(history), "best_epoch": int(np.argmin([h["val_loss"] for h in history]) + 1),
        "sizes": {"train": n_train, "validation": n_val, "test": len(crops) - n_train - n_val},
        "config": asdict(config), "distributions": distributions_card(TRAINING_DISTRIBUTIONS),
        "input": "crop_particles(image, labels, size=input_size, margin=CROP_MARGIN): the particle's "
                 "own mask times its normalised intensity, longer side spanning a fixed fraction",
        "outputs": "p = exp(mean log p), l_ratio = mean l_ratio, d = expected value of a "
                   "6-way class distribution over d = 1..6; *_std per-particle spreads",
        "test": test_metrics, "history": history,
        "number_of_parameters": int(sum(p.numel() for p in net.parameters()))}
    return model, (crops[te], params.iloc[te].reset_index(drop=True))
