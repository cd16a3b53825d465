"""The fast ensemble (``funduskit predict --ensemble fast``): fewer members of each task's ensemble.

The report's answer is the mean of every member of every task's ensemble (8 classifiers, 4 disc,
2 cup, 10 fovea networks). The fast ensemble keeps, of each task and view (whole-photograph and
disc-crop networks are separate stages), the first :data:`FAST_MEMBERS` members by run directory,
spread over the classifiers' preprocessings (the report's /255 and zero-local-mean members
alternate), so its answers differ a little from the full ensemble's: how much, on held-out real
photographs, is measured by ``benchmarks/fast_ensemble.py`` (docs/performance.md).

A models folder may name its own fast members in ``fast.yaml`` (the format of ``models.yaml``);
the tasks it leaves out follow the rule above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from funduskit.inference.model_store import RunInfo, runs_from_manifest

ENSEMBLES: tuple[str, ...] = ("full", "fast")
#: A models folder's own choice of fast members (same format as ``models.yaml``).
FAST_FILE = "fast.yaml"
#: Members the fast ensemble keeps of each task and view (see the module doc).
FAST_MEMBERS: dict[str, int] = {"vessel": 1, "disc": 1, "cup": 1, "fovea": 1, "glaucoma": 1}


def fast_subset(runs: Mapping[str, Sequence[RunInfo]], counts: Mapping[str, int] = FAST_MEMBERS
                ) -> dict[str, list[RunInfo]]:
    """Of each task's runs, per view, the first ``counts[task]`` by run directory, taken in turn
    from each preprocessing (so two classifiers of a report ensemble are one of each).

    Args:
        runs: task -> the full ensemble's runs.
        counts: members to keep per task and view (tasks absent: all).
    Returns:
        task -> the kept runs, in the order of ``runs``.
    """
    kept: dict[str, list[RunInfo]] = {}
    for task, items in runs.items():
        limit = counts.get(task)
        if limit is None:
            kept[task] = list(items)
            continue
        chosen: set[int] = set()
        for view in dict.fromkeys(run.view for run in items):
            groups: dict[str, list[int]] = {}
            for index, run in enumerate(items):
                if run.view == view:
                    groups.setdefault(str(run.config.data.preprocessing), []).append(index)
            ordered = [sorted(group, key=lambda i: str(items[i].run_dir)) for group in groups.values()]
            turns = [group[depth] for depth in range(max(map(len, ordered))) for group in ordered if depth < len(group)]
            chosen.update(turns[:limit])
        kept[task] = [run for index, run in enumerate(items) if index in chosen]
    return kept


def select_ensemble(runs: Mapping[str, Sequence[RunInfo]], ensemble: str, models_dir: str | Path | None = None,
                    origin: Mapping[str, str] | None = None) -> dict[str, list[RunInfo]]:
    """The runs ``--ensemble`` asks for: all of them (``"full"``), or the fast ensemble's.

    Args:
        runs: task -> the full ensemble's runs.
        ensemble: ``"full"`` or ``"fast"``.
        models_dir: the user's models folder; its ``fast.yaml``, if any, names the fast members of
            the tasks it lists (tasks that came from elsewhere, per ``origin``, keep the rule).
        origin: task -> where its runs came from (``str(models_dir)`` for the folder's own).
    """
    if ensemble not in ENSEMBLES:
        raise ValueError(f"unknown ensemble {ensemble!r}; choose from {', '.join(ENSEMBLES)}")
    if ensemble == "full":
        return {task: list(items) for task, items in runs.items()}
    chosen = fast_subset(runs)
    manifest = Path(models_dir) / FAST_FILE if models_dir is not None else None
    if manifest is not None and manifest.is_file():
        named: dict[str, list[RunInfo]] = {}
        for run in runs_from_manifest(manifest):
            named.setdefault(run.task, []).append(run)
        for task, items in named.items():
            if task in chosen and (origin is None or origin.get(task) == str(models_dir)):
                chosen[task] = items
    return chosen
