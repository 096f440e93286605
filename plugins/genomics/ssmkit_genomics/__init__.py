"""ssmkit-genomics: HyenaDNA-style DNA models (pretraining, classification, generation) for ssmkit."""
