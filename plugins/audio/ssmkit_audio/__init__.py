"""ssmkit-audio: spoken-digit classification from raw waveforms or log-mel frames, and the SaShiMi model."""
