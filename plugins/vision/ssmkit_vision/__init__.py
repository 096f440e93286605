"""ssmkit's vision plugin: Vim, Hydra and matched ViT image models in timm's registry, and image classification.

Importing this package imports nothing heavy (plugin discovery imports it). The models (`vim_*`, `hydra_*`,
`vit_matched_*`) enter timm's registry when `ssmkit_vision.models` is imported, as the classify task and the
demo do; code of your own that calls `timm.create_model("vim_tiny_patch16_224", num_classes=10)` imports it first:

    import ssmkit_vision.models  # noqa: F401  (registers the models in timm)
"""
