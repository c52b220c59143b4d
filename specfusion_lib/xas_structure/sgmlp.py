"""XAStruct's SwiGLU-gated multi-layer perceptron (SGMLP) and its ablation variants.

The building blocks, as XAStruct writes them (seed 002, eqs. 4–6), for ``x`` of shape
``(batch, d_in)``:

* **GatedLinear** ``GL(x) = (x W + b) ⊙ σ(x W_g + b_g)``: a linear map whose every output is
  scaled by a learned sigmoid gate of the same input.
* **SwiGLU** ``SwiGLU(x) = swish_β(x W_g + b_g) ⊙ (x W_v + b_v)`` with
  ``swish_β(z) = z · σ(β z)`` and a learned scalar ``β`` (initialised to 1).
* **SBlock** ``SBlock(x) = SwiGLU(LayerNorm(GL(x)))``.
* **SGMLP** with ``k`` layers: ``GL(SBlock_{k-1}(… SBlock_1(x)))``: ``k - 1`` blocks and a
  final GatedLinear.

The ablation of XAStruct's Table 3 swaps the two ingredients (:data:`HEAD_VARIANTS`):

``"sgmlp"``   GatedLinear + SwiGLU (the model)
``"relu"``    GatedLinear + ReLU ("SwiGLU (use ReLU)")
``"linear"``  Linear + SwiGLU ("GatedLinear (use Linear)")
``"mlp"``     Linear + ReLU (the standard MLP; LayerNorm kept in every variant so that only
              the named ingredient changes)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from specfusion_lib.core.errors import ConfigurationError

__all__ = ["HEAD_VARIANTS", "SGMLP", "GatedLinear", "SBlock", "SwiGLU"]

#: Head variant → (gated linear layers?, SwiGLU activation?).
HEAD_VARIANTS: dict[str, tuple[bool, bool]] = {
    "sgmlp": (True, True),
    "relu": (True, False),
    "linear": (False, True),
    "mlp": (False, False),
}


class GatedLinear(nn.Module):
    """``(x W + b) ⊙ σ(x W_g + b_g)``; shapes ``(..., d_in) → (..., d_out)``."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.value = nn.Linear(d_in, d_out)
        self.gate = nn.Linear(d_in, d_out)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Default linear initialisation; gate bias 0 (gates start half open)."""
        self.value.reset_parameters()
        self.gate.reset_parameters()
        nn.init.zeros_(self.gate.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.value(x) * torch.sigmoid(self.gate(x))


class SwiGLU(nn.Module):
    """``swish_β(x W_g + b_g) ⊙ (x W_v + b_v)``; shapes ``(..., d) → (..., d)``."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.gate = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.beta = nn.Parameter(torch.ones(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Default linear initialisation, ``β = 1``."""
        self.gate.reset_parameters()
        self.value.reset_parameters()
        with torch.no_grad():
            self.beta.fill_(1.0)

    def forward(self, x: Tensor) -> Tensor:
        g = self.gate(x)
        return g * torch.sigmoid(self.beta * g) * self.value(x)


class SBlock(nn.Module):
    """``act(LayerNorm(lin(x)))`` with ``lin`` GatedLinear or Linear and ``act`` SwiGLU or ReLU."""

    def __init__(self, d_in: int, d_out: int, *, gated: bool = True, swiglu: bool = True
                 ) -> None:
        super().__init__()
        self.linear = GatedLinear(d_in, d_out) if gated else nn.Linear(d_in, d_out)
        self.norm = nn.LayerNorm(d_out)
        self.act = SwiGLU(d_out) if swiglu else nn.ReLU()

    def reset_parameters(self) -> None:
        """Re-initialise every sub-layer."""
        for m in (self.linear, self.norm, self.act):
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.linear(x)))


class SGMLP(nn.Module):
    """``k``-layer SGMLP: ``k - 1`` :class:`SBlock` s and a final (gated) linear layer.

    Args:
        dims: Layer widths ``(d_in, h_1, …, h_{k-1}, d_out)`` (at least two).
        variant: One of :data:`HEAD_VARIANTS`.
        dropout: Dropout after every block (0: none).

    Shapes: ``(batch, d_in) → (batch, d_out)``.
    """

    def __init__(self, dims: Sequence[int], variant: str = "sgmlp", dropout: float = 0.0
                 ) -> None:
        super().__init__()
        if variant not in HEAD_VARIANTS:
            raise ConfigurationError(f"unknown SGMLP variant {variant!r}; choose one of "
                                     f"{sorted(HEAD_VARIANTS)}")
        if len(dims) < 2 or any(int(d) < 1 for d in dims):
            raise ConfigurationError(f"SGMLP needs at least two positive widths, got {dims}")
        gated, swiglu = HEAD_VARIANTS[variant]
        dims = [int(d) for d in dims]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-2], dims[1:-1], strict=True):
            layers.append(SBlock(a, b, gated=gated, swiglu=swiglu))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.blocks = nn.Sequential(*layers)
        self.out = GatedLinear(dims[-2], dims[-1]) if gated else nn.Linear(dims[-2], dims[-1])

    def reset_parameters(self) -> None:
        """Re-initialise every layer."""
        for m in [*self.blocks, self.out]:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.blocks(x))
