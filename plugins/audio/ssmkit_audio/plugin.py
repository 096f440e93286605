"""The `audio` plugin (imports no torch, torchaudio or lightning):

ssmkit fit audio.classify     spoken digits from raw 8 kHz waveforms (S4 / S4D / Mamba over the samples), log-mel
                              frames, or a log-mel CNN baseline; split by speaker; accuracy + confusion + clips
ssmkit fit audio.generate     SaShiMi over 8-bit mu-law samples (or a parameter-matched WaveNet baseline): bits per
                              sample; generation on the recurrent step path -> WAV files + spectrograms
ssmkit fit audio.restore      Apollo band-split restoration of MP3-coded music: a bidirectional SSM (or the anchor's
                              Roformer + convolutions) over bands x time; SI-SNR, LSD above the codec cut-off
"""

from ssmkit.plugins import Plugin, Task

plugin = Plugin(
    name="audio",
    description="Audio with state-space models: raw-waveform digit classification, SaShiMi generation, band-split "
    "restoration",
    requires_ssmkit=">=0.1,<0.2",
    tasks={
        "classify": Task.in_package(
            "ssmkit_audio",
            "SpokenDigitClassifier",
            "SpokenDigitsData",
            "classify",
            "spoken-digit classification from raw waveforms (SSM) or log-mel frames (SSM, CNN); split by speaker",
        ),
        "generate": Task.in_package(
            "ssmkit_audio",
            "WaveformGenerator",
            "MuLawWindowsData",
            "generate",
            "SaShiMi (or a parameter-matched WaveNet) over 8-bit mu-law samples; bits per sample; WAV generation",
        ),
        "restore": Task.in_package(
            "ssmkit_audio",
            "AudioRestorer",
            "RestorationData",
            "restore",
            "Apollo band-split restoration of MP3-coded music with a bidirectional SSM (or the Roformer baseline)",
        ),
    },
)
