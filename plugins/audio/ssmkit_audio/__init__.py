"""ssmkit-audio: spoken-digit classification from raw waveforms and log-mel frames."""
