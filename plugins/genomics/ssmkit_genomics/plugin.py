"""The `genomics` plugin: HyenaDNA-style DNA models.

Generation and class probabilities are the `predict` runs of the two trained tasks (so `--ckpt_path last`
finds the newest run of that task):

    ssmkit fit genomics.pretrain                  next-nucleotide LM; bits per base
    ssmkit predict genomics.pretrain --ckpt_path last --data.prompts ACGT...   -> generated.fasta
    ssmkit fit genomics.classify --model.init_from runs/genomics/pretrain/version_0/checkpoints/last.ckpt
    ssmkit predict genomics.classify --ckpt_path last --data.predict_path x.fa  -> predictions.csv
    python -m ssmkit_genomics.kmer_baseline DIR   logistic regression on 4-mer counts, the yardstick
"""

from ssmkit.plugins import Plugin, Task

_PKG = "ssmkit_genomics"


plugin = Plugin(
    name="genomics",
    description="HyenaDNA: DNA language models, sequence classification and generation (any mixer)",
    requires_ssmkit=">=0.1,<0.2",
    tasks={
        "pretrain": Task.in_package(
            _PKG,
            "GenomicsLM",
            "GenomeData",
            "pretrain",
            "next-nucleotide modelling of FASTA / GenBank genomes (bits per base); predict generates DNA",
        ),
        "classify": Task.in_package(
            _PKG,
            "GenomicsClassifier",
            "ClassificationData",
            "classify",
            "sequence classification from CSV / labelled FASTA (acc, MCC, F1); predict writes probabilities",
        ),
    },
)
