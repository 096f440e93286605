"""ssmkit's medical imaging plugin, on MONAI: MedMamba classification (timm registry) and U-Mamba segmentation.

Importing this package imports nothing heavy (plugin discovery imports it). The MedMamba models
(`medmamba_*`) enter timm's registry when `ssmkit_medical.models` is imported, as the classify task does:

    import ssmkit_medical.models  # noqa: F401  (registers the models in timm)
"""
