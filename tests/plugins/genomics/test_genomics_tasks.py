"""Each task's quick config end to end through the `ssmkit` command, and the predict runs."""

import csv

import pytest
import torch
from Bio import SeqIO

from ssmkit.cli import main
from ssmkit.models.backbone import BackboneConfig
from ssmkit_genomics.tasks import GenomicsClassifier, GenomicsLM, warmup_length
from ssmkit_genomics.tokenizer import SEP, A, T

TINY_HYENA = BackboneConfig(d_model=8, n_layers=1, mixer="hyena", mixer_kwargs={"filter_order": 4})


def fit(task, tmp_path, *args):
    assert main(["fit", f"genomics.{task}", "--quick", "--runs_dir", str(tmp_path), *args]) == 0
    return tmp_path / "genomics" / task


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    return fit("pretrain", tmp_path_factory.mktemp("runs")) / "version_0"


def test_pretrain_quick_writes_checkpoints_and_plots(pretrained):
    assert (pretrained / "checkpoints" / "last.ckpt").is_file()
    assert {p.name for p in (pretrained / "plots").iterdir()} == {"loss.png", "val_bpb_vs_context.png"}
    header = (pretrained / "metrics.csv").read_text().splitlines()[0]
    assert "val/bpb" in header
    ckpt = torch.load(pretrained / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["backbone_config"]["mixer_kwargs"] == {"l_max": 128, "order": 2, "filter_order": 8}


def test_generate_is_predict_of_pretrain(pretrained, tmp_path):
    runs = pretrained.parents[2]
    args = ["predict", "genomics.pretrain", "--quick", "--runs_dir", str(runs), "--ckpt_path", "last"]
    assert main([*args, "--data.prompts", "ACGTTGCA", "--data.top_k", "3", "--data.generate_tokens", "10"]) == 0
    (out,) = runs.glob("genomics/pretrain/version_*/predict/generated.fasta")
    (record,) = SeqIO.parse(out, "fasta")
    assert str(record.seq).startswith("ACGTTGCA") and len(record.seq) == 18  # bases only, as many as asked
    assert "8 prompt bases + 10 sampled" in record.description


def test_generate_without_prompts_continues_held_out_windows(pretrained):
    """predict needs no flag: the prompts default to the starts of held-out windows (quick: 64 // 4 bases)."""
    runs = pretrained.parents[2]
    args = ["predict", "genomics.pretrain", "--quick", "--runs_dir", str(runs), "--ckpt_path", "last"]
    assert main(args) == 0
    out = max(runs.glob("genomics/pretrain/version_*/predict/generated.fasta"), key=lambda p: p.stat().st_mtime)
    records = list(SeqIO.parse(out, "fasta"))
    assert [r.id for r in records] == [f"heldout_{i}_generated" for i in range(len(records))] and records
    assert all(len(r.seq) == 16 + 16 for r in records)  # 16 prompt bases + 16 sampled


def test_generate_refuses_to_pass_max_length():
    model = GenomicsLM(max_length=16, backbone=TINY_HYENA)
    with pytest.raises(ValueError, match="exceeds max_length=16"):
        model.generate(torch.tensor([[2, 3, 4]]), 14)
    assert model.generate(torch.tensor([[2, 3, 4]]), 13, greedy=True).shape == (1, 16)


def test_classify_quick_from_pretrain_then_predict(pretrained, tmp_path, capsys):
    ckpt = pretrained / "checkpoints" / "last.ckpt"
    run = fit("classify", tmp_path, "--model.init_from", str(ckpt)) / "version_0"
    assert (run / "plots" / "val_confusion.png").is_file() and (run / "val_confusion.csv").is_file()
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert all(m in header for m in ("val/acc", "val/mcc", "val/f1"))
    assert "max_length: 128" in (run / "config.yaml").read_text()  # linked from the data
    fasta = tmp_path / "x.fa"
    fasta.write_text(">a\nACGTACGT\n>b\nGGGCCCAAAT\n")
    args = ["predict", "genomics.classify", "--quick", "--runs_dir", str(tmp_path), "--ckpt_path", "last"]
    assert main([*args, "--data.predict_path", str(fasta)]) == 0
    rows = list(csv.DictReader(open(run / "predict" / "predictions.csv")))
    assert [r["item"] for r in rows] == ["a", "b"]
    assert float(rows[0]["p_0"]) + float(rows[0]["p_1"]) == pytest.approx(1.0, abs=1e-5)
    # max_length comes from the data: another one than the run's would change the filters' l_max silently
    capsys.readouterr()
    assert main([*args, "--data.predict_path", str(fasta), "--data.max_length", "256"]) == 2
    assert "--ckpt_path: the backbone differs (mixer_kwargs: {'l_max': 128" in capsys.readouterr().err


def test_classify_on_another_mixer_from_scratch(tmp_path):
    fit("classify", tmp_path, "--model.backbone.mixer", "mamba", "--model.backbone.mixer_kwargs", "{d_state: 4}")


def test_l_max_goes_to_every_mixer_that_takes_it_hybrid_ones_too():
    hybrid = BackboneConfig(d_model=8, n_layers=2, mixer="mamba", mixer_kwargs={"d_state": 4}, hybrid={"hyena": [1]})
    model = GenomicsLM(max_length=64, backbone=hybrid)
    assert model.backbone.config.mixer_kwargs == {"d_state": 4}
    assert model.backbone.config.hybrid_kwargs == {"hyena": {"l_max": 64}}
    given = GenomicsLM(max_length=64, backbone=BackboneConfig.of(TINY_HYENA, mixer_kwargs={"l_max": 32}))
    assert given.backbone.config.mixer_kwargs == {"l_max": 32}  # kwargs that set l_max win


def test_init_from_refuses_a_different_backbone(pretrained):
    model = GenomicsClassifier(2, 128, backbone=BackboneConfig(d_model=32, n_layers=1, mixer="hyena"))
    with pytest.raises(ValueError, match=r"the backbone differs \(d_model: 16 there, 32 here"):
        model.load_backbone(str(pretrained / "checkpoints" / "last.ckpt"))


def test_self_pretraining_then_fine_tuning_in_one_fit(tmp_path):
    """The first steps are next-nucleotide steps on the task's own training sequences (their bits per base
    fall), the rest classification steps; both phases run in one `ssmkit fit genomics.classify`."""
    steps = ["--trainer.max_epochs", "3", "--trainer.log_every_n_steps", "1", "--model.lr", "0.01"]
    run = fit("classify", tmp_path, "--model.self_pretrain_steps", "8", *steps) / "version_0"
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    bpb = [(int(r["step"]), float(r["self_pretrain/bpb"])) for r in rows if r.get("self_pretrain/bpb")]
    classify = [int(r["step"]) for r in rows if r.get("train/loss")]
    assert [s for s, _ in bpb] == list(range(8)) and classify == [8, 9, 10, 11]
    assert bpb[-1][1] < bpb[0][1] - 0.2  # from ~log2(7) towards the 2 bits of four bases
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert any(k.startswith("lm_head.") for k in ckpt["state_dict"])


def test_self_pretraining_bad_settings_are_named():
    with pytest.raises(ValueError, match="needs a causal backbone"):
        GenomicsClassifier(2, 32, backbone=BackboneConfig.of(TINY_HYENA, bidirectional=True), self_pretrain_steps=4)
    with pytest.raises(ValueError, match="self_pretrain_steps must be >= 0"):
        GenomicsClassifier(2, 32, backbone=TINY_HYENA, self_pretrain_steps=-1)


def test_the_gue_recipe_config_runs_over_the_classify_task(tmp_path):
    """configs/gue.yaml (the measured GUE recipe) on the synthetic default data, cut to two steps."""
    from ssmkit.plugins import find_task

    recipe = find_task("genomics.classify")[2].config_path().with_name("gue.yaml")
    short = ["--trainer.max_steps", "2", "--trainer.val_check_interval", "2", "--trainer.limit_val_batches", "1"]
    short += ["--data.n_synthetic", "128", "--data.synthetic_length", "100"]
    assert main(["fit", "genomics.classify", "--config", str(recipe), "--runs_dir", str(tmp_path), *short]) == 0
    config = (tmp_path / "genomics" / "classify" / "version_0" / "config.yaml").read_text()
    assert "max_length: 128" in config and "d_model: 64" in config


def test_length_warmup_doubles_in_equal_shares_then_keeps_the_full_window():
    assert [warmup_length(step, 32, 4, 6) for step in range(8)] == [4, 4, 8, 8, 16, 16, 32, 32]
    assert warmup_length(0, 32, 0, 6) == 32 and warmup_length(0, 32, 64, 6) == 32  # off / start too long
    with pytest.raises(ValueError, match="window length 24 is not a power-of-two multiple of 5"):
        warmup_length(0, 24, 5, 6)


def test_length_warmup_cuts_training_windows_into_aligned_pieces(monkeypatch):
    model = GenomicsLM(
        max_length=32, backbone=BackboneConfig(d_model=8, n_layers=1), length_warmup_start=8, length_warmup_steps=10
    )
    seen = []
    monkeypatch.setattr(model, "shared_step", lambda batch, stage: seen.append(batch) or torch.zeros(()))
    tokens = torch.randint(0, 4, (2, 33))
    model.training_step((tokens[:, :-1], tokens[:, 1:]), 0)  # step 0: pieces of 8, same 64 tokens
    x, y = seen[0]
    assert x.shape == y.shape == (8, 8) and torch.equal(x[1, 1:], y[1, :-1])
    assert torch.equal(x.reshape(2, 32), tokens[:, :-1])


@pytest.mark.parametrize("mixer", ["hyena", "mamba"])  # a padded-batch mixer and a resettable scan
def test_pack_records_reads_each_record_of_a_window_as_if_alone(mixer):
    torch.manual_seed(0)
    backbone = BackboneConfig(d_model=8, n_layers=2, mixer=mixer)
    model = GenomicsLM(max_length=16, pack_records=True, backbone=backbone).eval()
    a, b, c = (torch.randint(A, T + 1, (1, n)) for n in (5, 6, 16))
    sep = torch.tensor([[SEP]])
    window = torch.cat([a, sep, b, sep, a[:, :3]], 1)  # two records and the start of a third
    tokens = torch.cat([window, c])  # a second window holding no [SEP]
    logits = model(tokens)
    alone = [model(piece)[0] for piece in (torch.cat([a, sep], 1), torch.cat([b, sep], 1), a[:, :3], c)]
    torch.testing.assert_close(logits.flatten(0, 1), torch.cat(alone), atol=1e-5, rtol=1e-5)
    model.pack_records = False  # the plain reading: the second record sees the first
    assert not torch.allclose(model(tokens)[0, 6:13], alone[1], atol=1e-3)
