"""SpecFusionNet: TM XANES + element descriptors → material properties (main text Fig. 2b).

A compound is a set of ``E`` elements (padded, with masks). The network

1. encodes every available spectrum with a :class:`MultiScaleSpectrumEncoder` (three 1-D
   convolution branches with kernel sizes 3, 7 and 15 points, concatenated, one linear output
   layer; SI Fig. S4). Only real spectra are encoded; absent ones are zero and masked;
2. encodes every element's descriptors with an :class:`ElementEncoder` holding *separate*
   embeddings for transition metals and for the other elements (SI Fig. S5);
3. fuses each TM's spectrum embedding with its element embedding
   (:class:`SpectrumElementFusion`, a residual MLP on the concatenation);
4. lets the element tokens attend to each other (:class:`ElementAttentionBlock`,
   ``nn.MultiheadAttention`` with ``key_padding_mask``, no positional encoding: the model is
   invariant to the order of the elements);
5. pools the tokens by a masked mean and applies the task head (class logits or one
   regression value). Element-level tasks (oxidation state / CN of each TM) apply the head to
   every token instead of the pooled vector.

Zero padding never contributes: padded spectra are never encoded, padded elements are zeroed
after every stage, excluded as attention keys and from the pooling, so adding padding changes
no output (tested). No batch normalisation is used, so a sample's output does not depend on the
rest of its batch.

Ablations (SI §S1.2) zero-mask parts without removing parameters, so parameter counts stay
identical: ``use_tm_fusion=False`` (no spectral information: the fusion block's output is
zeroed), ``use_non_tm=False`` (the non-TM embeddings are zeroed), ``masked_descriptors``
(standardised descriptor columns set to zero, i.e. to their training mean, for every element)
and ``masked_tm_descriptors`` / ``masked_non_tm_descriptors`` (the same, only for the input of
the TM or of the non-TM branch; SI Fig. S14 ablates each descriptor for TM and non-TM elements
apart). They are constructor arguments and can be changed on a trained model with
:meth:`set_ablation`.

Default sizes (about 0.84 M parameters): per conv branch 1 → 32 → 64 channels with a
max-pool (×2) between the two convolutions and an adaptive average pool to 16 positions (kept
coarse-grained *positions* rather than a global pool, because the energy position of features,
e.g. the edge shift, carries the oxidation state), spectrum embedding 128, element hidden 64,
model width 128, 4 heads, 2 attention blocks, feed-forward 256, head hidden 64, dropout 0.1.

Shapes used throughout: ``B`` materials, ``E`` elements per material (padded), ``D`` descriptor
columns, ``L`` points per spectrum (200), ``H`` model width, ``C`` outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

__all__ = [
    "ElementAttentionBlock",
    "ElementEncoder",
    "MultiScaleSpectrumEncoder",
    "MultiTaskSpecFusionNet",
    "SpecFusionConfig",
    "SpecFusionEncoder",
    "SpecFusionNet",
    "SpectrumElementFusion",
    "count_parameters",
]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class _ConvBranch(nn.Module):
    """One branch: conv(k) → GELU → maxpool(2) → conv(k) → GELU → adaptive avg pool.

    Shapes:
        ``(M, 1, L)`` → ``(M, channels[1], pooled_length)``.
    """

    def __init__(self, kernel_size: int, channels: tuple[int, int], pooled_length: int) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(1, channels[0], kernel_size, padding=pad)
        self.pool1 = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(channels[0], channels[1], kernel_size, padding=pad)
        self.pool2 = nn.AdaptiveAvgPool1d(pooled_length)

    def reset_parameters(self) -> None:
        self.conv1.reset_parameters()
        self.conv2.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(F.gelu(self.conv1(x)))
        return self.pool2(F.gelu(self.conv2(x)))


class MultiScaleSpectrumEncoder(nn.Module):
    """Multi-scale 1-D CNN over XANES spectra (SI Fig. S4).

    Three convolution branches with different kernel sizes read the same spectrum at
    different resolutions (narrow pre-edge peaks, the edge, broad post-edge oscillations);
    their feature maps are flattened, concatenated and mapped to ``out_dim`` by one linear
    layer.

    Args:
        n_points: ``L``, points per spectrum (checked in ``forward``).
        out_dim: ``H_s``, size of the spectrum embedding.
        kernel_sizes: Kernel size of each branch (odd, so "same" padding is symmetric).
        channels: Channels of the first and second convolution of each branch.
        pooled_length: Positions kept by each branch's final adaptive average pool.

    Shapes:
        ``spectra``: ``(..., L)``; ``mask``: ``(...)`` bool (``True`` = real spectrum) →
        ``(..., H_s)``, exactly zero where ``mask`` is ``False``.
    """

    def __init__(self, n_points: int = 200, out_dim: int = 128,
                 kernel_sizes: Sequence[int] = (3, 7, 15), channels: Sequence[int] = (32, 64),
                 pooled_length: int = 16) -> None:
        super().__init__()
        if len(channels) != 2:
            raise ValueError(f"channels must give two sizes, got {tuple(channels)}")
        if any(k % 2 == 0 or k < 1 for k in kernel_sizes):
            raise ValueError(f"kernel sizes must be odd and positive, got {tuple(kernel_sizes)}")
        if pooled_length > n_points // 2:
            raise ValueError(f"pooled_length {pooled_length} exceeds n_points // 2")
        self.n_points = int(n_points)
        self.out_dim = int(out_dim)
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.channels = (int(channels[0]), int(channels[1]))
        self.pooled_length = int(pooled_length)
        self.branches = nn.ModuleList(
            _ConvBranch(k, self.channels, self.pooled_length) for k in self.kernel_sizes)
        flat = len(self.kernel_sizes) * self.channels[1] * self.pooled_length
        self.output = nn.Linear(flat, self.out_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every weight (PyTorch defaults)."""
        for branch in self.branches:
            branch.reset_parameters()
        self.output.reset_parameters()

    def last_conv_layers(self) -> list[nn.Conv1d]:
        """The last convolution of each branch (the Grad-CAM target layers)."""
        return [branch.conv2 for branch in self.branches]

    def encode(self, spectra: Tensor) -> Tensor:
        """Encode real spectra only: ``(M, L)`` → ``(M, H_s)`` (no masking)."""
        x = spectra.unsqueeze(1)
        feats = [branch(x).flatten(1) for branch in self.branches]
        return self.output(torch.cat(feats, dim=1))

    def forward(self, spectra: Tensor, mask: Tensor | None = None) -> Tensor:
        if spectra.shape[-1] != self.n_points:
            raise ValueError(f"spectra have {spectra.shape[-1]} points, the encoder expects "
                             f"{self.n_points}")
        lead = spectra.shape[:-1]
        flat = spectra.reshape(-1, self.n_points)
        if mask is None:
            return self.encode(flat).reshape(*lead, self.out_dim)
        m = mask.reshape(-1)
        out = flat.new_zeros(flat.shape[0], self.out_dim)
        if bool(m.any()):
            out = out.index_put((m.nonzero(as_tuple=True)[0],), self.encode(flat[m]))
        return out.reshape(*lead, self.out_dim)


