"""The entry points: ``python -m src <command>`` (train, population, evaluate, ...) and ``reproduce``,
which chains the notebooks into the pipeline. May use every package below it."""
