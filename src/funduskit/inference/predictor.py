"""The networks of every task, run together on a batch of photographs.

:class:`Predictor` holds the ensembles (one list of loaded networks per task) and turns a batch of
``(H, W, 3)`` uint8 photographs into one :class:`PhotoPrediction` each, at the original size:

1. the network inputs are built once per (preprocessing, size) and shared by every ensemble
   member that takes them (letterbox to the square input, then the preprocessing);
2. the vessel map is computed once (mean of the vessel generators) and shared by the disc, cup
   and fovea networks, resized to each one's input size;
3. disc and cup: members' probability maps are averaged (in the letterboxed square), mapped back to
   the original size and post-processed (threshold, largest blob, holes filled, cup inside disc);
4. fovea: each member's maps are decoded to a point (most confident cell + offsets), mapped back
   to original pixels, and the points are averaged;
5. glaucoma: members' probabilities are averaged; their standard deviation is the spread.

Disc-centred crops and the two-stage path (beyond the report): a network trained on crops
(``data.view: disc``) sees each photograph's :class:`funduskit.data.view.CropBox`. A photograph that
is itself a disc crop (``views``) is its own crop; on a whole photograph the crop is cut around the
disc that the whole-photograph disc networks found (stage 1); the crop networks' disc and cup maps
replace the whole-photograph ones and their glaucoma probabilities are averaged with the
whole-photograph classifiers' (stage 2). The maps are pasted back into the photograph's pixels
(zero outside the crop). Crop networks that take a vessel map get the vessel generators' map of
the crop. The whole-photograph networks answer a crop only for a task that has no crop network.
A crop has no fovea: its ``fovea`` is None.

With test-time augmentation (``tta=True``) each network also sees the horizontally flipped input
(in the same batch); the flipped output is flipped back (fovea: ``x -> S - x``) and averaged
with the plain one before members are combined.

Every network is called through :class:`funduskit.inference.array_network.ArrayNetwork` (numpy
batch in, logits out) and everything between the networks is numpy, so a predictor of exported
networks never imports torch. Torch networks run in ``torch.inference_mode()``, in channels_last
memory format and under bf16 autocast where the device supports it (see
:class:`funduskit.runtime.device.Runtime`), on whole batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import expit

from funduskit.core.errors import FunduskitError
from funduskit.core.tasks import SEGMENTATION_TASKS, TASKS
from funduskit.data.sample import View
from funduskit.data.view import CropBox
from funduskit.inference.array_network import ArrayNetwork, as_array_network
from funduskit.inference.ensemble import mean_and_spread, mean_point
from funduskit.inference.model_store import RunInfo, Thresholds, required_tasks
from funduskit.inference.postprocess import clean_mask, postprocess_disc_cup
from funduskit.models.fovea import decode_fovea
from funduskit.models.maps import resize_maps
from funduskit.runtime.device import Runtime
from funduskit.scoring.metrics import vertical_cdr
from funduskit.transforms.preprocess import Geometry, preprocess

if TYPE_CHECKING:
    from torch import nn


@dataclass
class Member:
    """One trained network of an ensemble, on its device, in eval mode: an
    :class:`~funduskit.inference.array_network.ArrayNetwork`, or a torch module (the predictor
    wraps it in :class:`~funduskit.inference.array_network.TorchNetwork`)."""

    run: RunInfo
    network: ArrayNetwork | Any

    @property
    def size(self) -> int:
        return int(self.run.config.data.input_size)

    @property
    def preprocessing(self) -> str:
        return str(self.run.config.data.preprocessing)

    @property
    def view(self) -> str:
        """``"whole"`` or ``"disc"``: what the network was trained to see (``data.view``)."""
        return self.run.view

    @property
    def takes_vessel_map(self) -> bool:
        """False for a network trained with an all-zero vessel channel (``data.vessel_input: none``)."""
        return str(self.run.config.data.vessel_input) != "none"


def load_network(run: RunInfo, runtime: Runtime) -> nn.Module:
    """The trained network of a run (rebuilt from its checkpoint), in eval mode on the device,
    rewritten for inference (:func:`funduskit.runtime.optimise.optimise_for_inference`: batch norms
    folded, Winograd 3x3 convolutions on CPU, channels_last where it helps)."""
    from funduskit.runtime.optimise import optimise_for_inference

    return optimise_for_inference(_trained_network(run), runtime)


def _trained_network(run: RunInfo) -> nn.Module:
    if run.checkpoint.suffix == ".onnx":
        raise FunduskitError(f"{run.run_dir} is an ONNX export ({run.checkpoint.name}); predict with --backend onnx")
    from funduskit.runs.networks import (
        load_trained_model,  # the model zoo: timm, torchvision
    )

    network, _ = load_trained_model(run.checkpoint)
    return network.eval()


#: Makes the network of a run on a runtime: :func:`load_network` (torch, optimised) or
#: :func:`funduskit.inference.onnx_backend.load_onnx_network` (an ArrayNetwork).
NetworkLoader = Callable[[RunInfo, Runtime], "ArrayNetwork | nn.Module"]


@dataclass
class PhotoPrediction:
    """Everything predicted for one photograph, in original-image pixels.

    Attributes:
        mask: (H, W) uint8 REFUGE mask (0 = cup, 128 = rim, 255 = background), post-processed.
        disc_probability, cup_probability: (H, W) float32 ensemble-mean maps before thresholding.
        vessels: (H, W) float32 vessel probability.
        fovea: (x, y) ensemble mean, None on a disc crop; fovea_spread: RMS distance of the
            members' points to it (None with the fovea).
        glaucoma_probability: ensemble mean, or its combination with the vCDR of ``mask`` when
            the thresholds hold a glaucoma combiner; glaucoma_spread: standard deviation over members.
        member_probabilities: each classifier's probability (flips averaged): whole-photograph
            classifiers first, then crop classifiers, each in ensemble order.
        classifier_probability: the ensemble mean, when a combiner gave ``glaucoma_probability``.
        view: ``"whole"`` or ``"disc"``, what the photograph was taken to be.
        crop: the disc crop the crop networks saw, or None when none answered.
    """

    mask: np.ndarray
    disc_probability: np.ndarray
    cup_probability: np.ndarray
    vessels: np.ndarray
    fovea: tuple[float, float] | None
    fovea_spread: float | None
    glaucoma_probability: float
    glaucoma_spread: float
    member_probabilities: list[float] = field(default_factory=list)
    classifier_probability: float | None = None
    view: View = "whole"
    crop: CropBox | None = None


class Predictor:
    """Ensembles of every task, applied to batches of photographs.

    Args:
        ensembles: task (``vessel``, ``disc``, ``cup``, ``fovea``, ``glaucoma``) -> loaded members;
            disc and cup need at least one, vessel when a network takes its map; without fovea
            networks ``fovea`` is None, without classifiers the glaucoma probability is NaN.
        runtime: device, precision and memory format (:func:`funduskit.runtime.device.resolve_runtime`).
        thresholds: disc and cup thresholds of the post-processing.
        tta: also run every network on the horizontally flipped input and average.

    Example:
        >>> predictor = Predictor.from_runs(find_runs("models"), runtime)  # doctest: +SKIP
        >>> [prediction] = predictor.predict([load_image("eye.jpg")])  # doctest: +SKIP
    """

    def __init__(
        self,
        ensembles: Mapping[str, Sequence[Member]],
        runtime: Runtime,
        thresholds: Thresholds = Thresholds(),
        *,
        tta: bool = False,
    ):
        runs = {task: [member.run for member in members] for task, members in ensembles.items()}
        missing = [task for task in required_tasks(runs) if not ensembles.get(task)]
        if missing:
            raise ValueError(f"Predictor needs at least one network for {', '.join(missing)}")
        self.ensembles = {task: [replace(member, network=as_array_network(member.network, runtime)) for member in members]
                          for task, members in ensembles.items()}
        self.runtime = runtime
        self.thresholds = thresholds
        self.tta = tta

    @classmethod
    def from_runs(
        cls, runs: Mapping[str, Sequence[RunInfo]], runtime: Runtime, thresholds: Thresholds = Thresholds(), *,
        tta: bool = False, loader: NetworkLoader | None = None,
    ) -> Predictor:
        """Load every run's network onto ``runtime``'s device with ``loader`` (default
        :func:`load_network`); any torch module or ArrayNetwork mapping the input batch to logits will do."""
        loader = loader or load_network
        ensembles = {task: [Member(run, loader(run, runtime)) for run in items] for task, items in runs.items()}
        return cls(ensembles, runtime, thresholds, tta=tta)

    # ----------------------------------------------------------------------------------------

    @property
    def input_specs(self) -> set[tuple[str, int]]:
        """The (preprocessing, size) network inputs this predictor's members take."""
        return {(m.preprocessing, m.size) for members in self.ensembles.values() for m in members}

    def prepare(self, images: Sequence[np.ndarray]) -> PreparedInputs:
        """The network inputs of a batch as numpy arrays (CPU only, no torch: safe to run in a
        decoding thread while the networks work on the previous batch)."""
        return prepare_inputs(images, self.input_specs)

    def predict(self, images: Sequence[np.ndarray], prepared: PreparedInputs | None = None,
                views: Sequence[View] | None = None) -> list[PhotoPrediction]:
        """Predict a batch of photographs.

        Args:
            images: B arrays (H_i, W_i, 3) uint8 RGB; sizes may differ.
            prepared: their network inputs from :meth:`prepare`, if already made.
            views: each photograph's view (``"whole"`` or ``"disc"``); default all whole.
        Returns:
            B predictions, in order.
        Raises:
            FunduskitError: a whole photograph and no whole-photograph disc network to find its disc.
        """
        if not images:
            return []
        views = list(views) if views is not None else ["whole"] * len(images)
        whole = {task: self._members(task, "whole") for task in TASKS}
        if "whole" in views and not whole["disc"]:
            raise FunduskitError(
                "whole photographs need a disc network trained on whole photographs (data.view: whole) to find "
                "the disc the crop networks look at; add one, or predict disc crops with --view disc"
            )
        inputs = _InputCache(images, prepared)
        vessel_square = inputs.vessels = self._vessels(inputs)  # (B, 1, Sv, Sv), letterboxed square
        vessel_maps = [Geometry.for_image(image, vessel_square.shape[-1]).map_to_original(
            vessel_square[index, 0]) if self.ensembles.get("vessel")
            else np.zeros(image.shape[:2], np.float32) for index, image in enumerate(images)]
        maps = {task: self._segmentation_maps(whole[task], inputs) for task in SEGMENTATION_TASKS}
        foveae = self._fovea(whole["fovea"], inputs) if whole["fovea"] else [[] for _ in images]
        glaucoma = self._glaucoma(whole["glaucoma"], inputs) if whole["glaucoma"] else [[] for _ in images]

        boxes = [self._crop_box(image, view, maps["disc"][index]) for index, (image, view) in enumerate(zip(images, views))]
        cropped = self._crop_stage(images, boxes)
        predictions = []
        for index, (image, view) in enumerate(zip(images, views)):
            answers = cropped[index]
            nothing = np.zeros(image.shape[:2], np.float32)  # stage 1 found no disc, and no whole network has the task
            disc_map = answers.get("disc", maps["disc"][index])
            cup_map = answers.get("cup", maps["cup"][index])
            disc_map = nothing if disc_map is None else disc_map
            cup_map = nothing if cup_map is None else cup_map
            mask = postprocess_disc_cup(disc_map, cup_map, self.thresholds.disc, self.thresholds.cup)
            members = answers.get("glaucoma", [])
            if view == "whole" or not members:
                members = [*glaucoma[index], *members]
            fovea, fovea_spread = mean_point(foveae[index]) if view == "whole" and foveae[index] else (None, None)
            probability, spread = mean_and_spread(members) if members else (float("nan"), float("nan"))
            classifier_probability = None
            if self.thresholds.glaucoma is not None and members:
                classifier_probability = probability
                probability = self.thresholds.glaucoma.probability(probability, vertical_cdr(mask))
            predictions.append(PhotoPrediction(
                mask=mask,
                disc_probability=disc_map,
                cup_probability=cup_map,
                vessels=vessel_maps[index],
                fovea=fovea,
                fovea_spread=fovea_spread,
                glaucoma_probability=probability,
                glaucoma_spread=spread,
                member_probabilities=[float(p) for p in members],
                classifier_probability=classifier_probability,
                view=view,
                crop=boxes[index] if answers else None,
            ))
        return predictions

    # ----------------------------------------------------------------------------------------

    def _members(self, task: str, view: str) -> list[Member]:
        return [member for member in self.ensembles.get(task, []) if member.view == view]

    def _crop_box(self, image: np.ndarray, view: View, disc_map: np.ndarray | None) -> CropBox | None:
        """The crop the crop networks see: the photograph itself when it is a disc crop, else the
        square around the disc found on the whole photograph (its largest blob); None without crop
        networks or when no disc was found."""
        if not any(self._members(task, "disc") for task in ("disc", "cup", "glaucoma")):
            return None
        if view == "disc":
            return CropBox.whole(image)
        assert disc_map is not None, "whole photographs have a whole-photograph disc network (checked above)"
        return CropBox.around(clean_mask(disc_map, self.thresholds.disc))

    def _crop_stage(self, images: Sequence[np.ndarray], boxes: Sequence[CropBox | None]) -> list[dict[str, object]]:
        """The crop networks' answers per photograph: ``disc`` and ``cup`` (H, W) float32 maps in
        the photograph's pixels, ``glaucoma`` each classifier's probability; {} without a crop."""
        answers: list[dict[str, object]] = [{} for _ in images]
        rows = [index for index, box in enumerate(boxes) if box is not None]
        if not rows:
            return answers
        crops = [boxes[index].cut(images[index]) for index in rows]  # type: ignore[union-attr]
        inputs = _InputCache(crops)
        if any(member.takes_vessel_map for task in SEGMENTATION_TASKS for member in self._members(task, "disc")):
            inputs.vessels = self._vessels(inputs)  # on the crop, as training cuts the photo first
        for task in SEGMENTATION_TASKS:
            members = self._members(task, "disc")
            if members:
                squares = self._segmentation(members, inputs)  # (N, S, S): the crops are square
                for row, index in enumerate(rows):
                    answers[index][task] = boxes[index].paste(squares[row], images[index].shape[:2])  # type: ignore[union-attr]
        members = self._members("glaucoma", "disc")
        if members:
            for index, probabilities in zip(rows, self._glaucoma(members, inputs)):
                answers[index]["glaucoma"] = probabilities
        return answers

    def _run(self, member: Member, x: np.ndarray) -> np.ndarray:
        """Sigmoid outputs (float32) of one member on a prepared batch."""
        return expit(np.asarray(member.network(x), dtype=np.float32))

    def _vessels(self, inputs: _InputCache) -> np.ndarray:
        """(B, 1, S, S) mean vessel probability of the vessel generators (largest S among them;
        (B, 1, 1, 1) zeros without vessel generators)."""
        maps = [self._run(member, inputs.get(member)) for member in self.ensembles.get("vessel", [])]
        if not maps:
            return np.zeros((len(inputs.images), 1, 1, 1), np.float32)
        size = max(m.shape[-1] for m in maps)
        return np.mean([resize_maps(m, size) for m in maps], axis=0, dtype=np.float32)

    def _segmentation_maps(self, members: Sequence[Member], inputs: _InputCache) -> list[np.ndarray | None]:
        """Per photograph, the members' (H, W) mean map in its pixels (None each without members)."""
        if not members:
            return [None] * len(inputs.images)
        squares = self._segmentation(members, inputs)
        return [Geometry.for_image(image, squares.shape[-1]).map_to_original(square)
                for image, square in zip(inputs.images, squares)]

    def _segmentation(self, members: Sequence[Member], inputs: _InputCache) -> np.ndarray:
        """(B, S, S) float32 ensemble-mean probability in the letterboxed square (largest S)."""
        maps = []
        for member in members:
            output = self._run(member, inputs.get(member, with_vessels=True, flip=self.tta))
            maps.append(self._unflip_maps(output))
        size = max(m.shape[-1] for m in maps)
        mean = np.mean([resize_maps(m, size) for m in maps], axis=0, dtype=np.float32)
        return mean[:, 0]

    def _unflip_maps(self, output: np.ndarray) -> np.ndarray:
        """With TTA, average the plain half and the flipped-back second half of a (2B, C, H, W) output."""
        if not self.tta:
            return output
        plain, flipped = np.split(output, 2)
        return (plain + flipped[..., ::-1]) / 2

    def _fovea(self, members: Sequence[Member], inputs: _InputCache) -> list[list[tuple[float, float]]]:
        """Per photograph, one (x, y) in original pixels per member and flip."""
        batch = len(inputs.images)
        points: list[list[tuple[float, float]]] = [[] for _ in range(batch)]
        for member in members:
            output = self._run(member, inputs.get(member, with_vessels=True, flip=self.tta))
            xy = decode_fovea(output, member.size)  # (B or 2B, 2) network pixels
            if self.tta:
                xy[batch:, 0] = member.size - xy[batch:, 0]
            for row, (x, y) in enumerate(xy):
                image = inputs.images[row % batch]
                original = Geometry.for_image(image, member.size).points_to_original((x, y))
                points[row % batch].append((float(original[0]), float(original[1])))
        return points

    def _glaucoma(self, members: Sequence[Member], inputs: _InputCache) -> list[list[float]]:
        """Per photograph, each classifier's probability (flips averaged)."""
        batch = len(inputs.images)
        per_member = []
        for member in members:
            output = self._run(member, inputs.get(member, flip=self.tta)).reshape(-1)
            if self.tta:
                output = output.reshape(2, batch).mean(axis=0)
            per_member.append(output)
        return np.stack(per_member, axis=1).tolist()


