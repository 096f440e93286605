"""Bidirectional use of causal mixers: one mixer reads left-to-right, a second (own parameters) reads each
sequence reversed within its valid length, and the outputs are summed (as Vim and Caduceus do)."""

from __future__ import annotations

import torch

from ssmkit.layers.mixer import Mixer, reverse_valid

Tensor = torch.Tensor


class BidirectionalMixer(Mixer):
    """y = forward_mixer(x) + reverse(backward_mixer(reverse(x))): non-causal, no `step`."""

    causal = False

    def __init__(self, forward_mixer: Mixer, backward_mixer: Mixer) -> None:
        super().__init__(forward_mixer.d_model)
        self.forward_mixer, self.backward_mixer = forward_mixer, backward_mixer

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        backward = self.backward_mixer(reverse_valid(x, lengths), lengths=lengths)
        return self.forward_mixer(x, lengths=lengths) + reverse_valid(backward, lengths)
