import subprocess
import sys

import numpy as np
import pytest

from ssmkit.train.plots import markdown_table, plot_confusion, plot_metrics


def test_markdown_table_right_aligns_number_columns():
    table = markdown_table(["model", "params", "acc"], [["mamba", "66,752", "**0.981** (0.9812)"], ["s4d", 71744, 0.6]])
    assert table.splitlines()[:2] == ["| model | params | acc |", "| --- | ---: | ---: |"]
    assert table.splitlines()[3] == "| s4d | 71744 | 0.6 |"
    with pytest.raises(ValueError, match="every row needs 3 cells"):
        markdown_table(["a", "b", "c"], [[1, 2]])


def test_plots_write_pngs(tmp_path):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,step,train/loss,val/loss,val/acc\n0,0,2.0,,\n0,1,1.5,,\n0,1,,1.7,0.4\n")
    assert plot_metrics(metrics, tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    out = plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], tmp_path / "deep" / "cm.png", "title")
    assert out.is_file()


def test_importing_the_plots_module_leaves_the_matplotlib_backend_alone():
    imports = "import matplotlib, ssmkit.train.plots, ssmkit.train.classification, ssmkit.train.callbacks"
    code = f"{imports}; print(matplotlib.rcParams._get_backend_or_none())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "None"  # nothing called matplotlib.use()


def test_markdown_table_takes_a_given_alignment():
    table = markdown_table(["op", "ms"], [["scan", "skipped"], ["conv", "1.5"]], align="lr")
    assert table.splitlines()[1] == "| --- | ---: |"
    with pytest.raises(ValueError, match="align needs one of"):
        markdown_table(["op", "ms"], [], align="lc")
