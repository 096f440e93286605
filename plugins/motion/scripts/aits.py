"""AITS (average inference time per sample) of the two `motion.generate` denoisers versus the window length.

    python plugins/motion/scripts/aits.py --lengths 60,120,240,480,960 --samples 4 --repeats 2

Inference only, **random weights** (timing does not depend on the weights' values; the latent scale is left at 1).
Per length, `MotionGenerator` is built twice at the same settings, once per denoiser (default: the measured run's,
d_model 32, n_levels 2, the shipped VAE, 7 labels, 126 features of the DeepMimic humanoid; the Transformer's width
matched to Motion Mamba's parameter count as the task does), and each generates `--samples` motions in one batch:
`--sampling-steps` DDIM steps with classifier-free guidance (every step runs the denoiser on the doubled batch),
then the VAE decodes the latent. AITS = (sampling + decoding seconds) / samples; the "denoising" columns are the
sampling part alone (the decoder is the same for both). One warm-up generation per model first (numba compiles
the scan kernel on first use); then the two alternate, `--repeats` times each, and the fastest repeat is kept (the
least disturbed one on a shared machine). Prints a markdown table; `--csv` writes the numbers too.
"""

from __future__ import annotations

import argparse
import csv
import time

import torch

from ssmkit.train.plots import markdown_table
from ssmkit_motion.models import n_parameters
from ssmkit_motion.tasks import MotionGenerator

DENOISERS = ("mamba", "transformer")


def build(denoiser: str, window: int, args: argparse.Namespace) -> MotionGenerator:
    torch.manual_seed(0)
    model = MotionGenerator(
        n_classes=args.n_classes,
        n_features=args.n_features,
        window=window,
        denoiser=denoiser,
        d_model=args.d_model,
        n_levels=args.n_levels,
        mamba_kwargs={"d_state": args.d_state},
        sampling_steps=args.sampling_steps,
        report_per_class=0,
    )
    return model.eval()


@torch.no_grad()
def timed(model: MotionGenerator, n: int) -> tuple[float, float]:
    """(sampling seconds, decoding seconds) of generating n motions in one batch."""
    labels = torch.arange(n) % model.n_classes
    shape = (n, model.vae.n_tokens, model.vae.d_latent)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    z = model.diffusion.sample(
        model.denoiser, shape, labels, model.n_classes, model.hparams.sampling_steps, model.hparams.guidance, generator
    )
    sampled = time.perf_counter()
    model.vae.decode(z)
    return sampled - start, time.perf_counter() - sampled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="60,120,240,480,960", help="window lengths in frames")
    parser.add_argument("--samples", type=int, default=4, help="motions per timed batch")
    parser.add_argument("--repeats", type=int, default=2, help="timed batches per denoiser and length (best kept)")
    parser.add_argument("--sampling-steps", type=int, default=20)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--n-levels", type=int, default=2)
    parser.add_argument("--d-state", type=int, default=8)
    parser.add_argument("--n-classes", type=int, default=7)
    parser.add_argument("--n-features", type=int, default=126)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--csv", default=None, help="also write the numbers to this CSV file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, records = [], []
    for window in (int(x) for x in args.lengths.split(",")):
        models = {name: build(name, window, args) for name in DENOISERS}
        for model in models.values():
            timed(model, 1)  # warm-up (numba compilation, allocator)
        best = {name: (float("inf"), float("inf")) for name in DENOISERS}
        for _ in range(args.repeats):
            for name, model in models.items():
                sampling, decoding = timed(model, args.samples)
                if sampling + decoding < sum(best[name]):
                    best[name] = (sampling, decoding)
        aits = {name: sum(best[name]) / args.samples for name in DENOISERS}
        denoising = {name: best[name][0] / args.samples for name in DENOISERS}
        params = {name: n_parameters(models[name].denoiser) for name in DENOISERS}
        tokens = models["mamba"].vae.n_tokens
        rows.append(
            [
                window,
                tokens,
                f"{aits['mamba']:.3f}",
                f"{aits['transformer']:.3f}",
                f"{aits['transformer'] / aits['mamba']:.2f}",
                f"{denoising['mamba']:.3f}",
                f"{denoising['transformer']:.3f}",
                f"{denoising['transformer'] / denoising['mamba']:.2f}",
                f"{params['mamba']:,} / {params['transformer']:,}",
            ]
        )
        records.append(
            {
                "frames": window,
                "latent_tokens": tokens,
                **{f"aits_{n}": aits[n] for n in DENOISERS},
                **{f"denoising_{n}": denoising[n] for n in DENOISERS},
                **{f"params_{n}": params[n] for n in DENOISERS},
            }
        )
        print(f"{window} frames done: {rows[-1]}", flush=True)
    header = [
        "frames",
        "latent tokens",
        "Motion Mamba AITS (s)",
        "Transformer AITS (s)",
        "Transformer / Mamba",
        "Mamba denoising (s)",
        "Transformer denoising (s)",
        "Transformer / Mamba (denoising)",
        "parameters (Mamba / Transformer)",
    ]
    print(
        f"\n{args.samples} samples per batch, {args.sampling_steps} DDIM steps with guidance, best of {args.repeats}, "
        f"{torch.get_num_threads()} torch threads, random weights\n"
    )
    print(markdown_table(header, rows))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)


if __name__ == "__main__":
    main()
