"""PXRD CNN-Transformer for the seven crystal systems (main text Fig. 4d, SI Fig. S19).

A powder pattern on the fixed 2θ grid of :mod:`specfusion_lib.spectra.pxrd` (10–80° at 0.02°,
3501 points) is classified into the seven crystal systems of
:data:`specfusion_lib.data.structure_labels.CRYSTAL_SYSTEMS`. The network

1. optionally averages neighbouring points (``downsample``; 2 → 0.04° steps, 1751 points: the
   default peak, Voigt FWHM ≈ 0.13°, still spans about three points);
2. reads the pattern with a **1-D CNN front end** (:class:`PatternCNN`): convolution blocks
   ``Conv1d → BatchNorm1d → GELU → MaxPool1d(2)``, the first convolution with stride 2, so each
   block halves the length. The convolutions see peak shapes and close peak pairs (the
   splittings that separate low-symmetry systems); the pooling turns the pattern into a short
   sequence of *pattern tokens*, each covering a fixed 2θ interval;
3. projects the tokens to the model width, adds a sinusoidal encoding of the token position
   (= 2θ, since absolute peak positions carry the lattice metric), and runs a pre-norm
   **Transformer encoder** over them, so that reflections far apart in 2θ (e.g. the
   families of one lattice plane) can be related;
4. pools the tokens by their mean, applies a LayerNorm and a two-layer head → 7 logits.

:class:`PXRDEncoder` is steps 1–4 without the head (the PXRD embedding); the fused XANES+PXRD
model of SI Fig. S21 (:class:`FusedCrystalSystemNet`) concatenates it with SpecFusionNet's
pooled compound embedding (:class:`~specfusion_lib.models.specfusionnet.SpecFusionEncoder`).

Default sizes (:data:`PXRD_DEFAULTS`, about 86 k parameters, chosen so that the quick profile
trains on two CPU cores in about a minute): downsample 2, four convolution blocks 1 → 8 → 16 →
32 → 64 channels with kernels 9, 7, 5, 3, width 64, 2 Transformer layers with 4 heads and
feed-forward 128, dropout 0.1. On the default grid: 3501 points → 1750 (downsample) → 437 →
218 → 109 → 54 tokens of about 1.3° each (each token's 64 channels describe the peaks inside
its interval; the convolutions before the pooling resolve features of 0.04–0.3°).

Shapes used throughout: ``B`` patterns, ``L`` points per pattern (3501), ``T`` tokens, ``H``
model width, ``C`` classes (7).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from specfusion_lib.models.specfusionnet import (
    SpecFusionConfig,
    SpecFusionEncoder,
    count_parameters,
)

__all__ = [
    "PXRD_DEFAULTS",
    "FusedCrystalSystemNet",
    "PXRDCrystalSystemNet",
    "PXRDEncoder",
    "PatternCNN",
    "architecture_table",
    "sinusoidal_encoding",
]

#: Default hyper-parameters of :class:`PXRDEncoder` (one table).
PXRD_DEFAULTS: dict[str, Any] = {
    "n_points": 3501,
    "downsample": 2,
    "conv_channels": (8, 16, 32, 64),
    "kernel_sizes": (9, 7, 5, 3),
    "d_model": 64,
    "n_heads": 4,
    "n_layers": 2,
    "ffn_dim": 128,
    "dropout": 0.1,
    "sqrt_input": False,
}


def sinusoidal_encoding(length: int, dim: int) -> Tensor:
    """Fixed sinusoidal position encoding (Vaswani et al. 2017).

    ``PE[t, 2i] = sin(t / 10000^(2i/dim))``, ``PE[t, 2i+1] = cos(t / 10000^(2i/dim))``.

    Returns:
        ``(length, dim)`` float32.
    """
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return pe


class PatternCNN(nn.Module):
    """Convolutional front end: blocks ``Conv1d → BatchNorm1d → GELU → MaxPool1d(2)``.

    The first convolution has stride 2; every block pools by 2, so ``k`` blocks shorten the
    pattern by about ``2^(k+1)``.

    Args:
        channels: Output channels of each block.
        kernel_sizes: Odd kernel size of each block.

    Shapes:
        ``(B, 1, L)`` → ``(B, channels[-1], T)``.
    """

    def __init__(self, channels: Sequence[int] = (8, 16, 32, 64),
                 kernel_sizes: Sequence[int] = (9, 7, 5, 3)) -> None:
        super().__init__()
        if len(channels) != len(kernel_sizes) or not channels:
            raise ValueError("channels and kernel_sizes must be non-empty and of equal length")
        if any(k % 2 == 0 or k < 1 for k in kernel_sizes):
            raise ValueError(f"kernel sizes must be odd and positive, got {tuple(kernel_sizes)}")
        layers: list[nn.Module] = []
        c_in = 1
        for i, (c_out, k) in enumerate(zip(channels, kernel_sizes, strict=True)):
            layers += [nn.Conv1d(c_in, int(c_out), int(k), stride=2 if i == 0 else 1,
                                 padding=int(k) // 2),
                       nn.BatchNorm1d(int(c_out)), nn.GELU(), nn.MaxPool1d(2)]
            c_in = int(c_out)
        self.layers = nn.Sequential(*layers)
        self.out_channels = c_in
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise convolutions and batch norms (PyTorch defaults, statistics reset)."""
        for layer in self.layers:
            if isinstance(layer, (nn.Conv1d, nn.BatchNorm1d)):
                layer.reset_parameters()

    def output_length(self, length: int) -> int:
        """``T`` for an input of ``length`` points."""
        for layer in self.layers:
            if isinstance(layer, nn.Conv1d):
                k, s, p = layer.kernel_size[0], layer.stride[0], layer.padding[0]
                length = (length + 2 * p - k) // s + 1
            elif isinstance(layer, nn.MaxPool1d):
                length = length // 2
        return length

    def last_conv(self) -> nn.Conv1d:
        """The last convolution (a Grad-CAM target layer)."""
        return [m for m in self.layers if isinstance(m, nn.Conv1d)][-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class PXRDEncoder(nn.Module):
    """CNN front end + Transformer encoder over pattern tokens → one embedding per pattern.

    Args:
        n_points: ``L``, points of the input grid (checked in ``forward``).
        downsample: Average this many neighbouring points first (1: keep the grid).
        conv_channels: Channels of the convolution blocks (:class:`PatternCNN`).
        kernel_sizes: Kernel size of each convolution block.
        d_model: ``H``, token width.
        n_heads: Attention heads (``d_model`` divisible by it).
        n_layers: Transformer encoder layers.
        ffn_dim: Feed-forward width of the Transformer layers.
        dropout: Dropout in the Transformer layers.
        sqrt_input: Read sign(x)·√|x| instead of x (compresses the strong reflections and
            lifts the weak ones, but also the noise; off by default: on the demo snapshot it
            did not help).

    Shapes:
        ``patterns`` ``(B, L)`` → ``(B, H)``; :meth:`tokens` gives ``(B, T, H)``.
    """

    def __init__(self, n_points: int = 3501, downsample: int = 2,
                 conv_channels: Sequence[int] = (8, 16, 32, 64),
                 kernel_sizes: Sequence[int] = (9, 7, 5, 3), d_model: int = 64, n_heads: int = 4,
                 n_layers: int = 2, ffn_dim: int = 128, dropout: float = 0.1,
                 sqrt_input: bool = False) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be ≥ 1, got {n_layers}")
        if downsample < 1:
            raise ValueError(f"downsample must be ≥ 1, got {downsample}")
        if d_model % n_heads or d_model % 2:
            raise ValueError(f"d_model {d_model} must be even and divisible by n_heads {n_heads}")
        self.n_points = int(n_points)
        self.downsample = int(downsample)
        self.d_model = int(d_model)
        self.sqrt_input = bool(sqrt_input)
        self.cnn = PatternCNN(conv_channels, kernel_sizes)
        self.n_tokens = self.cnn.output_length(self.n_points // self.downsample)
        if self.n_tokens < 1:
            raise ValueError(f"{n_points} points are too few for this CNN front end")
        self.project = nn.Conv1d(self.cnn.out_channels, self.d_model, 1)
        self.register_buffer("position", sinusoidal_encoding(self.n_tokens, self.d_model),
                             persistent=False)
        layer = nn.TransformerEncoderLayer(self.d_model, int(n_heads), int(ffn_dim),
                                           float(dropout), activation="gelu",
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, int(n_layers),
                                                 enable_nested_tensor=False)
        self.norm = nn.LayerNorm(self.d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every layer."""
        self.cnn.reset_parameters()
        self.project.reset_parameters()
        for block in self.transformer.layers:
            block.self_attn._reset_parameters()
            for sub in (block.linear1, block.linear2, block.norm1, block.norm2):
                sub.reset_parameters()
        self.norm.reset_parameters()

    def tokens(self, patterns: Tensor) -> Tensor:
        """Pattern tokens after the Transformer: ``(B, L)`` → ``(B, T, H)``."""
        if patterns.ndim != 2 or patterns.shape[-1] != self.n_points:
            raise ValueError(f"patterns must have shape (B, {self.n_points}), "
                             f"got {tuple(patterns.shape)}")
        x = patterns.unsqueeze(1)
        if self.sqrt_input:
            x = torch.sign(x) * torch.sqrt(x.abs() + 1e-6)
        if self.downsample > 1:
            x = F.avg_pool1d(x, self.downsample)
        x = self.project(self.cnn(x)).transpose(1, 2)  # (B, T, H)
        return self.transformer(x + self.position)

    def forward(self, patterns: Tensor) -> Tensor:
        return self.norm(self.tokens(patterns).mean(dim=1))


def _head(d_in: int, hidden: int, n_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, n_classes))


def _reset_head(head: nn.Sequential) -> None:
    for layer in head:
        if isinstance(layer, nn.Linear):
            layer.reset_parameters()


def _pxrd_hparams(values: Mapping[str, Any]) -> dict[str, Any]:
    out = {**PXRD_DEFAULTS, **values}
    unknown = set(out) - set(PXRD_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown PXRD encoder arguments {sorted(unknown)}")
    return {
        "n_points": int(out["n_points"]), "downsample": int(out["downsample"]),
        "conv_channels": [int(c) for c in out["conv_channels"]],
        "kernel_sizes": [int(k) for k in out["kernel_sizes"]],
        "d_model": int(out["d_model"]), "n_heads": int(out["n_heads"]),
        "n_layers": int(out["n_layers"]), "ffn_dim": int(out["ffn_dim"]),
        "dropout": float(out["dropout"]), "sqrt_input": bool(out["sqrt_input"]),
    }


class PXRDCrystalSystemNet(nn.Module):
    """The PXRD-only crystal-system classifier (SI Fig. S19).

    Args:
        n_classes: ``C`` (7 crystal systems).
        head_hidden: Hidden width of the classification head.
        **encoder: Arguments of :class:`PXRDEncoder` (defaults :data:`PXRD_DEFAULTS`).

    Shapes:
        ``patterns`` ``(B, L)`` float (each scaled to a maximum of 1) → logits ``(B, C)``.
    """

    def __init__(self, n_classes: int = 7, head_hidden: int = 64, **encoder: Any) -> None:
        super().__init__()
        enc = _pxrd_hparams(encoder)
        self._hparams = {"n_classes": int(n_classes), "head_hidden": int(head_hidden), **enc}
        self.encoder = PXRDEncoder(**enc)
        self.head = _head(self.encoder.d_model, int(head_hidden), int(n_classes),
                          enc["dropout"])
        self.reset_parameters()

    @property
    def hparams(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable); ``type(model)(**hparams)`` rebuilds it."""
        return dict(self._hparams)

    def reset_parameters(self) -> None:
        """Re-initialise encoder and head."""
        self.encoder.reset_parameters()
        _reset_head(self.head)

    def forward(self, patterns: Tensor) -> Tensor:
        return self.head(self.encoder(patterns))


class FusedCrystalSystemNet(nn.Module):
    """XANES + PXRD crystal-system classifier (the fused model of SI Fig. S21).

    The PXRD embedding (:class:`PXRDEncoder`, ``(B, H_p)``) and SpecFusionNet's pooled
    compound embedding of the TM XANES and element descriptors
    (:class:`~specfusion_lib.models.specfusionnet.SpecFusionEncoder`, ``(B, H_x)``) are
    concatenated and classified by a two-layer head; both encoders are trained jointly.

    Args:
        n_classes: ``C``.
        head_hidden: Hidden width of the head.
        pxrd: Arguments of :class:`PXRDEncoder`.
        xanes: Arguments of :class:`SpecFusionEncoder` (e.g. ``n_descriptors``,
            ``n_points``, ``d_model``).

    Shapes:
        ``patterns`` ``(B, L_p)``; ``descriptors`` ``(B, E, D)``, ``element_mask``,
        ``tm_mask`` ``(B, E)`` bool, ``spectra`` ``(B, E, L_x)``, ``spectrum_mask``
        ``(B, E)`` bool (as :class:`~specfusion_lib.models.specfusionnet.SpecFusionNet`)
        → logits ``(B, C)``.
    """

    def __init__(self, n_classes: int = 7, head_hidden: int = 64,
                 pxrd: Mapping[str, Any] | None = None,
                 xanes: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        enc = _pxrd_hparams(pxrd or {})
        xan = dict(xanes or {})
        self.pxrd_encoder = PXRDEncoder(**enc)
        self.xanes_encoder = SpecFusionEncoder(SpecFusionConfig(**xan))
        d_x = int(xan.get("d_model", 128))
        self._hparams = {"n_classes": int(n_classes), "head_hidden": int(head_hidden),
                         "pxrd": enc, "xanes": _jsonable_kwargs(xan)}
        self.head = _head(self.pxrd_encoder.d_model + d_x, int(head_hidden), int(n_classes),
                          enc["dropout"])
        self.reset_parameters()

    @property
    def hparams(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable)."""
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self._hparams.items()}

    def reset_parameters(self) -> None:
        """Re-initialise both encoders and the head."""
        self.pxrd_encoder.reset_parameters()
        self.xanes_encoder.reset_parameters()
        _reset_head(self.head)

    def set_descriptor_normalization(self, mean: Sequence[float] | Tensor,
                                     std: Sequence[float] | Tensor) -> None:
        """Store the descriptor standardisation of the XANES branch (training statistics)."""
        self.xanes_encoder.element_encoder.set_descriptor_normalization(mean, std)

    def forward(self, patterns: Tensor, descriptors: Tensor, element_mask: Tensor,
                tm_mask: Tensor, spectra: Tensor, spectrum_mask: Tensor) -> Tensor:
        _, pooled = self.xanes_encoder(descriptors, element_mask, tm_mask, spectra,
                                       spectrum_mask)
        return self.head(torch.cat([self.pxrd_encoder(patterns), pooled], dim=-1))


def _jsonable_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()}


def architecture_table(model: PXRDCrystalSystemNet) -> list[dict[str, Any]]:
    """Layers of the PXRD classifier with output shapes and parameter counts (SI Fig. S19).

    A forward pass of one zero pattern records each stage's output shape (batch size 1).

    Returns:
        One dict per stage: ``stage``, ``layer``, ``output_shape`` (without the batch axis)
        and ``parameters`` (trainable).
    """
    enc = model.encoder
    rows: list[dict[str, Any]] = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        x = torch.zeros(1, enc.n_points)
        rows.append({"stage": "input", "layer": f"pattern, {enc.n_points} points",
                     "output_shape": (enc.n_points,), "parameters": 0})
        h = x.unsqueeze(1)
        if enc.sqrt_input:
            rows.append({"stage": "scale", "layer": "sign(x)·√|x|",
                         "output_shape": (enc.n_points,), "parameters": 0})
        if enc.downsample > 1:
            h = F.avg_pool1d(h, enc.downsample)
            rows.append({"stage": "downsample", "layer": f"AvgPool1d({enc.downsample})",
                         "output_shape": tuple(h.shape[1:]), "parameters": 0})
        block: list[nn.Module] = []
        n_block = 0
        for layer in enc.cnn.layers:
            h = layer(h)
            block.append(layer)
            if isinstance(layer, nn.MaxPool1d):
                n_block += 1
                conv = block[0]
                assert isinstance(conv, nn.Conv1d)
                rows.append({
                    "stage": f"CNN block {n_block}",
                    "layer": (f"Conv1d({conv.in_channels}→{conv.out_channels}, "
                              f"k={conv.kernel_size[0]}, s={conv.stride[0]}) + BatchNorm + "
                              "GELU + MaxPool(2)"),
                    "output_shape": tuple(h.shape[1:]),
                    "parameters": sum(count_parameters(m) for m in block)})
                block = []
        h = enc.project(h).transpose(1, 2)
        rows.append({"stage": "tokens", "layer": (f"Conv1d 1×1 → {enc.d_model} + sinusoidal "
                                                  "2θ position"),
                     "output_shape": tuple(h.shape[1:]),
                     "parameters": count_parameters(enc.project)})
        h = h + enc.position
        for i, block_layer in enumerate(enc.transformer.layers, start=1):
            h = block_layer(h)
            rows.append({"stage": f"Transformer layer {i}",
                         "layer": (f"pre-norm, {block_layer.self_attn.num_heads} heads, "
                                   f"FFN {block_layer.linear1.out_features}"),
                         "output_shape": tuple(h.shape[1:]),
                         "parameters": count_parameters(block_layer)})
        h = enc.norm(h.mean(dim=1))
        rows.append({"stage": "pooling", "layer": "mean over tokens + LayerNorm",
                     "output_shape": tuple(h.shape[1:]),
                     "parameters": count_parameters(enc.norm)})
        h = model.head(h)
        rows.append({"stage": "head", "layer": "Linear + GELU + Dropout + Linear",
                     "output_shape": tuple(h.shape[1:]),
                     "parameters": count_parameters(model.head)})
    model.train(was_training)
    return rows
