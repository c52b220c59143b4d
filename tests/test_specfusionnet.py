"""SpecFusionNet: documented shapes, padding and permutation invariance, ablation switches."""

from __future__ import annotations

import pytest
import torch

from specfusion_lib.models import (
    ElementEncoder,
    MultiScaleSpectrumEncoder,
    MultiTaskSpecFusionNet,
    SpecFusionConfig,
    SpecFusionEncoder,
    SpecFusionNet,
    count_parameters,
)

torch.set_num_threads(1)

D, L = 11, 200
SMALL = {"d_model": 32, "conv_channels": (8, 16), "pooled_length": 8, "element_hidden": 16,
         "fusion_hidden": 32, "n_heads": 4, "n_attention_layers": 2, "ffn_dim": 32,
         "head_hidden": 16}


def _batch(b: int = 5, e: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random compounds with 2..e elements; element 0 is a TM with a spectrum."""
    g = torch.Generator().manual_seed(seed)
    n_el = torch.randint(2, e + 1, (b,), generator=g)
    element_mask = torch.arange(e)[None, :] < n_el[:, None]
    tm_mask = torch.zeros(b, e, dtype=torch.bool)
    tm_mask[:, 0] = True
    tm_mask[:, 1] = torch.rand(b, generator=g) > 0.5
    tm_mask &= element_mask
    spectrum_mask = tm_mask.clone()
    descriptors = torch.randn(b, e, D, generator=g) * element_mask[..., None]
    spectra = torch.randn(b, e, L, generator=g) * spectrum_mask[..., None]
    return {"descriptors": descriptors, "element_mask": element_mask, "tm_mask": tm_mask,
            "spectra": spectra, "spectrum_mask": spectrum_mask}


def _model(**kw) -> SpecFusionNet:
    torch.manual_seed(0)
    return SpecFusionNet(**{**SMALL, **kw}).eval()


def test_documented_shapes() -> None:
    x = _batch(b=5, e=4)
    assert _model(n_outputs=3)(**x).shape == (5, 3)
    assert _model(n_outputs=1)(**x).shape == (5, 1)
    per_el = _model(n_outputs=4, element_level=True)(**x)
    assert per_el.shape == (5, 4, 4)
    assert torch.all(per_el[~x["element_mask"]] == 0)
    torch.manual_seed(0)
    enc = SpecFusionEncoder(SpecFusionConfig(**SMALL)).eval()
    tokens, pooled = enc(**x)
    assert tokens.shape == (5, 4, 32) and pooled.shape == (5, 32)
    spec_enc = MultiScaleSpectrumEncoder(out_dim=24, channels=(4, 8), pooled_length=8)
    assert spec_enc(torch.randn(7, L)).shape == (7, 24)
    assert spec_enc(torch.randn(2, 3, L)).shape == (2, 3, 24)
    assert len(spec_enc.last_conv_layers()) == 3
    torch.manual_seed(0)
    multi = MultiTaskSpecFusionNet({"a": 2, "b": 1, "ox": 5}, element_level_tasks=["ox"],
                                   **SMALL).eval()
    out = multi(**x)
    assert out["a"].shape == (5, 2) and out["b"].shape == (5, 1) and out["ox"].shape == (5, 4, 5)


def test_spectrum_encoder_masks_and_length() -> None:
    enc = MultiScaleSpectrumEncoder(out_dim=16, channels=(4, 8), pooled_length=8).eval()
    x = torch.randn(3, 2, L)
    mask = torch.tensor([[True, False], [False, False], [True, True]])
    out = enc(x, mask)
    assert torch.all(out[~mask] == 0)
    torch.testing.assert_close(out[mask], enc(x[mask]))
    with pytest.raises(ValueError, match="points"):
        enc(torch.randn(2, 150))


@pytest.mark.parametrize("element_level", [False, True])
def test_padding_invariance(element_level: bool) -> None:
    """Extra padded elements and garbage in padded slots change no output (eval mode)."""
    model = _model(n_outputs=3, element_level=element_level)
    x = _batch(b=6, e=4)
    ref = model(**x)
    extra = 3
    padded = {
        "descriptors": torch.cat([x["descriptors"], 50 * torch.randn(6, extra, D)], dim=1),
        "element_mask": torch.cat([x["element_mask"], torch.zeros(6, extra, dtype=torch.bool)],
                                  dim=1),
        "tm_mask": torch.cat([x["tm_mask"], torch.ones(6, extra, dtype=torch.bool)], dim=1),
        "spectra": torch.cat([x["spectra"], 50 * torch.randn(6, extra, L)], dim=1),
        "spectrum_mask": torch.cat([x["spectrum_mask"], torch.ones(6, extra, dtype=torch.bool)],
                                   dim=1),
    }
    # garbage also inside the existing padding: descriptors of padded elements, spectra of
    # elements flagged as having none
    padded["descriptors"][:, :4][~x["element_mask"]] = 99.0
    padded["spectra"][:, :4][~x["spectrum_mask"]] = -7.0
    out = model(**padded)
    if element_level:
        torch.testing.assert_close(out[:, :4], ref, rtol=1e-5, atol=1e-5)
        assert torch.all(out[:, 4:] == 0)
    else:
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_permutation_invariance() -> None:
    model = _model(n_outputs=2)
    element_model = _model(n_outputs=2, element_level=True)
    x = _batch(b=4, e=4, seed=3)
    perm = torch.tensor([2, 0, 3, 1])
    xp = {k: v[:, perm] for k, v in x.items()}
    torch.testing.assert_close(model(**xp), model(**x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(element_model(**xp), element_model(**x)[:, perm],
                               rtol=1e-5, atol=1e-5)


def test_sample_output_does_not_depend_on_batch() -> None:
    model = _model(n_outputs=2)
    x = _batch(b=6, e=4)
    one = model(**{k: v[2:3] for k, v in x.items()})
    torch.testing.assert_close(one, model(**x)[2:3], rtol=1e-5, atol=1e-5)


def test_non_tm_spectra_only_used_in_all_element_variant() -> None:
    x = _batch(b=4, e=3, seed=1)
    y = {k: v.clone() for k, v in x.items()}
    non_tm = x["element_mask"] & ~x["tm_mask"]
    y["spectrum_mask"] = x["spectrum_mask"] | non_tm
    y["spectra"] = y["spectra"] + torch.randn(4, 3, L) * non_tm[..., None]
    partial = _model(n_outputs=2)
    torch.testing.assert_close(partial(**y), partial(**x))
    full = _model(n_outputs=2, all_element=True)
    assert not torch.allclose(full(**y), full(**x))
    assert count_parameters(full) == count_parameters(partial)


def test_ablation_switches_keep_parameter_count() -> None:
    x = _batch(b=4, e=4, seed=2)
    base = _model(n_outputs=2)
    n = count_parameters(base)
    ref = base(**x)
    for kw in ({"use_tm_fusion": False}, {"use_non_tm": False}, {"masked_descriptors": [0, 5]}):
        ablated = _model(n_outputs=2, **kw)
        assert count_parameters(ablated) == n
        assert not torch.allclose(ablated(**x), ref)
    # no fusion block: spectra no longer matter
    no_fusion = _model(n_outputs=2, use_tm_fusion=False)
    y = dict(x, spectra=torch.randn_like(x["spectra"]))
    torch.testing.assert_close(no_fusion(**y), no_fusion(**x))
    # masked descriptor column: its value no longer matters
    masked = _model(n_outputs=2, masked_descriptors=[3])
    z = dict(x, descriptors=x["descriptors"].clone())
    z["descriptors"][..., 3] += 10.0
    torch.testing.assert_close(masked(**z), masked(**x))
    # set_ablation on a built model equals building it ablated
    base.set_ablation(use_tm_fusion=False)
    torch.testing.assert_close(base(**x), no_fusion(**x))
    assert base.hparams["use_tm_fusion"] is False


def test_non_tm_branch_switch_zeroes_non_tm_embeddings() -> None:
    enc = ElementEncoder(n_descriptors=D, hidden_dim=8, out_dim=16, use_non_tm=False)
    x = _batch(b=3, e=4)
    out = enc(x["descriptors"], x["tm_mask"], x["element_mask"])
    assert torch.all(out[~x["tm_mask"]] == 0)
    assert torch.any(out[x["tm_mask"]] != 0)


def test_reset_parameters_and_hparams_rebuild() -> None:
    model = _model(n_outputs=3)
    before = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    rebuilt = SpecFusionNet(**model.hparams)
    assert count_parameters(rebuilt) == count_parameters(model)
    rebuilt.load_state_dict(model.state_dict())
    x = _batch()
    torch.testing.assert_close(rebuilt.eval()(**x), model(**x))
    multi = MultiTaskSpecFusionNet({"a": 2}, **SMALL)
    assert count_parameters(MultiTaskSpecFusionNet(**multi.hparams)) == count_parameters(multi)


def test_gradients_do_not_reach_padding() -> None:
    model = _model(n_outputs=2).train()
    x = _batch(b=4, e=4)
    x["descriptors"].requires_grad_(True)
    x["spectra"].requires_grad_(True)
    model(**x).sum().backward()
    assert torch.all(x["descriptors"].grad[~x["element_mask"]] == 0)
    assert torch.all(x["spectra"].grad[~x["spectrum_mask"]] == 0)


def test_config_round_trips_through_its_dict_and_the_model_hparams() -> None:
    config = SpecFusionConfig(d_model=32, conv_channels=[8, 16], masked_descriptors=[3, 1, 3])
    assert config.masked_descriptors == (1, 3) and config.conv_channels == (8, 16)
    assert SpecFusionConfig.from_dict(config.as_dict()) == config
    model = SpecFusionNet(n_outputs=3, config=config)
    assert model.hparams == {"n_outputs": 3, "element_level": False, **config.as_dict()}
    rebuilt = SpecFusionNet(**model.hparams)  # what checkpoints do
    assert rebuilt.config == config
    assert count_parameters(rebuilt) == count_parameters(model)


def test_keyword_architecture_overrides_the_config_and_ablation_updates_it() -> None:
    model = SpecFusionNet(n_outputs=1, config=SpecFusionConfig(d_model=32), n_heads=2)
    assert model.config.d_model == 32 and model.config.n_heads == 2
    model.set_ablation(use_tm_fusion=False, masked_tm_descriptors=[4])
    assert not model.config.use_tm_fusion and model.config.masked_tm_descriptors == (4,)
    assert model.hparams["masked_tm_descriptors"] == [4]
    with pytest.raises(TypeError):
        SpecFusionNet(n_outputs=1, no_such_field=1)

