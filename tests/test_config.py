"""Training configurations: presets, YAML round trip, overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from funduskit.core.config import (
    TASKS,
    TrainConfig,
    load_config,
    override,
    parse_assignment,
    preset,
    save_config,
)
from funduskit.core.errors import DataError, FunduskitError
from funduskit.core.presets import PRESET_NAMES


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_preset_survives_a_yaml_round_trip(tmp_path: Path, task: str, name: str) -> None:
    config = preset(task, name)
    assert isinstance(config, TrainConfig) and config.task == task and config.preset == name
    path = save_config(config, tmp_path / "config.yaml")
    assert load_config(path) == config
    assert path.read_text().startswith("task: ")


def test_paper_preset_holds_the_reports_numbers() -> None:
    for task in ("disc", "cup", "fovea"):
        config = preset(task, "paper")
        assert (config.data.input_size, config.batch_size) == (640, 4)
        assert config.model.kwargs["photo_encoder"] == "efficientnet_b4"
        assert config.model.kwargs["vessel_encoder"] == "efficientnet_b0"
        assert config.data.preprocessing == "standardize"
    fovea = preset("fovea", "paper")
    assert fovea.optimizer.lr == 1e-5 and fovea.scheduler.name == "constant"
    glaucoma = preset("glaucoma", "paper")
    assert (glaucoma.data.input_size, glaucoma.batch_size) == (1024, 64)
    assert (glaucoma.optimizer.name, glaucoma.optimizer.lr, glaucoma.optimizer.momentum) == ("sgd", 1e-3, 0.9)
    assert (glaucoma.scheduler.name, glaucoma.scheduler.factor, glaucoma.scheduler.patience) == ("plateau_reset", 0.1, 10)
    vessel = preset("vessel", "paper")
    assert vessel.loss.kwargs["adversarial_weight"] == 0.1
    assert vessel.optimizer.betas == [0.5, 0.999] and vessel.discriminator is not None


def test_presets_are_fresh_objects() -> None:
    first = preset("disc", "cpu")
    first.model.kwargs["photo_encoder"] = "changed"
    assert preset("disc", "cpu").model.kwargs["photo_encoder"] != "changed"


def test_override_sets_nested_fields_and_model_arguments() -> None:
    config = override(preset("cup", "cpu"), {"data.fold": 3, "epochs": 2, "model.kwargs.photo_encoder": "x",
                                             "optimizer.lr": 0.5})
    assert (config.data.fold, config.epochs, config.model.kwargs["photo_encoder"], config.optimizer.lr) == (3, 2, "x", 0.5)


@pytest.mark.parametrize("key", ["data.colour", "optimiser.lr", "epochs.count"])
def test_unknown_keys_are_named(key: str) -> None:
    with pytest.raises(FunduskitError, match="unknown"):
        override(preset("disc", "cpu"), {key: 1})


def test_section_absent_for_the_task_is_explained() -> None:
    with pytest.raises(FunduskitError, match="no section 'discriminator'"):
        override(preset("disc", "cpu"), {"discriminator.kwargs.base_width": 4})


def test_bad_names_and_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FunduskitError, match="unknown task"):
        preset("macula", "cpu")
    with pytest.raises(FunduskitError, match="unknown preset"):
        preset("disc", "gpu")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: disc\nepoch: 3\n")
    with pytest.raises(DataError, match=r"bad\.yaml.*unknown key\(s\) epoch"):
        load_config(bad)
    with pytest.raises(DataError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_parse_assignment_reads_yaml_values() -> None:
    assert parse_assignment("data.input_size=256") == ("data.input_size", 256)
    assert parse_assignment("init.pretrained=true") == ("init.pretrained", True)
    assert parse_assignment("model.kwargs.decoder_channels=[8, 4]") == ("model.kwargs.decoder_channels", [8, 4])
    with pytest.raises(FunduskitError, match="KEY=VALUE"):
        parse_assignment("epochs")


def test_a_configuration_written_before_the_precision_setting_is_read(tmp_path: Path) -> None:
    """0.1 wrote ``runtime.bf16: auto | on | off``; it is read as ``runtime.precision``."""
    for old, new in (("auto", "auto"), ("'on'", "bf16"), ("'off'", "fp32"), ("on", "bf16"), ("off", "fp32")):
        data = preset("disc", "cpu").to_dict()
        del data["runtime"]["precision"]
        text = yaml.safe_dump(data, sort_keys=False).replace("  channels_last: true\n",
                                                             f"  channels_last: true\n  bf16: {old}\n")
        path = tmp_path / "config.yaml"
        path.write_text(text)
        assert load_config(path).runtime.precision == new, old
