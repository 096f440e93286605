"""AITS (average inference time per sample) of the `motion.generate` denoisers versus the window length.

    python plugins/motion/scripts/aits.py --lengths 60,120,240,480,960 --samples 4 --repeats 3 --threads 1 --profile

Inference only, **random weights** (timing does not depend on the weights' values; the latent scale is left at 1).
Per length, `MotionGenerator` is built three times at the same settings: Motion Mamba with each HTM's / BSM's scans
in one call (`grouped`, the default), the same weights with one call per scan (`separate`: the previous code path,
`MotionMambaDenoiser.group_scans(False)`), and the Transformer (default settings: the measured run's, d_model 32,
n_levels 2, the shipped VAE, 7 labels, 126 features of the DeepMimic humanoid; the Transformer's width matched to
Motion Mamba's parameter count as the task does); each generates `--samples` motions in one batch:
`--sampling-steps` DDIM steps with classifier-free guidance (every step runs the denoiser on the doubled batch),
then the VAE decodes the latent. AITS = (sampling + decoding seconds) / samples; the "denoising" columns are the
sampling part alone (the decoder is the same for all). One warm-up generation per model first (numba compiles
the scan kernel on first use); then the three alternate, `--repeats` times each, and the fastest repeat is kept (the
least disturbed one on a shared machine). Prints a markdown table; `--csv` writes the numbers too.

`--profile` adds, per length, where Motion Mamba's time goes: the shares of its sampling time inside its HTM and
BSM modules (wall time between forward hooks), the share of a generation (sampling + decoding) inside the core's
selective scan (torch.profiler's event of it, a separate profiled generation) and the scan calls per
denoiser forward.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import defaultdict
from typing import Any

import torch
from torch.profiler import profile

from ssmkit.train.plots import markdown_table
from ssmkit_motion.models import n_parameters
from ssmkit_motion.motion_mamba import BSM, HTM
from ssmkit_motion.tasks import MotionGenerator

MODELS = {"grouped": ("mamba", True), "separate": ("mamba", False), "transformer": ("transformer", True)}


def build(name: str, window: int, args: argparse.Namespace) -> MotionGenerator:
    """One of MODELS (the two Motion Mamba variants get the same weights: the same seed)."""
    torch.manual_seed(0)
    denoiser, grouped = MODELS[name]
    model = MotionGenerator(
        n_classes=args.n_classes,
        n_features=args.n_features,
        window=window,
        denoiser=denoiser,
        grouped_scans=grouped,
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


def profile_split(model: MotionGenerator, n: int) -> dict[str, float]:
    """Shares of Motion Mamba's sampling time: in HTM, in BSM, in the selective scan; scan calls per forward."""
    spent: dict[str, float] = defaultdict(float)
    started: dict[int, float] = {}

    def start(module: torch.nn.Module, _: object) -> None:
        started[id(module)] = time.perf_counter()

    def stop(module: torch.nn.Module, _: object, __: object) -> None:
        spent[type(module).__name__] += time.perf_counter() - started[id(module)]

    blocks = [m for m in model.denoiser.modules() if isinstance(m, HTM | BSM)]
    hooks = [m.register_forward_pre_hook(start) for m in blocks] + [m.register_forward_hook(stop) for m in blocks]
    sampling, _ = timed(model, n)
    for hook in hooks:
        hook.remove()
    with profile() as prof:
        timed(model, n)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    with torch.no_grad(), profile() as one:
        z = torch.randn(n, model.vae.n_tokens, model.vae.d_latent)
        model.denoiser(z, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long))
    return {
        "htm": spent["HTM"] / sampling,
        "bsm": spent["BSM"] / sampling,
        "scan": scan_event(events).cpu_time_total / total,
        "scans_per_forward": scan_event(one.key_averages()).count,
    }


def scan_event(events: list) -> Any:
    """The profiler's outermost event of the selective scan: whichever of its names (the autograd Function
    `SelectiveScanFn`, a custom op `ssmkit::selective_scan_<backend>`) has the most time."""
    scans = [e for e in events if "selective_scan" in e.key.lower() or "selectivescan" in e.key.lower()]
    return max(scans, key=lambda e: e.cpu_time_total)


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
    parser.add_argument("--profile", action="store_true", help="also split Motion Mamba's time (see the doc)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, records, splits = [], [], []
    for window in (int(x) for x in args.lengths.split(",")):
        models = {name: build(name, window, args) for name in MODELS}
        for model in models.values():
            timed(model, 1)  # warm-up (numba compilation, allocator)
        best = {name: (float("inf"), float("inf")) for name in MODELS}
        for _ in range(args.repeats):
            for name, model in models.items():
                sampling, decoding = timed(model, args.samples)
                if sampling + decoding < sum(best[name]):
                    best[name] = (sampling, decoding)
        aits = {name: sum(best[name]) / args.samples for name in MODELS}
        denoising = {name: best[name][0] / args.samples for name in MODELS}
        params = {name: n_parameters(models[name].denoiser) for name in MODELS}
        tokens = models["grouped"].vae.n_tokens
        rows.append(
            [
                window,
                tokens,
                *(f"{aits[name]:.3f}" for name in MODELS),
                f"{aits['transformer'] / aits['grouped']:.2f}",
                f"{aits['grouped'] / aits['separate']:.2f}",
                *(f"{denoising[name]:.3f}" for name in MODELS),
                f"{params['grouped']:,} / {params['transformer']:,}",
            ]
        )
        records.append(
            {
                "frames": window,
                "latent_tokens": tokens,
                **{f"aits_{n}": aits[n] for n in MODELS},
                **{f"denoising_{n}": denoising[n] for n in MODELS},
                **{f"params_{n}": params[n] for n in MODELS},
            }
        )
        if args.profile:
            for name in ("grouped", "separate"):
                split = profile_split(models[name], args.samples)
                records[-1].update({f"share_{k}_{name}": v for k, v in split.items()})
                shares = [f"{split[k]:.0%}" for k in ("htm", "bsm", "scan")]
                splits.append([window, name, *shares, f"{split['scans_per_forward']:g}"])
        print(f"{window} frames done: {rows[-1]}", flush=True)
    header = [
        "frames",
        "latent tokens",
        "Motion Mamba AITS (s), grouped scans",
        "Motion Mamba AITS (s), separate scans",
        "Transformer AITS (s)",
        "Transformer / Mamba grouped",
        "grouped / separate",
        "denoising (s): grouped",
        "separate",
        "Transformer",
        "parameters (Mamba / Transformer)",
    ]
    print(
        f"\n{args.samples} samples per batch, {args.sampling_steps} DDIM steps with guidance, best of {args.repeats}, "
        f"{torch.get_num_threads()} torch threads, random weights\n"
    )
    print(markdown_table(header, rows))
    if splits:
        print("\nWhere Motion Mamba's time goes (one generation of --samples each)\n")
        header = ["frames", "scans", "sampling in HTM", "sampling in BSM", "generation in the scan", "scans / forward"]
        print(markdown_table(header, splits))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)


if __name__ == "__main__":
    main()
