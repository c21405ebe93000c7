"""The shape CNN: crops in, (p, d, l_ratio) of eq. 1 out, with a per-particle spread.

The network is trained only on simulated particles (:mod:`tempipe.training`) that went
through the same :func:`tempipe.crops.crop_particles` path as real ones. Targets are
chosen to make the regression well posed:

- ``log p`` (curvature matters on a log scale: p = 0.5 and 1 differ far more than 15 and 20),
  of the canonical parameters (:func:`tempipe.training.canonical_parameters`: a near-square
  shape with ``1 < p < 2`` is the same silhouette as ``p / (p - 1)`` turned, and is read as
  the latter), with a Gaussian negative log-likelihood head, so the network also predicts
  its own spread (``p_std`` by the delta method);
- ``d`` (number of major axes, an integer 1..6 in the training set) as a six-way
  classification: ``d`` is the expected value of that distribution, ``d_class`` its most
  likely value, ``d_std`` its standard deviation;
- ``l_ratio`` with a Gaussian negative log-likelihood like ``log p`` (directly, not its log:
  the error that matters is in l_ratio's own units). For ``d = 1`` it is poorly determined:
  the polar origin is no symmetry centre of the silhouette, so ``l_ratio`` and ``p`` trade off.

A small deep ensemble (``members`` networks trained from different initialisations) gives
the estimate (members' mean) and the epistemic part of the spread (between-member variance,
added to the members' own predicted variance).

The weights and their card ship in ``models/``: ``shape_cnn.pt`` (a plain state dict,
loaded with ``weights_only=True``) and ``shape_cnn.json`` (configuration, training
distributions, test metrics).
"""

from __future__ import annotations

import copy
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
BATCH = 256


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX).

    There the conv layers run ~2x faster in bfloat16 (training, and inference: outputs
    within ~0.01 of float32 in log p and l_ratio); elsewhere everything stays float32.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


@dataclass(frozen=True)
class ShapeNetConfig:
    """Architecture of :class:`ShapeNet`; saved beside the weights in the model card.

    ``channels`` are the conv blocks; every block but the last halves the resolution (a 2x2
    max-pool after it, or for the first block a stride ``stem_stride`` = 2 convolution,
    which is cheaper on a one-channel input). ``members`` independent networks form a
    deep ensemble; their spread is the epistemic part of the per-particle uncertainty.
    """

    input_size: int = 48
    channels: tuple[int, ...] = (16, 32, 64, 96, 128)
    hidden: int = 64
    d_values: tuple[int, ...] = D_VALUES
    stem_stride: int = 2
    members: int = 2
    #: image pixels of background ring kept around each mask in its crop
    #: (:func:`tempipe.crops.crop_particles`'s ``context``); 0 = the mask alone
    context_px: int = 8


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class _Member(nn.Module):
    """One network: conv blocks (3x3, batch norm, ReLU), global average pool, MLP head."""

    def __init__(self, config: ShapeNetConfig):
        super().__init__()
        layers, c_in = [], 1
        for i, c_out in enumerate(config.channels):
            strided = i == 0 and config.stem_stride > 1
            layers.append(_block(c_in, c_out, config.stem_stride if strided else 1))
            if i < len(config.channels) - 1 and not strided:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c_in, config.hidden), nn.ReLU(inplace=True),
                                  nn.Linear(config.hidden, 4 + len(config.d_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        with torch.autocast(x.device.type, enabled=False):  # outputs in float32 always
            return self.head(features.float())


class ShapeNet(nn.Module):
    """``members`` independent :class:`_Member` networks on the same crops.

    Output: ``(members, N, 4 + len(d_values))``, per member and crop
    ``[mu_log_p, mu_l, logvar_log_p, logvar_l, d logits...]``.
    """

    def __init__(self, config: ShapeNetConfig = ShapeNetConfig()):
        super().__init__()
        self.members = nn.ModuleList(_Member(config) for _ in range(config.members))
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members])

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        """Also accepts the single-network state dicts of the first shipped model."""
        if any(k.startswith(("features.", "head.")) for k in state):
            state = {f"members.0.{k}": v for k, v in state.items()}
        return super().load_state_dict(state, strict=strict, assign=assign)

    def fused(self) -> "ShapeNet":
        """An inference copy with batch norm folded into the convolutions (same outputs)."""
        net = copy.deepcopy(self).eval()
        for member in net.members:
            for block in member.features:
                if isinstance(block, nn.Sequential):
                    torch.ao.quantization.fuse_modules(block, [["0", "1", "2"]], inplace=True)
        return net


