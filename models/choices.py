"""The values of the settings that choose how a network is built, initialized and trained: the
code in models/ that acts on each imports its names from here, and the settings' schema
(training/settings.py) accepts exactly these. Nothing heavy is imported: the command line is
checked against them before torch is imported."""

ARCHITECTURES = ("mlp", "cnn")  # model.name (models/__init__.py)
ACTIVATIONS = ("sigmoid", "relu", "tanh")  # model.activation (models/layers.py)
PLACEMENTS = ("none", "before", "after")  # bn.placement: where BN goes relative to the nonlinearity
BN_LAYERS = ("all", "last")  # bn.layers: every hidden layer, or only the logits
BN_IMPLS = ("torch", "scratch")  # bn.impl: torch.nn's batch norm, or models/batchnorm.py
NORMS = ("batch", "group", "layer")  # bn.norm
EVAL_STATS = ("ema", "population")  # bn.eval_stats: running averages, or the paper's Alg. 2
INITS = ("default", "gaussian", "uniform")  # init.name (models/init.py)
TRAINABLE = ("all", "bn_only", "random")  # train.trainable: which parameters train
