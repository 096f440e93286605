"""Latent diffusion as MLD runs it: DDPM training on noise prediction with the "scaled linear" beta schedule
(betas from 0.00085 to 0.012 over 1000 steps, linear in sqrt), classifier-free guidance (the label dropped to a
"no label" class with probability `cond_drop` in training; eps = eps_uncond + w (eps_cond - eps_uncond) in
sampling), and deterministic DDIM sampling (eta = 0) over `n_sampling` evenly spaced steps. `sample` takes an
optional `project` of each step's clean-latent estimate (in-betweening replaces the known frames there, through the
VAE); the step's noise estimate is then recomputed to match it, so the DDIM update stays on the projected latent."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Tensor = torch.Tensor
Denoiser = Callable[[Tensor, Tensor, Tensor], Tensor]


class LatentDiffusion(nn.Module):
    def __init__(self, n_steps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> None:
        super().__init__()
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, n_steps, dtype=torch.float64) ** 2
        self.n_steps = n_steps
        self.register_buffer("alphas_cumprod", torch.cumprod(1 - betas, 0).float(), persistent=False)

    def add_noise(self, z0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """q(z_t | z_0): z0, noise (B, ...), t (B,) -> z_t."""
        a = self.alphas_cumprod[t].view(-1, *[1] * (z0.dim() - 1))
        return a.sqrt() * z0 + (1 - a).sqrt() * noise

    def loss(self, denoiser: Denoiser, z0: Tensor, labels: Tensor, null_label: int, cond_drop: float) -> Tensor:
        """Noise-prediction MSE at uniform random steps, labels dropped to `null_label` with prob. `cond_drop`."""
        t = torch.randint(0, self.n_steps, (len(z0),), device=z0.device)
        noise = torch.randn_like(z0)
        dropped = torch.rand(len(z0), device=z0.device) < cond_drop
        labels = torch.where(dropped, torch.full_like(labels, null_label), labels)
        return (denoiser(self.add_noise(z0, noise, t), t, labels) - noise).pow(2).mean()

    @torch.no_grad()
    def sample(
        self,
        denoiser: Denoiser,
        shape: tuple[int, ...],
        labels: Tensor,
        null_label: int,
        n_sampling: int = 50,
        guidance: float = 2.5,
        generator: torch.Generator | None = None,
        project: Callable[[Tensor], Tensor] | None = None,
    ) -> Tensor:
        """DDIM (eta 0) with classifier-free guidance: z_T ~ N(0, 1) of `shape` (B, ...) -> z_0. `project` (z0 -> z0,
        same shape) maps each step's estimate of z_0 before the update (None: as estimated)."""
        device = labels.device
        z = torch.randn(shape, generator=generator, device=device)
        steps = torch.linspace(self.n_steps - 1, 0, n_sampling, device=device).round().long()
        nulls = torch.full_like(labels, null_label)
        for i, t in enumerate(steps):
            batch_t = t.expand(len(z))
            both = denoiser(torch.cat([z, z]), torch.cat([batch_t, batch_t]), torch.cat([labels, nulls]))
            cond, uncond = both.chunk(2)
            eps = uncond + guidance * (cond - uncond)
            a = self.alphas_cumprod[t]
            a_next = self.alphas_cumprod[steps[i + 1]] if i + 1 < len(steps) else torch.ones_like(a)
            z0 = (z - (1 - a).sqrt() * eps) / a.sqrt()
            if project is not None:
                z0 = project(z0)
                eps = (z - a.sqrt() * z0) / (1 - a).sqrt()
            z = a_next.sqrt() * z0 + (1 - a_next).sqrt() * eps
        return z
