"""The values each choice-valued setting accepts, in a module that imports nothing heavy: the
command line is checked against them before torch is imported (training.command_line). The code
that acts on a setting imports its names from here."""

ACTIVATIONS = ("sigmoid", "relu", "tanh")  # model.activation
PLACEMENTS = ("none", "before", "after")  # bn.placement
BN_LAYERS = ("all", "last")  # bn.layers
BN_IMPLS = ("torch", "scratch")  # bn.impl
NORMS = ("batch", "group", "layer")  # bn.norm
EVAL_STATS = ("ema", "population")  # bn.eval_stats
OPTIMIZERS = ("sgd", "adam")  # optim.name
WANDB_MODES = ("offline", "online", "disabled")  # logger.mode
DEVICES = ("auto", "cpu", "cuda")  # device
TRAINABLE = ("all", "bn_only", "random")  # train.trainable