class ElementEncoder(nn.Module):
    """Element-feature processor with separate TM and non-TM embeddings (SI Fig. S5).

    Descriptors are standardised with the buffers ``descriptor_mean`` / ``descriptor_std``
    (fitted on the training split, see :meth:`set_descriptor_normalization`), multiplied by the
    ablation mask ``descriptor_keep`` (1 = keep, 0 = zero-mask the column), then embedded by
    the TM branch or the non-TM branch (two-layer MLPs of identical shape). The input of each
    branch is further multiplied by its own mask (``tm_descriptor_keep``,
    ``non_tm_descriptor_keep``; non-persistent buffers rebuilt from the constructor
    arguments, so checkpoints written before they existed still load).

    Args:
        n_descriptors: ``D``.
        hidden_dim: Hidden width of each branch.
        out_dim: ``H``, the embedding size.
        masked_descriptors: Column indices zero-masked for every element (ablation).
        use_non_tm: If ``False`` the non-TM embeddings are zeroed (ablation).
        masked_tm_descriptors: Column indices zero-masked in the TM branch only (ablation).
        masked_non_tm_descriptors: Column indices zero-masked in the non-TM branch only.

    Shapes:
        ``descriptors``: ``(B, E, D)``; ``tm_mask``, ``element_mask``: ``(B, E)`` bool →
        ``(B, E, H)``, zero at padding.
    """

    def __init__(self, n_descriptors: int = 11, hidden_dim: int = 64, out_dim: int = 128,
                 masked_descriptors: Sequence[int] = (), use_non_tm: bool = True,
                 masked_tm_descriptors: Sequence[int] = (),
                 masked_non_tm_descriptors: Sequence[int] = ()) -> None:
        super().__init__()
        self.n_descriptors = int(n_descriptors)
        self.hidden_dim = int(hidden_dim)
        self.out_dim = int(out_dim)
        self.use_non_tm = bool(use_non_tm)
        self.tm_branch = nn.Sequential(nn.Linear(self.n_descriptors, self.hidden_dim),
                                       nn.GELU(), nn.Linear(self.hidden_dim, self.out_dim))
        self.non_tm_branch = nn.Sequential(nn.Linear(self.n_descriptors, self.hidden_dim),
                                           nn.GELU(), nn.Linear(self.hidden_dim, self.out_dim))
        self.register_buffer("descriptor_mean", torch.zeros(self.n_descriptors))
        self.register_buffer("descriptor_std", torch.ones(self.n_descriptors))
        self.register_buffer("descriptor_keep", torch.ones(self.n_descriptors))
        self.register_buffer("tm_descriptor_keep", torch.ones(self.n_descriptors),
                             persistent=False)
        self.register_buffer("non_tm_descriptor_keep", torch.ones(self.n_descriptors),
                             persistent=False)
        self.set_masked_descriptors(masked_descriptors)
        self.set_masked_descriptors(masked_tm_descriptors, scope="tm")
        self.set_masked_descriptors(masked_non_tm_descriptors, scope="non_tm")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise both branches (the normalisation buffers are left alone)."""
        for branch in (self.tm_branch, self.non_tm_branch):
            for layer in branch:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()

    def set_masked_descriptors(self, columns: Sequence[int], scope: str = "all") -> None:
        """Zero-mask the given descriptor columns (empty: keep all).

        Args:
            columns: Column indices.
            scope: ``"all"`` (every element), ``"tm"`` (TM branch input only) or
                ``"non_tm"`` (non-TM branch input only). Each scope has its own mask; setting
                one leaves the others as they are.
        """
        buffers = {"all": ("descriptor_keep", "masked_descriptors"),
                   "tm": ("tm_descriptor_keep", "masked_tm_descriptors"),
                   "non_tm": ("non_tm_descriptor_keep", "masked_non_tm_descriptors")}
        if scope not in buffers:
            raise ValueError(f"scope must be one of {list(buffers)}, got {scope!r}")
        cols = tuple(sorted({int(c) for c in columns}))
        if any(c < 0 or c >= self.n_descriptors for c in cols):
            raise ValueError(f"descriptor columns {cols} out of range 0..{self.n_descriptors - 1}")
        buffer_name, attribute = buffers[scope]
        buffer = getattr(self, buffer_name)
        keep = torch.ones(self.n_descriptors, device=buffer.device)
        if cols:
            keep[list(cols)] = 0.0
        buffer.copy_(keep)
        setattr(self, attribute, cols)

    def set_descriptor_normalization(self, mean: Sequence[float] | Tensor,
                                     std: Sequence[float] | Tensor) -> None:
        """Store the descriptor standardisation (``(x - mean) / std``), shapes ``(D,)``."""
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if mean_t.numel() != self.n_descriptors or std_t.numel() != self.n_descriptors:
            raise ValueError(f"normalisation needs {self.n_descriptors} values per statistic")
        if bool((std_t <= 0).any()):
            raise ValueError("descriptor std must be positive")
        self.descriptor_mean.copy_(mean_t)
        self.descriptor_std.copy_(std_t)

    def forward(self, descriptors: Tensor, tm_mask: Tensor, element_mask: Tensor) -> Tensor:
        x = (descriptors - self.descriptor_mean) / self.descriptor_std * self.descriptor_keep
        tm = self.tm_branch(x * self.tm_descriptor_keep)
        non_tm = self.non_tm_branch(x * self.non_tm_descriptor_keep)
        if not self.use_non_tm:
            non_tm = torch.zeros_like(non_tm)
        out = torch.where(tm_mask.unsqueeze(-1), tm, non_tm)
        return out * element_mask.unsqueeze(-1).to(out.dtype)


class SpectrumElementFusion(nn.Module):
    """Fuse each element embedding with its spectrum embedding (residual MLP).

    ``token = element + has_spectrum · MLP([element, spectrum])``. With ``enabled=False``
    (ablation of the TM fusion block) the MLP output is zero-masked, so ``token = element``.

    Args:
        dim: ``H``, size of element and spectrum embeddings.
        hidden_dim: Hidden width of the MLP.
        enabled: Whether the fusion block contributes.

    Shapes:
        ``element``, ``spectrum``: ``(B, E, H)``; ``has_spectrum``: ``(B, E)`` bool →
        ``(B, E, H)``.
    """

    def __init__(self, dim: int = 128, hidden_dim: int = 256, enabled: bool = True) -> None:
        super().__init__()
        self.enabled = bool(enabled)
        self.mlp = nn.Sequential(nn.Linear(2 * dim, hidden_dim), nn.GELU(),
                                 nn.Linear(hidden_dim, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the MLP."""
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def forward(self, element: Tensor, spectrum: Tensor, has_spectrum: Tensor) -> Tensor:
        fused = self.mlp(torch.cat([element, spectrum], dim=-1))
        gate = has_spectrum.unsqueeze(-1).to(fused.dtype)
        if not self.enabled:
            gate = torch.zeros_like(gate)
        return element + gate * fused


