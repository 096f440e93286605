"""`ssmkit demo vision`: the plugin declares its demo; the pipeline writes a table, a plot and one run per model."""

import yaml

from ssmkit.cli import main
from ssmkit.plugins import discover, resource_path
from ssmkit_vision.demo import DEMO_CONFIG, run_demo


def test_the_plugin_declares_its_demo(capsys):
    vision = next(i for i in discover() if i.name == "vision")
    assert vision.ok and vision.plugin.demo == "ssmkit_vision.demo:run_demo"
    assert main(["demo", "nosuchplugin"]) == 2
    assert "'vision'" in capsys.readouterr().err  # listed among the plugins with a demo


def test_demo_writes_table_plot_and_one_run_per_model(tmp_path):
    spec = yaml.safe_load(resource_path(DEMO_CONFIG).read_text())
    assert set(spec["models"]) == {"Vim", "Hydra", "ViT"}
    spec["overrides"]["model"].update(model_kwargs={"depth": 1, "embed_dim": 16}, warmup_steps=1)
    spec["overrides"]["trainer"].update(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(spec))
    table = run_demo(tmp_path / "out", config)
    for label, name in spec["models"].items():
        assert f"| {label} | `{name}` |" in table
    assert (tmp_path / "out" / "vision_digits.md").read_text().strip() == table.split("\n\nplot:")[0]
    assert (tmp_path / "out" / "vision_digits.png").stat().st_size > 10_000
    assert len(list((tmp_path / "out" / "vision" / "classify").iterdir())) == 3
