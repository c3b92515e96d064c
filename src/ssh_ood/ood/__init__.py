"""Out-of-distribution evaluation: a network's phase diagram on the (W, v) disorder grid, its generalization
metrics, 100-CNN populations and their tables, and the batch-norm and thermometer studies.
May use ``ssh_ood.nets``, ``ssh_ood.physics`` and ``ssh_ood.base``."""
