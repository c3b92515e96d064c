"""Every figure of the paper and of ours, the 100-CNN browser, the gallery, the figure catalogue, the
HTML report and the findings it quotes. May use ``ssh_ood.interpret`` and everything below it."""
