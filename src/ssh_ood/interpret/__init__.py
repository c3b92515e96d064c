"""Looking inside the networks: CAM and Grad-CAM, activations with PCA/UMAP, the highlighted networks,
the clean-data diagnostics and the prediction of OOD generalization from them.
May use ``ssh_ood.ood`` and everything below it."""
