"""Notebook 02 helpers: the CNN's layer table and diagram, the inputs it sees, its training curves, accuracy
against disorder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from torch import nn

from ..base.figure_files import save_figure
from ..nets.architecture import CNN_SSH, count_parameters
from ..nets.data_loaders import TensorSplit, encode_input, to_tensors
from ..nets.ensemble_training import evaluate_models
from ..nets.metrics import report_dict
from ..nets.model_folders import load_config, load_history
from ..physics.data_generation import CLASS_NAMES
from ..physics.datasets import dataset_filename, load_split
from .plotting import CLASS_COLOURS


def layer_table(model: CNN_SSH, input_shape: Sequence[int] = (1, 1, 50, 50)) -> list[dict]:
    """One row per layer of ``model``: state-dict name, layer, output shape (C, H, W), trainable parameters.

    Shapes are recorded with forward hooks on an eval-mode pass of a zero input of ``input_shape``.
    """
    rows: list[dict] = []
    hooks = []
    for name, module in model.named_modules():
        if len(list(module.children())) == 0:
            hooks.append(
                module.register_forward_hook(
                    lambda mod, inputs, output, name=name: rows.append(
                        {
                            "name": name,
                            "layer": repr(mod).split("(")[0] + _short_args(mod),
                            "output shape": tuple(output.shape[1:]),
                            "parameters": sum(p.numel() for p in mod.parameters() if p.requires_grad),
                        }
                    )
                )
            )
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(*input_shape))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return rows


def _short_args(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        return f"({module.in_channels}->{module.out_channels}, k={module.kernel_size[0]}, s={module.stride[0]}, p={module.padding[0]})"
    if isinstance(module, nn.BatchNorm2d):
        return f"({module.num_features})"
    if isinstance(module, nn.LeakyReLU):
        return f"({module.negative_slope})"
    if isinstance(module, nn.Dropout):
        return f"(p={module.p})"
    if isinstance(module, nn.Linear):
        return f"({module.in_features}->{module.out_features})"
    return ""


def plot_architecture(ax: plt.Axes, model: CNN_SSH) -> None:
    """Block diagram of ``model``: input, the three conv blocks, pooling and linear layer, with shapes."""
    shapes = {row["name"]: row["output shape"] for row in layer_table(model)}
    boxes = [("input X", (model.in_channels, 50, 50), "#dddddd", 0)]
    for number, (prefix, start) in enumerate((("cnn_layers_1", 0), ("cnn_layers_1", 4), ("cnn_layers_2", 0)), 1):
        conv, bn = getattr(model, prefix)[start], getattr(model, prefix)[start + 1]
        label = f"block {number}\nconv {conv.kernel_size[0]}x{conv.kernel_size[0]}, stride {conv.stride[0]}\nBN, LeakyReLU,\nDropout(0.5)"
        boxes.append((label, shapes[f"{prefix}.{start + 3}"], "#9ecae1", count_parameters(conv) + count_parameters(bn)))
    boxes.append(("global\naverage pool", shapes["avg_pool"][:1], "#c7e9c0", 0))
    linear = model.linear_layers[0]
    boxes.append(("Linear\n(logits)", shapes["linear_layers.0"], "#fdd0a2", count_parameters(linear)))
    for position, (label, shape, colour, params) in enumerate(boxes):
        x = position * 1.6
        ax.add_patch(FancyBboxPatch((x, 0), 1.3, 1.0, boxstyle="round,pad=0.05", fc=colour, ec="k", lw=0.8))
        ax.text(x + 0.65, 0.64, label, ha="center", va="center", fontsize=7)
        ax.text(x + 0.65, 0.15, "x".join(str(s) for s in shape) + (f"\n{params} params" if params else ""),
                ha="center", va="center", fontsize=7)
        if position:
            ax.annotate("", xy=(x - 0.05, 0.5), xytext=(x - 0.25, 0.5), arrowprops={"arrowstyle": "->"})
    ax.set_xlim(-0.2, len(boxes) * 1.6)
    ax.set_ylim(-0.3, 1.2)
    ax.axis("off")


def plot_inputs(axes: Sequence[plt.Axes], dataset: dict, v_targets: Sequence[float]) -> None:
    """The observable X (rows: sites, columns: eigenstates) of the samples of ``dataset`` nearest ``v_targets``."""
    for ax, target in zip(axes, v_targets, strict=True):
        index = int(np.argmin(np.abs(dataset["v"] - target)))
        image = ax.imshow(dataset["X"][index], cmap="magma", vmin=0, vmax=0.5, origin="upper")
        ax.set_title(f"v = {dataset['v'][index]:.2f}: {CLASS_NAMES[int(dataset['labels'][index])]}", fontsize=9)
        ax.set_xlabel("eigenstate i (ascending E)")
    axes[0].set_ylabel("site j")
    axes[-1].figure.colorbar(image, ax=list(axes), label=r"$|\psi_i(j)|^2$", shrink=0.8)


def disorder_reports(
    model: CNN_SSH, data_dir: str | Path, W_values: Sequence[float], thermometer_levels: int | None = None
) -> list[dict]:
    """Classification report (:func:`ssh_ood.nets.metrics.report_dict`) of ``model`` on the test set at each W."""
    device = next(model.parameters()).device
    engine = "fused" if device.type == "cpu" else "stacked"
    reports = []
    for W in W_values:
        x, y = to_tensors(load_split(data_dir, "test", W), dataset_filename("test", W))
        split = TensorSplit(x, y, (dataset_filename("test", W),)).to(device)
        predictions = evaluate_models([model], split, thermometer_levels, engine).predictions[0]
        reports.append({"W": float(W), **report_dict(y.numpy(), predictions)})
    return reports


def plot_accuracy_vs_disorder(ax: plt.Axes, reports: Sequence[dict]) -> None:
    """Accuracy and per-class recall against W (symlog axis: W = 0 included)."""
    W = [r["W"] for r in reports]
    ax.plot(W, [r["accuracy"] for r in reports], "o-", color="k", label="accuracy")
    for name, colour in CLASS_COLOURS.items():
        ax.plot(W, [r[f"recall_{name.lower()}"] for r in reports], "s--", color=colour, ms=4, label=f"recall {name.lower()}")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlabel("disorder strength W")
    ax.set_ylabel("score on the test set")
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax.legend(fontsize=8)


def plot_probability_vs_v(ax: plt.Axes, model: CNN_SSH, dataset: dict, thermometer_levels: int | None = None) -> None:
    """Predicted probability of "topological" against v for a test set (true labels as the step line)."""
    x, y = to_tensors(dataset)
    device = next(model.parameters()).device
    was_training = model.training
    with torch.no_grad():
        proba = model.eval().predict_proba(encode_input(x, thermometer_levels).to(device))[:, 1].cpu().numpy()
    model.train(was_training)
    order = np.argsort(dataset["v"])
    ax.plot(dataset["v"][order], y.numpy()[order], color="0.5", lw=1, label="true label (winding number)")
    ax.plot(dataset["v"][order], proba[order], ".", ms=3, label="P(topological)")
    ax.axvline(1.0, color="k", ls=":", lw=0.8)
    ax.set_xlabel("v")
    ax.set_ylabel("probability")
    ax.legend(fontsize=8)


def plot_training_curves(history: dict, axes: Sequence[plt.Axes] | None = None) -> plt.Figure:
    """Loss and accuracy per epoch (training vs validation), best epoch marked; returns the figure.

    ``history``: a model's ``history.json`` (:func:`ssh_ood.nets.model_folders.load_history`).
    """
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    else:
        fig = axes[0].figure
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    for ax, key, label in ((axes[0], "loss", "cross-entropy loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(epochs, history[f"train_{key}"], label="training (with dropout)")
        ax.plot(epochs, history[f"val_{key}"], label="validation")
        if history.get("best_epoch"):
            ax.axvline(history["best_epoch"], color="0.5", ls=":", lw=1, label="lowest validation loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
    axes[0].set_yscale("log")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def save_training_curves(model_dir: str | Path) -> list[Path]:
    """``model_dir/training_curve.pdf`` and ``.png``: :func:`plot_training_curves` of a trained model's
    ``history.json``, titled with its folder and seed; returns both paths."""
    model_dir = Path(model_dir)
    fig = Figure(figsize=(9, 3.4))  # no pyplot: no interactive backend needed
    plot_training_curves(load_history(model_dir), fig.subplots(1, 2))
    fig.suptitle(f"{model_dir.name} (seed {load_config(model_dir)['model_seed']})", fontsize=10, y=1.03)
    return save_figure(fig, "training_curve", model_dir)
