"""The rich tables of a result document: networks, pipelines, the predict command, targets."""

from __future__ import annotations

from typing import Any


def _number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10 ** -digits or value == 0 else f"{value:.1e}"
    return str(value)


def render(result: dict[str, Any]) -> list[Any]:
    """The rich tables of a result document."""
    from rich.table import Table

    machine = result["machine"]
    peaks = result.get("matmul_gflops", {})
    title = (f"{machine['cpu']}, {machine['threads']} thread(s), torch {machine['torch']}, "
             f"onnxruntime {machine['onnxruntime']}; matmul peak fp32 {_number(peaks.get('fp32'), 0)} GFLOP/s, "
             f"bf16 {_number(peaks.get('bf16'), 1)} GFLOP/s")
    networks = Table(title=f"Networks — {title}", title_justify="left")
    for column in ("network", "input", "mode", "precision", "s/photo", "photos/s (batch)", "speed-up",
                   "(separate)", "peak MB", "GFLOP/photo", "GFLOP/s", "% peak", "max |Δp|"):
        networks.add_column(column, justify="left" if column in ("network", "mode", "precision") else "right")
    for row in result["networks"]:
        if "error" in row:
            networks.add_row(row["task"], "", row["mode"], f"[red]{row['error'][:60]}")
            continue
        fraction = row.get("fraction_of_peak")
        networks.add_row(
            row["task"], "x".join(map(str, row.get("input", []))), row["mode"], row["precision"],
            _number(row["seconds_per_photo"], 3), f"{_number(row['photos_per_second'])} ({row['batch']})",
            _number(row.get("speedup")), _number(row.get("separate_speedup")), _number(row.get("peak_rss_mb"), 0),
            _number(row.get("gflop_per_photo"), 1),
            _number(row.get("achieved_gflops"), 1), _number(fraction * 100 if fraction else None, 0),
            _number(row.get("max_probability_difference"), 4) if row["mode"] != "baseline" else "",
        )
    pipelines = Table(title="Pipelines (photo in, post-processed answers out; synthetic 2124x2056 / 1634x1634 "
                            "photos); speed-up: baseline timed in turns in the same process where shown, else "
                            "separate runs", title_justify="left")
    for column in ("pipeline", "mode", "precision", "s/photo", "photos/s (batch)", "speed-up", "(separate)",
                   "peak MB (batch 1)", "peak MB", "disc Dice", "cup Dice", "fovea px", "|Δ prob|"):
        pipelines.add_column(column, justify="left" if column in ("pipeline", "mode", "precision") else "right")
    for row in result["pipelines"]:
        if "error" in row:
            pipelines.add_row(row["pipeline"], row["mode"], f"[red]{row['error'][:60]}")
            continue
        agreement = row.get("agreement") or {}
        pipelines.add_row(
            row["pipeline"], row["mode"], row["precision"], _number(row["seconds_per_photo"], 3),
            f"{_number(row['photos_per_second'])} ({row['batch']})", _number(row.get("speedup")),
            _number(row.get("separate_speedup")), _number(row.get("peak_rss_mb_batch_1"), 0),
            _number(row.get("peak_rss_mb"), 0), _number(agreement.get("disc_dice"), 4),
            _number(agreement.get("cup_dice"), 4), _number(agreement.get("fovea_px"), 2),
            _number(agreement.get("glaucoma_probability"), 4),
        )
    command = Table(title="funduskit predict --backend onnx, report ensemble (real command, default batch; "
                          "time includes loading the networks)", title_justify="left")
    for column in ("photos", "wall s", "s/photo", "peak MB"):
        command.add_column(column, justify="right")
    for row in result.get("predict_command", []):
        if "error" in row:
            command.add_row(f"[red]{row['error'][:80]}")
            continue
        command.add_row(str(row["photos"]), _number(row["seconds"], 1), _number(row["seconds_per_photo"]),
                        _number(row["peak_rss_mb"], 0))
    targets = Table(title=f"Targets of issue 16 for this CPU kind ({machine.get('kind', '?')}: {machine.get('cpu_flags', '?')})",
                    title_justify="left")
    for column in ("target", "measured", "met"):
        targets.add_column(column)
    for name, target in result.get("targets", {}).items():
        value = target["value"]
        shown = ", ".join(f"{k} photos: {v:.0f} MB" for k, v in value.items()) if isinstance(value, dict) else _number(value)
        shown = target.get("why", shown)
        targets.add_row(name + (f" ({target['mode']})" if "mode" in target else ""), shown,
                        "[green]yes" if target["met"] else "[red]no")
    return [networks, pipelines, command, targets]
