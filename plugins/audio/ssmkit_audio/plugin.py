"""The `audio` plugin (imports no torch, torchaudio or lightning):

ssmkit fit audio.classify     spoken digits from raw 8 kHz waveforms (S4 / S4D / Mamba over the samples), log-mel
                              frames, or a log-mel CNN baseline; split by speaker; accuracy + confusion + clips
"""

from ssmkit.plugins import Plugin, Task

plugin = Plugin(
    name="audio",
    description="Audio with state-space models: spoken-digit classification from raw waveforms or log-mel frames",
    requires_ssmkit=">=0.1,<0.2",
    tasks={
        "classify": Task.in_package(
            "ssmkit_audio",
            "SpokenDigitClassifier",
            "SpokenDigitsData",
            "classify",
            "spoken-digit classification from raw waveforms (SSM) or log-mel frames (SSM, CNN); split by speaker",
        ),
    },
)
