"""ssmkit's motion plugin: BVH and DeepMimic readers with forward kinematics, a HumanML3D-style representation,
a procedural action generator, action classification, and Motion Mamba latent diffusion (beside an MLD-style
Transformer denoiser). Importing this package imports nothing heavy (plugin discovery imports it)."""
