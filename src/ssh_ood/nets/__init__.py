"""The CNN and how it is trained: the architecture, the paper's recipe, the batched CPU/GPU engines, data
loaders, model folders, classification metrics and precise batch-norm statistics.
May use ``ssh_ood.physics`` and ``ssh_ood.base``."""
