"""The shape CNN: crops in, (p, d, l_ratio) of eq. 1 out, with a per-particle spread.

The network is trained only on simulated particles (:mod:`tempipe.training`) that went
through the same :func:`tempipe.crops.crop_particles` path as real ones. Targets are
chosen to make the regression well posed:

- ``log p`` (curvature matters on a log scale: p = 0.5 and 1 differ far more than 15 and 20),
  regressed with a Gaussian negative log-likelihood, so the network also predicts its own
  spread (``p_std`` by the delta method);
- ``d`` (number of major axes, an integer 1..6 in the training set) as a six-way
  classification: ``d`` is the expected value of that distribution, ``d_class`` its most
  likely value, ``d_std`` its standard deviation;
- ``l_ratio`` with a Gaussian negative log-likelihood like ``log p`` (directly, not its log:
  the error that matters is in l_ratio's own units).

The weights and their card ship in ``models/``: ``shape_cnn.pt`` (a plain state dict,
loaded with ``weights_only=True``) and ``shape_cnn.json`` (configuration, training
distributions, test metrics).
"""

from __future__ import annotations

import json
from functools import lru_cache
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from tempipe.errors import ModelError, ParameterError

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_WEIGHTS = MODELS_DIR / "shape_cnn.pt"
D_VALUES = (1, 2, 3, 4, 5, 6)
#: Crops per forward pass: small batches keep activations in cache (faster on CPU).
BATCH = 128


@dataclass(frozen=True)
class ShapeNetConfig:
    """Architecture of :class:`ShapeNet`; saved beside the weights in the model card."""

    input_size: int = 48
    channels: tuple[int, ...] = (16, 32, 64, 64)
    hidden: int = 64
    d_values: tuple[int, ...] = D_VALUES


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ShapeNet(nn.Module):
    """Conv blocks (3x3, batch norm, ReLU, 2x2 max-pool between) and three heads.

    Output per crop: ``[mu_log_p, mu_l, logvar_log_p, logvar_l, d logits...]``.
    """

    def __init__(self, config: ShapeNetConfig = ShapeNetConfig()):
        super().__init__()
        layers, c_in = [], 1
        for i, c_out in enumerate(config.channels):
            layers.append(_block(c_in, c_out))
            if i < len(config.channels) - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c_in, config.hidden), nn.ReLU(inplace=True),
                                  nn.Linear(config.hidden, 4 + len(config.d_values)))
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass
class ShapeModel:
    """A trained :class:`ShapeNet` with its card; :meth:`predict` maps crops to parameters."""

    net: ShapeNet
    card: dict = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        return self.net.config.input_size

    @classmethod
    def load(cls, path: str | Path | None = None) -> "ShapeModel":
        """Load weights (``.pt``) and their card (same name, ``.json``); None = shipped model.

        Raises
        ------
        ModelError
            Missing, foreign or incompatible file.
        """
        path = Path(path) if path is not None else DEFAULT_WEIGHTS
        card_path = path.with_suffix(".json")
        if not path.is_file() or not card_path.is_file():
            raise ModelError(f"Shape model {path} or its card {card_path.name} is missing; "
                             "train one with `tempipe train` or reinstall tempipe.")
        try:
            card = json.loads(card_path.read_text())
            arch = card["architecture"]
            config = ShapeNetConfig(input_size=int(arch["input_size"]),
                                    channels=tuple(arch["channels"]), hidden=int(arch["hidden"]),
                                    d_values=tuple(arch["d_values"]))
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise ModelError(f"{path.name} is not a tempipe shape model: {exc}") from exc
        net = ShapeNet(config)
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise ModelError(f"{path.name} does not match its card's architecture: {exc}") from exc
        net.eval().to(memory_format=torch.channels_last)
        return cls(net=net, card=card)

    def save(self, path: str | Path, card: dict | None = None) -> Path:
        """Write the weights and the card (architecture added) beside them."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        card = dict(card if card is not None else self.card)
        card["architecture"] = asdict(self.net.config)
        torch.save(self.net.state_dict(), path)
        path.with_suffix(".json").write_text(json.dumps(card, indent=2))
        self.card = card
        return path

    def raw_outputs(self, crops: np.ndarray) -> np.ndarray:
        """Network outputs for ``(N, S, S)`` crops, batched, in inference mode."""
        crops = _check_crops(crops, self.input_size)
        self.net.eval()
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(crops), BATCH):
                x = torch.from_numpy(crops[start:start + BATCH])[:, None]
                outputs.append(self.net(x.contiguous(memory_format=torch.channels_last)).numpy())
        if not outputs:
            return np.zeros((0, 4 + len(self.net.config.d_values)), dtype=np.float32)
        return np.concatenate(outputs)

    def predict(self, crops: np.ndarray) -> pd.DataFrame:
        """Shape parameters for ``(N, S, S)`` crops from :func:`tempipe.crops.crop_particles`.

        Returns
        -------
        DataFrame
            Columns ``p``, ``d``, ``l_ratio``, ``d_class``, ``p_std``, ``d_std``, ``l_ratio_std``.
        """
        return decode_outputs(self.raw_outputs(crops), self.net.config.d_values)


@lru_cache(maxsize=1)
def shipped_model() -> ShapeModel:
    """The model shipped in ``models/``, loaded once per process."""
    return ShapeModel.load(None)


def decode_outputs(out: np.ndarray, d_values=D_VALUES) -> pd.DataFrame:
    """Turn raw network outputs into the parameter table (see :class:`ShapeNet`)."""
    out = np.asarray(out, dtype=np.float64)
    d_values = np.asarray(d_values, dtype=np.float64)
    logits = out[:, 4:]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    d_mean = probs @ d_values
    d_std = np.sqrt(np.maximum(probs @ d_values ** 2 - d_mean ** 2, 0.0))
    p, l_ratio = np.exp(out[:, 0]), np.maximum(out[:, 1], 1.0)  # l_ratio >= 1 by definition
    sd_log_p, sd_l = np.exp(0.5 * out[:, 2]), np.exp(0.5 * out[:, 3])
    return pd.DataFrame({"p": p, "d": d_mean, "l_ratio": l_ratio,
                         "d_class": d_values[np.argmax(probs, axis=1)].astype(int),
                         "p_std": p * sd_log_p, "d_std": d_std, "l_ratio_std": sd_l})


def _check_crops(crops, size: int) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.ndim != 3 or crops.shape[1:] != (size, size):
        raise ParameterError(f"crops must have shape (N, {size}, {size}) as made by "
                             f"crop_particles(..., size={size}); got {crops.shape}.")
    if not np.issubdtype(crops.dtype, np.floating) or not np.isfinite(crops).all():
        raise ParameterError("crops must be finite floating-point arrays from crop_particles.")
    return np.ascontiguousarray(crops, dtype=np.float32)
