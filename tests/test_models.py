"""Networks: every registered model builds, has the pinned size, gives the right shapes; the
report's specifics (no batch norm in the decoder, fovea cells, frozen classifier) hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from torch import nn

from funduskit.core.errors import DataError, FunduskitError
from funduskit.models import (
    FINDINGS,
    FunduskitModel,
    GlaucomaClassifier,
    InputShapeError,
    TwoBranchSegmenter,
    UnknownModelError,
    create_model,
    decode_fovea,
    encode_fovea_target,
    list_models,
    model_class,
)

# Default (paper) configurations; a new model must be pinned here the day it is registered.
PINNED_PARAMETERS = {
    "disc_cup_segmenter": 20_637_885,  # EfficientNet-B4 photo + B0 vessel branch + decoder (256, 128, 64)
    "fovea_localiser": 20_626_463,  # same, decoder (256, 128), three maps
    "vessel_generator": 7_849_601,  # U-Net, width 32, depth 4
    "vessel_discriminator": 4_715_009,  # image discriminator, width 32
    "glaucoma_classifier": 4_027_004,  # EfficientNet-B0 + 15 finding maps + linear on 15 x 4 x 4
}

TINY_ENCODER = "mobilenetv3_small_050"

# name -> (small-config kwargs, input shape, output shape)
SMALL_CASES = {
    "disc_cup_segmenter": (
        {"photo_encoder": TINY_ENCODER, "vessel_encoder": TINY_ENCODER, "decoder_channels": (32, 16, 8)},
        (2, 4, 64, 64),
        (2, 1, 64, 64),
    ),
    "fovea_localiser": (
        {"photo_encoder": TINY_ENCODER, "vessel_encoder": TINY_ENCODER, "decoder_channels": (32, 16)},
        (2, 4, 128, 128),
        (2, 3, 16, 16),
    ),
    "vessel_generator": ({"base_width": 4}, (2, 3, 64, 48), (2, 1, 64, 48)),
    "vessel_discriminator": ({"base_width": 4}, (2, 4, 64, 128), (2,)),
    "glaucoma_classifier": ({"backbone": TINY_ENCODER}, (2, 3, 64, 64), (2,)),
}


def small_model(name: str, **overrides: object) -> FunduskitModel:
    torch.manual_seed(0)
    kwargs, _, _ = SMALL_CASES[name]
    return create_model(name, **{**kwargs, **overrides})


def test_registry_lists_exactly_the_pinned_models() -> None:
    assert list_models() == sorted(PINNED_PARAMETERS)
    assert set(SMALL_CASES) == set(PINNED_PARAMETERS)


@pytest.mark.parametrize("name", sorted(PINNED_PARAMETERS))
def test_default_configuration_has_pinned_parameter_count(name: str) -> None:
    model = create_model(name)
    assert isinstance(model, model_class(name))
    assert isinstance(model, FunduskitModel)
    assert model.num_parameters() == PINNED_PARAMETERS[name]


def test_paper_segmenter_runs_at_small_size() -> None:
    model = create_model("disc_cup_segmenter")
    assert model(torch.randn(1, 4, 64, 64)).shape == (1, 1, 64, 64)


@pytest.mark.parametrize("name", sorted(SMALL_CASES))
def test_forward_and_predict_shapes(name: str) -> None:
    model = small_model(name)
    _, input_shape, output_shape = SMALL_CASES[name]
    x = torch.randn(input_shape)
    model.train()
    logits = model(x)
    assert logits.shape == output_shape
    assert logits.requires_grad
    probabilities = model.predict(x)
    assert probabilities.shape == output_shape
    assert not probabilities.requires_grad
    assert float(probabilities.min()) >= 0.0 and float(probabilities.max()) <= 1.0
    assert model.training, "predict must restore the training mode"
    model.eval()
    torch.testing.assert_close(probabilities, torch.sigmoid(model(x)).detach())


def test_two_branch_decoder_follows_the_report() -> None:
    segmenter = small_model("disc_cup_segmenter")
    fovea = small_model("fovea_localiser")
    assert len(segmenter.decoder.stages) == 3 and segmenter.output_reduction == 4
    assert len(fovea.decoder.stages) == 2 and fovea.output_reduction == 8
    for model in (segmenter, fovea):
        decoder_modules = list(model.decoder.modules()) + list(model.head.modules())
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in decoder_modules)
        assert any(isinstance(m, nn.SiLU) for m in decoder_modules)
        convs = [m for m in decoder_modules if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        assert convs and all(m.groups == m.in_channels for m in convs), "3x3 convolutions must be depthwise"


def test_fovea_decoder_sizes_follow_the_encoder_features() -> None:
    model = small_model("fovea_localiser")
    photo = model.photo_encoder.feature_info
    reductions = photo.reduction()
    channels = dict(zip(reductions, photo.channels(), strict=True))
    first_stage_input = model.decoder.stages[0].conv[0].in_channels
    vessel_deepest = model.vessel_encoder.feature_info.channels()[-1]
    assert first_stage_input == channels[32] + vessel_deepest + channels[16]


def test_vessel_branch_influences_the_output() -> None:
    model = small_model("disc_cup_segmenter").eval()
    x = torch.randn(1, 4, 64, 64)
    changed = x.clone()
    changed[:, 3] = torch.randn(1, 64, 64) * 3
    with torch.no_grad():
        assert not torch.allclose(model(x), model(changed))
    x.requires_grad_(True)
    model(x).sum().backward()
    assert x.grad[:, 3].abs().sum() > 0 and x.grad[:, :3].abs().sum() > 0


def test_too_many_decoder_stages_name_the_missing_feature_reductions() -> None:
    with pytest.raises(FunduskitError, match=r"missing \[1\]"):
        create_model("disc_cup_segmenter", photo_encoder=TINY_ENCODER, vessel_encoder=TINY_ENCODER,
                     decoder_channels=(8, 8, 8, 8, 8))


def test_fovea_confidence_starts_near_its_prior() -> None:
    model = small_model("fovea_localiser")
    assert float(model.head.bias[0].detach()) == pytest.approx(np.log(0.01 / 0.99), abs=1e-6)


@pytest.mark.parametrize(("size", "grid"), [(640, 80), (128, 16), (96, 12)])
def test_fovea_round_trip_is_exact_to_a_fraction_of_a_pixel(size: int, grid: int) -> None:
    rng = np.random.default_rng(size)
    cell = size / grid
    borders = [(0.0, 0.0), (size, size), (0.0, size), (size, 0.0), (cell, cell), (cell - 1e-4, size / 2),
               (size - 1e-4, 3 * cell)]
    points = np.concatenate([np.array(borders), rng.uniform(0, size, size=(500, 2))])
    targets = np.stack([encode_fovea_target(xy, size, grid) for xy in points])
    assert targets.shape == (len(points), 3, grid, grid) and targets.dtype == np.float32
    assert np.all(targets[:, 0].reshape(len(points), -1).sum(axis=1) == 1)
    assert targets.min() >= 0.0 and targets.max() <= 1.0
    # noise below the confident cell must not change the decision
    noisy = targets + rng.uniform(0, 0.4, size=targets.shape).astype(np.float32) * (1 - targets[:, :1])
    decoded = decode_fovea(torch.from_numpy(noisy), size)
    assert decoded.shape == (len(points), 2)
    np.testing.assert_allclose(decoded, points, atol=1e-3)
    np.testing.assert_allclose(decode_fovea(targets[3], size), points[3], atol=1e-3)


def test_fovea_target_cell_and_offsets_by_hand() -> None:
    target = encode_fovea_target((20.0, 5.0), size=64, grid=8)  # cells of 8 px
    assert target[0, 0, 2] == 1.0 and target[0].sum() == 1.0
    assert target[1, 0, 2] == pytest.approx(0.5) and target[2, 0, 2] == pytest.approx(0.625)


@pytest.mark.parametrize("xy", [(-1.0, 10.0), (10.0, 64.5), (float("nan"), 3.0)])
def test_fovea_outside_the_image_gives_an_empty_target(xy: tuple[float, float]) -> None:
    assert not encode_fovea_target(xy, size=64, grid=8).any()


def test_decode_fovea_rejects_wrong_map_count() -> None:
    with pytest.raises(ValueError, match=r"\(3, G, G\)"):
        decode_fovea(np.zeros((2, 8, 8)), 64)


def test_fovea_localiser_output_decodes_inside_the_image() -> None:
    model = small_model("fovea_localiser")
    xy = decode_fovea(model.predict(torch.randn(3, 4, 128, 128)), 128)
    assert xy.shape == (3, 2) and np.all((xy >= 0) & (xy <= 128))


def _batch_norm_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k or "num_batches" in k}


def test_frozen_classifier_trains_only_the_last_layer_and_keeps_batch_norm_statistics() -> None:
    model = small_model("glaucoma_classifier", frozen_backbone=True)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    assert model.num_parameters(trainable_only=True) == len(FINDINGS) * 4 * 4 + 1
    before = _batch_norm_state(model)
    model.train()
    assert model.training and not model.backbone.training
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    after = _batch_norm_state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.fc.weight.grad is not None

    model.unfreeze_backbone()  # control: end-to-end training does update the statistics
    model.train()
    model(torch.randn(2, 3, 64, 64))
    changed = _batch_norm_state(model)
    assert any(not torch.equal(before[k], changed[k]) for k in before if "running_mean" in k)
    assert all(p.requires_grad for p in model.parameters())


def test_finding_maps_are_fifteen_probability_maps() -> None:
    with torch.no_grad():
        maps = small_model("glaucoma_classifier").finding_maps(torch.randn(1, 3, 64, 64))
    assert maps.shape == (1, len(FINDINGS), 2, 2) and len(FINDINGS) == 15
    assert float(maps.min()) >= 0 and float(maps.max()) <= 1


@pytest.fixture()
def timm_weights_file(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A random timm classifier's state dict (5 classes), saved as a local weights file."""
    torch.manual_seed(1)
    state = timm.create_model(TINY_ENCODER, num_classes=5).state_dict()
    path = tmp_path / "encoder.pth"
    torch.save({"state_dict": state}, path)
    return path, state


