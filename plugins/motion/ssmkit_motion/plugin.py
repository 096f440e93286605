"""The `motion` plugin's entry point (imports no torch or lightning):

ssmkit fit motion.classify     action classification of motion windows (SSM encoder, or a GRU baseline); also the
                               fixed evaluator (pooled features) of the generation metrics
ssmkit fit motion.generate     MLD-style motion VAE + label-conditioned latent diffusion with a Motion Mamba
                               denoiser (HTM + BSM U-Net) or an MLD-style Transformer denoiser; BVH + GIF samples
"""

from ssmkit.plugins import Plugin, Task

plugin = Plugin(
    name="motion",
    description="Human motion: BVH / DeepMimic clips, action classification, Motion Mamba latent diffusion",
    requires_ssmkit=">=0.1,<0.2",
    tasks={
        "classify": Task.in_package(
            "ssmkit_motion",
            "MotionClassifier",
            "MotionData",
            "classify",
            "action classification of motion windows (SSM encoder or GRU baseline); the generation evaluator",
        ),
        "generate": Task.in_package(
            "ssmkit_motion",
            "MotionGenerator",
            "MotionData",
            "generate",
            "label-conditioned motion generation: VAE + latent diffusion (Motion Mamba or Transformer denoiser)",
        ),
    },
)