class ElementAttentionBlock(nn.Module):
    """Pre-norm transformer block over the elements of a compound.

    ``x = x + MHA(LN(x)); x = x + FFN(LN(x))`` with padded elements excluded as keys
    (``key_padding_mask``) and re-zeroed at the output.

    Args:
        dim: ``H``.
        n_heads: Attention heads (``dim`` must be divisible by it).
        ffn_dim: Hidden width of the feed-forward network.
        dropout: Dropout on attention weights and residual branches.

    Shapes:
        ``x``: ``(B, E, H)``; ``element_mask``: ``(B, E)`` bool → ``(B, E, H)``.
    """

    def __init__(self, dim: int = 128, n_heads: int = 4, ffn_dim: int = 256,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, n_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(ffn_dim, dim))
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise attention, norms and the feed-forward network."""
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()
        self.attention._reset_parameters()
        for layer in self.ffn:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def forward(self, x: Tensor, element_mask: Tensor) -> Tensor:
        keep = element_mask.unsqueeze(-1).to(x.dtype)
        h = self.norm1(x)
        attended, _ = self.attention(h, h, h, key_padding_mask=~element_mask,
                                     need_weights=False)
        x = x + self.dropout(attended)
        x = x + self.dropout(self.ffn(self.norm2(x)))
        return x * keep


@dataclass(frozen=True)
class SpecFusionConfig:
    """Architecture of the SpecFusionNet encoder and heads (all but the outputs).

    One object instead of nineteen constructor arguments; :meth:`as_dict` is what checkpoints
    store (as the model's ``hparams``, together with the outputs) and :meth:`from_dict`
    rebuilds it. Defaults are the network of SI Fig. S4.

    Attributes:
        n_descriptors: ``D``, descriptor columns (11 with one-hot element types).
        n_points: ``L``, points per spectrum.
        all_element: Use the spectrum of every element that has one (Fig. 2h baseline);
            with ``False`` only TM spectra are used even if others are given.
        d_model: ``H``, width of element tokens and spectrum embeddings.
        kernel_sizes: Kernel sizes of the three conv branches.
        conv_channels: Channels of the two convolutions of each branch.
        pooled_length: Positions kept per branch.
        element_hidden: Hidden width of the element-encoder branches.
        fusion_hidden: Hidden width of the fusion MLP.
        n_heads: Attention heads.
        n_attention_layers: Number of attention blocks.
        ffn_dim: Feed-forward width in the attention blocks.
        head_hidden: Hidden width of each task head.
        dropout: Dropout probability.
        use_tm_fusion: Ablation switch: ``False`` zero-masks the fusion block.
        use_non_tm: Ablation switch: ``False`` zero-masks the non-TM embeddings.
        masked_descriptors: Ablation: descriptor columns to zero-mask.
        masked_tm_descriptors: Ablation: descriptor columns zero-masked for TM elements only.
        masked_non_tm_descriptors: Ablation: the same for non-TM elements only.
    """

    n_descriptors: int = 11
    n_points: int = 200
    all_element: bool = False
    d_model: int = 128
    kernel_sizes: tuple[int, ...] = (3, 7, 15)
    conv_channels: tuple[int, ...] = (32, 64)
    pooled_length: int = 16
    element_hidden: int = 64
    fusion_hidden: int = 256
    n_heads: int = 4
    n_attention_layers: int = 2
    ffn_dim: int = 256
    head_hidden: int = 64
    dropout: float = 0.1
    use_tm_fusion: bool = True
    use_non_tm: bool = True
    masked_descriptors: tuple[int, ...] = ()
    masked_tm_descriptors: tuple[int, ...] = ()
    masked_non_tm_descriptors: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        ints = ("n_descriptors", "n_points", "d_model", "pooled_length", "element_hidden",
                "fusion_hidden", "n_heads", "n_attention_layers", "ffn_dim", "head_hidden")
        for name in ints:
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("all_element", "use_tm_fusion", "use_non_tm"):
            object.__setattr__(self, name, bool(getattr(self, name)))
        object.__setattr__(self, "dropout", float(self.dropout))
        object.__setattr__(self, "kernel_sizes", tuple(int(k) for k in self.kernel_sizes))
        object.__setattr__(self, "conv_channels", tuple(int(c) for c in self.conv_channels))
        for name in ("masked_descriptors", "masked_tm_descriptors",
                     "masked_non_tm_descriptors"):
            object.__setattr__(self, name, tuple(sorted({int(c) for c in getattr(self, name)})))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (tuples as lists), in declaration order."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SpecFusionConfig:
        """The config of ``values`` (e.g. a checkpoint's ``hparams``); other keys are ignored.

        Raises:
            TypeError: If a value has the wrong type.
        """
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


class SpecFusionEncoder(nn.Module):
    """Everything of SpecFusionNet but the head: element tokens and the pooled compound vector.

    Args:
        config: The architecture (:class:`SpecFusionConfig`; ``head_hidden`` is not used here).

    Shapes:
        inputs as :meth:`SpecFusionNet.forward` → ``(tokens (B, E, H), pooled (B, H))``.
    """

    def __init__(self, config: SpecFusionConfig | None = None) -> None:
        super().__init__()
        c = config or SpecFusionConfig()
        self.all_element = c.all_element
        self.spectrum_encoder = MultiScaleSpectrumEncoder(c.n_points, c.d_model, c.kernel_sizes,
                                                          c.conv_channels, c.pooled_length)
        self.element_encoder = ElementEncoder(c.n_descriptors, c.element_hidden, c.d_model,
                                              c.masked_descriptors, c.use_non_tm,
                                              c.masked_tm_descriptors,
                                              c.masked_non_tm_descriptors)
        self.fusion = SpectrumElementFusion(c.d_model, c.fusion_hidden, c.use_tm_fusion)
        self.blocks = nn.ModuleList(ElementAttentionBlock(c.d_model, c.n_heads, c.ffn_dim,
                                                          c.dropout)
                                    for _ in range(c.n_attention_layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every sub-module."""
        self.spectrum_encoder.reset_parameters()
        self.element_encoder.reset_parameters()
        self.fusion.reset_parameters()
        for block in self.blocks:
            block.reset_parameters()
        self.norm.reset_parameters()

    def forward(self, descriptors: Tensor, element_mask: Tensor, tm_mask: Tensor,
                spectra: Tensor, spectrum_mask: Tensor) -> tuple[Tensor, Tensor]:
        element_mask = element_mask.bool()
        tm_mask = tm_mask.bool() & element_mask
        use_spec = spectrum_mask.bool() & element_mask
        if not self.all_element:
            use_spec = use_spec & tm_mask
        keep = element_mask.unsqueeze(-1).to(descriptors.dtype)
        elem = self.element_encoder(descriptors, tm_mask, element_mask)
        spec = self.spectrum_encoder(spectra, use_spec)
        x = self.fusion(elem, spec, use_spec) * keep
        for block in self.blocks:
            x = block(x, element_mask)
        x = self.norm(x) * keep
        pooled = x.sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return x, pooled


def _head(d_model: int, hidden: int, n_outputs: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, n_outputs))


def _reset_head(head: nn.Sequential) -> None:
    for layer in head:
        if isinstance(layer, nn.Linear):
            layer.reset_parameters()


def _config(config: SpecFusionConfig | None, architecture: Mapping[str, Any]
            ) -> SpecFusionConfig:
    """``config`` with ``architecture`` keyword overrides (either may be empty)."""
    base = config or SpecFusionConfig()
    return replace(base, **architecture) if architecture else base


class _AblationMixin:
    encoder: SpecFusionEncoder
    config: SpecFusionConfig
    _hparams: dict[str, Any]

    @property
    def hparams(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable); ``type(model)(**hparams)`` rebuilds it."""
        return dict(self._hparams)

    def set_ablation(self, *, use_tm_fusion: bool | None = None, use_non_tm: bool | None = None,
                     masked_descriptors: Sequence[int] | None = None,
                     masked_tm_descriptors: Sequence[int] | None = None,
                     masked_non_tm_descriptors: Sequence[int] | None = None) -> None:
        """Change the zero-masking switches of a built (or trained) model.

        Parameter counts and weights are unchanged; ``None`` leaves a switch as it is.
        """
        if use_tm_fusion is not None:
            self.encoder.fusion.enabled = bool(use_tm_fusion)
            self._hparams["use_tm_fusion"] = bool(use_tm_fusion)
        if use_non_tm is not None:
            self.encoder.element_encoder.use_non_tm = bool(use_non_tm)
            self._hparams["use_non_tm"] = bool(use_non_tm)
        if masked_descriptors is not None:
            self.encoder.element_encoder.set_masked_descriptors(masked_descriptors)
            self._hparams["masked_descriptors"] = list(
                self.encoder.element_encoder.masked_descriptors)
        for scope, columns in (("tm", masked_tm_descriptors),
                               ("non_tm", masked_non_tm_descriptors)):
            if columns is not None:
                encoder = self.encoder.element_encoder
                encoder.set_masked_descriptors(columns, scope=scope)
                self._hparams[f"masked_{scope}_descriptors"] = list(
                    getattr(encoder, f"masked_{scope}_descriptors"))
        self.config = SpecFusionConfig.from_dict(self._hparams)

    def set_descriptor_normalization(self, mean: Sequence[float] | Tensor,
                                     std: Sequence[float] | Tensor) -> None:
        """Store descriptor standardisation statistics (see :class:`ElementEncoder`)."""
        self.encoder.element_encoder.set_descriptor_normalization(mean, std)



class SpecFusionNet(_AblationMixin, nn.Module):
    """SpecFusionNet for one task (as in the paper: one model per task).

    Args:
        n_outputs: ``C``: number of classes, or 1 for regression.
        element_level: Predict per element (oxidation state / CN of each TM) instead of per
            compound: the head is applied to every element token, no pooling.
        config: The architecture (default :class:`SpecFusionConfig`).
        **architecture: Fields of :class:`SpecFusionConfig` overriding ``config`` (so
            ``SpecFusionNet(**model.hparams)`` rebuilds a model, as checkpoints do).

    Shapes:
        ``descriptors`` ``(B, E, D)`` float, ``element_mask`` ``(B, E)`` bool,
        ``tm_mask`` ``(B, E)`` bool, ``spectra`` ``(B, E, L)`` float, ``spectrum_mask``
        ``(B, E)`` bool → ``(B, C)`` (compound level) or ``(B, E, C)`` (element level, zero
        at padding). Classification outputs are logits; regression outputs are in the
        standardised target units of the training run.
    """

    def __init__(self, n_outputs: int = 1, element_level: bool = False,
                 config: SpecFusionConfig | None = None, **architecture: Any) -> None:
        super().__init__()
        self.config = _config(config, architecture)
        self._hparams = {"n_outputs": int(n_outputs), "element_level": bool(element_level),
                         **self.config.as_dict()}
        self.n_outputs = int(n_outputs)
        self.element_level = bool(element_level)
        self.encoder = SpecFusionEncoder(self.config)
        self.head = _head(self.config.d_model, self.config.head_hidden, self.n_outputs,
                          self.config.dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise encoder and head."""
        self.encoder.reset_parameters()
        _reset_head(self.head)

    def forward(self, descriptors: Tensor, element_mask: Tensor, tm_mask: Tensor,
                spectra: Tensor, spectrum_mask: Tensor) -> Tensor:
        tokens, pooled = self.encoder(descriptors, element_mask, tm_mask, spectra,
                                      spectrum_mask)
        if self.element_level:
            return self.head(tokens) * element_mask.unsqueeze(-1).to(tokens.dtype)
        return self.head(pooled)


class MultiTaskSpecFusionNet(_AblationMixin, nn.Module):
    """SpecFusionNet with a shared encoder and one head per target (option of SPEC §5).

    Args:
        task_outputs: Task name → ``C`` (classes, or 1 for regression), in head order.
        element_level_tasks: Names of ``task_outputs`` predicted per element.
        config: The architecture (default :class:`SpecFusionConfig`).
        **architecture: Fields of :class:`SpecFusionConfig` overriding ``config``.

    Shapes:
        Inputs as :class:`SpecFusionNet` → dict task name → ``(B, C)`` or ``(B, E, C)``.
    """

    def __init__(self, task_outputs: Mapping[str, int],
                 element_level_tasks: Sequence[str] = (),
                 config: SpecFusionConfig | None = None, **architecture: Any) -> None:
        super().__init__()
        if not task_outputs:
            raise ValueError("task_outputs must name at least one task")
        unknown = set(element_level_tasks) - set(task_outputs)
        if unknown:
            raise ValueError(f"element_level_tasks not in task_outputs: {sorted(unknown)}")
        self.config = _config(config, architecture)
        self._hparams = {
            "task_outputs": {str(k): int(v) for k, v in task_outputs.items()},
            "element_level_tasks": [str(t) for t in element_level_tasks],
            **self.config.as_dict(),
        }
        self.element_level_tasks = frozenset(element_level_tasks)
        self.encoder = SpecFusionEncoder(self.config)
        self.heads = nn.ModuleDict({name: _head(self.config.d_model, self.config.head_hidden,
                                                int(c), self.config.dropout)
                                    for name, c in task_outputs.items()})
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise encoder and heads."""
        self.encoder.reset_parameters()
        for head in self.heads.values():
            _reset_head(head)

    def forward(self, descriptors: Tensor, element_mask: Tensor, tm_mask: Tensor,
                spectra: Tensor, spectrum_mask: Tensor) -> dict[str, Tensor]:
        tokens, pooled = self.encoder(descriptors, element_mask, tm_mask, spectra,
                                      spectrum_mask)
        keep = element_mask.unsqueeze(-1).to(tokens.dtype)
        return {name: (head(tokens) * keep if name in self.element_level_tasks
                       else head(pooled))
                for name, head in self.heads.items()}
