"""The entry points: ``python -m ssh_ood <command>`` (train, population, evaluate, ...) and ``reproduce``,
which chains the notebooks into the pipeline. May use every package below it."""