@dataclass
class ShapeModel:
    """A trained :class:`ShapeNet` with its card; :meth:`predict` maps crops to parameters."""

    net: ShapeNet
    card: dict = field(default_factory=dict)
    #: bfloat16 conv layers at inference; None = where the CPU has them (:func:`native_bf16`)
    bf16: bool | None = None
    _fused: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def input_size(self) -> int:
        return self.net.config.input_size

    @property
    def context_px(self) -> int:
        """Background ring (image px) its crops keep: ``crop_particles(..., context=)``."""
        return self.net.config.context_px

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
                                    d_values=tuple(arch["d_values"]),
                                    stem_stride=int(arch.get("stem_stride", 1)),
                                    members=int(arch.get("members", 1)),
                                    context_px=int(arch.get("context_px", 0)))
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
        """Network outputs ``(members, N, K)`` for ``(N, S, S)`` crops, batched, inference mode."""
        crops = _check_crops(crops, self.input_size)
        self.net.eval()
        if not len(crops):
            return np.zeros((self.net.config.members, 0, 4 + len(self.net.config.d_values)),
                            dtype=np.float32)
        net = self._inference_net()
        bf16 = native_bf16() if self.bf16 is None else bool(self.bf16)
        outputs = []
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for start in range(0, len(crops), BATCH):
                x = torch.from_numpy(crops[start:start + BATCH])[:, None]
                outputs.append(net(x.contiguous(memory_format=torch.channels_last)).numpy())
        return np.concatenate(outputs, axis=1)

    def _inference_net(self) -> ShapeNet:
        """``net`` with batch norm folded (~20 % faster, same outputs), rebuilt when it changes."""
        tensors = self.net.state_dict(keep_vars=True).values()
        token = (id(self.net), tuple(t._version for t in tensors))  # in-place edits bump it
        if self._fused is None or self._fused[0] != token:
            self._fused = (token, self.net.fused())
        return self._fused[1]

    def predict(self, crops: np.ndarray) -> pd.DataFrame:
        """Shape parameters for ``(N, S, S)`` crops from :func:`tempipe.crops.crop_particles`.

        Returns
        -------
        DataFrame
            Columns ``p``, ``d``, ``l_ratio``, ``d_class``, ``p_std``, ``d_std``, ``l_ratio_std``
            (see :func:`decode_outputs`).
        """
        return decode_outputs(self.raw_outputs(crops), self.net.config.d_values)


@lru_cache(maxsize=1)
def shipped_model() -> ShapeModel:
    """The model shipped in ``models/``, loaded once per process."""
    return ShapeModel.load(None)


def decode_outputs(out: np.ndarray, d_values=D_VALUES) -> pd.DataFrame:
    """Turn raw network outputs (``(members, N, K)`` or one member's ``(N, K)``) into the table.

    The ensemble's estimate is the members' mean (``log p``, ``l_ratio``) and mean class
    distribution (``d``). Spreads add the members' own predicted variance (aleatoric: what
    the crop cannot tell) and the variance between members (epistemic: what the training
    did not pin down): ``p_std`` by the delta method from ``log p``; ``d_std`` is the
    standard deviation of the mean class distribution.
    """
    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 2:
        out = out[None]
    d_values = np.asarray(d_values, dtype=np.float64)
    logits = out[:, :, 4:]
    probs = np.exp(logits - logits.max(axis=2, keepdims=True))
    probs = (probs / probs.sum(axis=2, keepdims=True)).mean(axis=0)
    d_mean = probs @ d_values
    d_std = np.sqrt(np.maximum(probs @ d_values ** 2 - d_mean ** 2, 0.0))
    mu, var = out[:, :, :2], np.exp(out[:, :, 2:4])
    mean = mu.mean(axis=0)
    sd = np.sqrt(var.mean(axis=0) + mu.var(axis=0))
    p, l_ratio = np.exp(mean[:, 0]), np.maximum(mean[:, 1], 1.0)  # l_ratio >= 1 by definition
    return pd.DataFrame({"p": p, "d": d_mean, "l_ratio": l_ratio,
                         "d_class": d_values[np.argmax(probs, axis=1)].astype(int),
                         "p_std": p * sd[:, 0], "d_std": d_std, "l_ratio_std": sd[:, 1]})


def _check_crops(crops, size: int) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.ndim != 3 or crops.shape[1:] != (size, size):
        raise ParameterError(f"crops must have shape (N, {size}, {size}) as made by "
                             f"crop_particles(..., size={size}); got {crops.shape}.")
    if not np.issubdtype(crops.dtype, np.floating) or not np.isfinite(crops).all():
        raise ParameterError("crops must be finite floating-point arrays from crop_particles.")
    return np.ascontiguousarray(crops, dtype=np.float32)
