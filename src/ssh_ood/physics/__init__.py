"""The disordered SSH chain: its generator, the winding number, the train/test datasets on disk, the
thermometer encoding of the input and the physics-preserving input edits (interventions).
May use ``ssh_ood.base`` only."""
