"""Baselines from the project's other source documents, reproduced faithfully, accounted honestly.

Each baseline reports its privacy twice, as everything in this package does: the figure its
source *claims* (label ``claimed``) and the figure computed for what the code actually does
(label ``verified``). Modules:

``adlm``          Adaptive Laplace Mechanism (Phan et al., ICDM 2017)
``input_noise``   local-DP Gaussian input perturbation (normalize, add noise once per record)
``dpgen``         DP image generation with error-feedback DP-SGD (Ma & Zhang, 2026)
"""
