"""The tasks end to end on their quick configs: the classifier as the generator's evaluator (metrics written), and
`predict --data.labels walk,jump --data.n_samples 2` writing BVH + GIF files, then in-betweening
(`--model.keep_frames`)."""

import csv
from pathlib import Path

import pytest

from ssmkit.train.cli import run_task
from ssmkit_motion.bvh import read_bvh


@pytest.mark.slow  # ~30 s: two fits and a predict
def test_generate_with_an_evaluator_then_predict_labelled_motions(tmp_path):
    cli = run_task("fit", "motion.classify", [], runs_dir=tmp_path, quick=True)
    evaluator = Path(cli.trainer.logger.log_dir) / "checkpoints" / "last.ckpt"
    cli = run_task("fit", "motion.generate", ["--model.evaluator", str(evaluator)], runs_dir=tmp_path, quick=True)
    run_dir = Path(cli.trainer.logger.log_dir)
    rows = dict(csv.reader(open(run_dir / "val_generation.csv")))
    assert {"fid", "fid_real_train", "r_precision_top1", "diversity", "multimodality", "aits_s"} <= set(rows)
    assert (run_dir / "plots" / "val_samples.png").is_file()
    args = ["--ckpt_path", "last", "--data.labels", "walk,jump", "--data.n_samples", "2"]
    run_task("predict", "motion.generate", args, runs_dir=tmp_path, quick=True)
    folder = run_dir / "predict" / "generated"
    assert sorted(p.name for p in folder.glob("*.bvh")) == ["0_walk.bvh", "1_walk.bvh", "2_jump.bvh", "3_jump.bvh"]
    assert len(list(folder.glob("*.gif"))) == 4
    assert read_bvh(folder / "2_jump.bvh").n_frames == 16
    # in-betweening: the served test windows' first and last 4 frames given, the middle generated
    for path in folder.iterdir():
        path.unlink()
    run_task("predict", "motion.generate", [*args, "--model.keep_frames", "0:4,12:16"], runs_dir=tmp_path, quick=True)
    assert len(list(folder.glob("*.gif"))) == len(list(folder.glob("*.bvh"))) == 4