class _InputCache:
    """Network inputs of a batch, each built once and shared by every member that takes it.

    A key is (preprocessing, size, with the vessel channel, with the flipped copy); batches are
    C-contiguous float32 (B, C, S, S) numpy arrays (a torch network moves them to its device).
    ``vessels`` (B, 1, Sv, Sv) must be set before inputs with the vessel channel are asked for.
    """

    def __init__(self, images: Sequence[np.ndarray], prepared: PreparedInputs | None = None):
        self.images = list(images)
        self.prepared = prepared or {}
        self.vessels: np.ndarray | None = None
        self._batches: dict[tuple[str, int, bool, bool, bool], np.ndarray] = {}

    def get(self, member: Member, *, with_vessels: bool = False, flip: bool = False) -> np.ndarray:
        """(B, 3 or 4, S, S), or (2B, ...) with the flipped copy after the plain batch."""
        vessel_map = with_vessels and member.takes_vessel_map
        key = (member.preprocessing, member.size, with_vessels, vessel_map, flip)
        if key not in self._batches:
            if flip:
                plain = self.get(member, with_vessels=with_vessels)
                batch = np.concatenate([plain, plain[..., ::-1]])
            elif with_vessels:
                photo = self.get(member)
                if vessel_map:
                    assert self.vessels is not None, "the vessel map is computed first"
                    channel = resize_maps(self.vessels, member.size).astype(photo.dtype)
                else:  # trained with an all-zero vessel channel (data.vessel_input: none)
                    channel = np.zeros_like(photo[:, :1])
                batch = np.concatenate([photo, channel], axis=1)
            else:
                spec = (member.preprocessing, member.size)
                arrays = self.prepared.get(spec)
                if arrays is None:
                    arrays = prepare_inputs(self.images, [spec])[spec]
                batch = arrays.transpose(0, 3, 1, 2)
            self._batches[key] = np.ascontiguousarray(batch, dtype=np.float32)
        return self._batches[key]


PreparedInputs = dict[tuple[str, int], np.ndarray]
"""(preprocessing, size) -> (B, S, S, 3) float32 network inputs of a batch."""


def prepare_inputs(images: Sequence[np.ndarray], specs: Iterable[tuple[str, int]]) -> PreparedInputs:
    """The network inputs of ``images`` for each (preprocessing, size) in ``specs`` ({} for no image)."""
    if not images:
        return {}
    return {
        (name, size): np.stack([network_input(image, name, size) for image in images])
        for name, size in specs
    }


def network_input(image: np.ndarray, preprocessing: str, size: int) -> np.ndarray:
    """The (S, S, 3) float32 network input of a (H, W, 3) uint8 photograph: letterboxed to
    ``size`` x ``size``, then preprocessed (``funduskit.transforms.preprocess.PREPROCESSINGS``)."""
    return preprocess(Geometry.for_image(image, size).to_network(image), preprocessing)


