"""The values of the settings that choose how a run trains and records: the data set, the
optimizer, the tracker and the device. The code that acts on each imports its names from here,
and the settings' schema (training/settings.py) accepts exactly these; the network's own choices
are in models/choices.py. Nothing heavy is imported: the command line is checked against them
before torch is imported."""

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "synthetic")  # dataset.name (training/data.py)
OPTIMIZERS = ("sgd", "adam")  # optim.name (training/optim.py)
LOGGERS = ("wandb", "none")  # logger.name (training/tracker.py)
WANDB_MODES = ("offline", "online", "disabled")  # logger.mode
DEVICES = ("auto", "cpu", "cuda")  # device
