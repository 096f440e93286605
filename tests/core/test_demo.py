"""The demo pipeline (table + plot + one run per model) on a seconds-long config."""

import yaml

from ssmkit.cli import main
from ssmkit.plugins import resource_path
from ssmkit.synthetic.demo import DEMO_CONFIG, run_demo


def test_demo_writes_table_plot_and_runs(tmp_path):
    spec = yaml.safe_load(resource_path(DEMO_CONFIG).read_text())
    spec["models"] = {k: {**v, "mixer_kwargs": {}} for k, v in spec["models"].items()}
    spec["model"]["backbone"].update(d_model=16, n_layers=1)
    spec["data"].update(seq_len=12, n_train=128, n_val=32, batch_size=16)
    spec["trainer"].update(max_steps=4, val_check_interval=2)
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(spec))
    table = run_demo(tmp_path / "out", config)
    assert "| mamba | mamba |" in table and "| s4d | s4d |" in table and "| attention | attention |" in table
    assert (tmp_path / "out" / "selective_copy.png").stat().st_size > 10_000
    assert len(list((tmp_path / "out" / "synthetic" / "selective_copy").iterdir())) == 3


def test_demo_of_an_unknown_plugin_is_a_clear_error(capsys):
    assert main(["demo", "nosuchplugin"]) == 2
    err = capsys.readouterr().err
    assert "plugin 'nosuchplugin' not installed; plugins with a demo: [" in err and "'synthetic'" in err
