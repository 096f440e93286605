"""audio.classify end to end on its quick config: the report's clips (WAV files to listen to, spectrograms), the
predictions of a folder of WAVs by file name, and the recipe configs (FSDD, log-mel, CNN) over the default."""

import csv
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from ssmkit.models import BackboneConfig
from ssmkit.plugins import find_task
from ssmkit.train.cli import run_task
from ssmkit_audio.datamodules import SpokenDigitsData
from ssmkit_audio.tasks import SpokenDigitClassifier

REPO = Path(__file__).parents[3]
SAMPLES = REPO / "data" / "audio" / "fsdd"
CONFIGS = find_task("audio.classify")[2].config_path().parent


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    cli = run_task("fit", "audio.classify", [], runs_dir=runs, quick=True)
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    return Path(cli.trainer.logger.log_dir), runs


def test_fit_and_test_write_clips_to_listen_to(quick_run):
    run_dir, _ = quick_run
    for stage in ("val", "test"):
        assert (run_dir / f"plots/{stage}_clips.png").is_file()
        assert (run_dir / f"plots/{stage}_confusion.png").is_file()
        wavs = sorted((run_dir / "clips").glob(f"{stage}_*.wav"))
        assert len(wavs) == 4, wavs
        info = sf.info(wavs[0])
        assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16") and info.frames > 1000
    shown = sorted(p.name for p in (run_dir / "clips").glob("test_*"))
    assert shown == ["test_0_spk2_20.wav", "test_1_spk2_26.wav", "test_2_spk2_52.wav", "test_3_spk2_59.wav"]


def test_predict_a_folder_of_wavs_names_each_file(quick_run):
    run_dir, runs = quick_run
    args = ["--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"), "--data.predict_path", str(SAMPLES)]
    cli = run_task("predict", "audio.classify", args, runs_dir=runs, quick=True)
    rows = list(csv.DictReader(open(Path(cli.trainer.logger.log_dir) / "predictions.csv")))
    assert [r["item"] for r in rows] == sorted(p.name for p in SAMPLES.glob("*.wav"))
    assert "label" not in rows[0] and [k for k in rows[0] if k.startswith("p_")] == [f"p_{d}" for d in range(10)]
    assert all(abs(sum(float(v) for k, v in r.items() if k.startswith("p_")) - 1) < 1e-4 for r in rows)


def overlay(*names: str) -> dict:
    """The default config with the recipe files over it (model and data sections merged one level deep)."""
    config = yaml.safe_load((CONFIGS / "classify.yaml").read_text())
    for name in names:
        for section, values in yaml.safe_load((CONFIGS / name).read_text()).items():
            config[section] = {**config.get(section, {}), **values}
    return config


@pytest.mark.parametrize("recipe", [(), ("logmel.yaml",), ("cnn.yaml",)], ids=["raw", "logmel", "cnn"])
def test_recipes_build_their_models(recipe):
    model = overlay(*recipe)["model"]
    backbone = BackboneConfig(**model.pop("backbone"))
    classifier = SpokenDigitClassifier(n_classes=10, sample_rate=8000, max_length=8000, backbone=backbone, **model)
    n_params = sum(p.numel() for p in classifier.parameters())
    assert 20_000 < n_params < 500_000, n_params


def test_fsdd_recipe_names_the_shared_folder_and_its_speakers():
    data = overlay("fsdd.yaml")["data"]
    assert (REPO / data["root"]).resolve() == REPO.parent.resolve() / "shared" / "data" / "audio" / "fsdd"
    SpokenDigitsData(**data)  # every key is an argument of the data module
