"""Training: the DP-SGD loop the examples and the comparison share, the paper's networks, and
the plots of training histories.

``loop``          :func:`train`, :class:`TrainConfig`, history files
``models``        the per-dataset networks of the product-noise paper
``plots``         the paper's three-panel figures from saved histories
``epsilon_axis``  the verified-vs-claimed ε axis shared by every accuracy-vs-ε plot
"""