def test_two_branch_encoders_load_local_weights(timm_weights_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, state = timm_weights_file
    model = small_model("disc_cup_segmenter", photo_encoder_weights=path, vessel_encoder_weights=path)
    torch.testing.assert_close(model.photo_encoder.conv_stem.weight, state["conv_stem.weight"])
    torch.testing.assert_close(model.photo_encoder.blocks[2][0].conv_pw.weight, state["blocks.2.0.conv_pw.weight"])
    # the one-channel vessel stem is timm's adaptation of the RGB stem (sum over channels)
    torch.testing.assert_close(model.vessel_encoder.conv_stem.weight, state["conv_stem.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(model.vessel_encoder.blocks[2][0].conv_pw.weight, state["blocks.2.0.conv_pw.weight"])


def test_classifier_loads_backbone_from_timm_checkpoint(timm_weights_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, state = timm_weights_file
    model = small_model("glaucoma_classifier", backbone_weights=path)
    torch.testing.assert_close(model.backbone.conv_stem.weight, state["conv_stem.weight"])
    torch.testing.assert_close(model.backbone.conv_head.weight, state["conv_head.weight"])


def test_classifier_loads_backbone_and_findings_from_own_checkpoint(tmp_path: Path) -> None:
    source = small_model("glaucoma_classifier")
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)  # differ from any fresh initialisation
    path = tmp_path / "classifier.pt"
    torch.save({"model": source.state_dict(), "epoch": 3}, path)
    target = small_model("glaucoma_classifier")
    fc_before = target.fc.weight.clone()
    assert target.load_backbone(path) == ["backbone", "findings"]
    for name in ("backbone", "findings"):
        for (key, a), b in zip(getattr(source, name).state_dict().items(), getattr(target, name).state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, msg=key)
    torch.testing.assert_close(target.fc.weight, fc_before)


def test_weights_that_do_not_fit_raise_data_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.pth"
    with pytest.raises(DataError, match="absent.pth"):
        small_model("disc_cup_segmenter", photo_encoder_weights=missing)
    wrong_architecture = tmp_path / "lcnet.pth"
    torch.save(timm.create_model("lcnet_035").state_dict(), wrong_architecture)
    with pytest.raises(DataError, match="lcnet.pth"):
        small_model("glaucoma_classifier", backbone_weights=wrong_architecture)
    partial = tmp_path / "partial.pth"
    state = timm.create_model(TINY_ENCODER).state_dict()
    del state["blocks.1.0.bn1.weight"]
    torch.save(state, partial)
    with pytest.raises(DataError, match=r"partial.pth.*blocks\.1\.0\.bn1\.weight"):
        small_model("fovea_localiser", vessel_encoder_weights=partial)
    not_a_checkpoint = tmp_path / "notes.pth"
    not_a_checkpoint.write_text("not weights")
    with pytest.raises(DataError, match="notes.pth"):
        small_model("glaucoma_classifier").load_backbone(not_a_checkpoint)


def test_pretrained_download_failure_is_explained_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FunduskitError, match="pretrained weights"):
        create_model("glaucoma_classifier", backbone=TINY_ENCODER, pretrained=True)


def test_unknown_model_and_argument_errors_list_what_exists() -> None:
    with pytest.raises(UnknownModelError, match="known models: disc_cup_segmenter, fovea_localiser"):
        create_model("cup_segmenter")
    with pytest.raises(UnknownModelError, match="accepts: .*decoder_channels"):
        create_model("disc_cup_segmenter", decoder_width=3)
    with pytest.raises(FunduskitError, match="unknown timm encoder 'efficientnet_b99'"):
        create_model("glaucoma_classifier", backbone="efficientnet_b99")


@pytest.mark.parametrize(
    ("name", "shape", "expected"),
    [
        ("disc_cup_segmenter", (1, 3, 64, 64), r"\(B, 4, H, W\).*\(1, 4, 64, 64\)"),
        ("disc_cup_segmenter", (2, 4, 100, 70), r"multiples of 32.*\(2, 4, 96, 64\) or \(2, 4, 128, 96\)"),
        ("vessel_discriminator", (1, 4, 96, 96), r"multiples of 64.*\(1, 4, 64, 64\) or \(1, 4, 128, 128\)"),
        ("glaucoma_classifier", (3, 64, 64), r"got \(3, 64, 64\)"),
    ],
)
def test_bad_input_shape_says_which_shape_works(name: str, shape: tuple[int, ...], expected: str) -> None:
    model = small_model(name)
    with pytest.raises(InputShapeError, match=expected):
        model.predict(torch.randn(shape))
    with pytest.raises(InputShapeError):
        model(torch.randn(shape))


def test_segmenter_class_is_shared_by_both_two_branch_models() -> None:
    assert model_class("disc_cup_segmenter") is model_class("fovea_localiser") is TwoBranchSegmenter
    assert model_class("glaucoma_classifier") is GlaucomaClassifier


def test_a_two_branch_network_without_vessel_branch_ignores_the_vessel_channel() -> None:
    """``vessel_encoder=None`` (the real preset's crop networks): the photo alone; the input keeps
    its fourth channel, whatever it holds."""
    import torch

    from funduskit.models import create_model

    torch.manual_seed(0)
    model = create_model("disc_cup_segmenter", photo_encoder="test_efficientnet", vessel_encoder=None,
                         decoder_channels=[8, 8, 8]).eval()
    assert model.vessel_encoder is None
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        plain = model(x)
        x[:, 3] = torch.randn(2, 64, 64) * 10
        assert torch.equal(model(x), plain) and plain.shape == (2, 1, 64, 64)
    model.train()
    model(torch.randn(2, 4, 64, 64)).mean().backward()  # trains: gradients reach the photo branch
    assert model.photo_encoder.conv_stem.weight.grad is not None
