"""Training recipes beside the paper's: each a named option (``--recipe NAME``) with its hypothesis.

The paper's networks fail out of distribution mostly by calling disordered *trivial* chains topological:
they read localized density anywhere in the image (a bulk row, a bulk eigenstate column) as topological
evidence, a cue that is never wrong on clean chains (the clean-data probe ``probe_mid_bulk_shift`` measures
it and predicts OOD accuracy out of sample). Each recipe below attacks that cue in one way, keeps
the paper's architecture, optimizer, data and early-stopping rule, and changes only what its docstring
says, so its networks load, evaluate and diagnose like the paper's (``CNN_SSH``, the same state_dict).

Every recipe obeys the no-peeking rule (:mod:`ssh_ood.physics.no_peeking`): its training and early-stopping
data are the preset's clean and perturbative (W <= 0.05) sets plus, where stated, physics constructions that
are not draws from the uniform-disorder test distribution (:mod:`ssh_ood.physics.constructions`).

The fused CPU engine and the stacked (GPU) engine both serve every recipe: the augmentation only adds
training samples, the symmetry recipe projects the weights after each update, and the penalty recipe runs
the engines' own training forward on a doubled batch (its cost: about twice a paper step).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..base.presets import Preset
from ..physics.constructions import bond_defect_dataset, localized_column_edits
from ..physics.data_generation import disorder_rng
from .architecture import CNN_SSH
from .data_loaders import TensorSplit, TrainingData, load_training_data, to_tensors
from .ensemble_training import ModelState, SGDRecipe, StepResult, sgd_update, stacked_logits, train_step
from .fast_dropout import draw_keep_masks
from .fused_blocks import dropout_shapes, fused_train_forward

DEFAULT_RECIPE = "paper"
_DEFECT_STREAM = 10  # disorder_rng(seed, 10): the bond-defect constructions (0-3 are the dataset streams)
_EDIT_STREAM = 0x65646974  # "edit": the penalty's image edits, per (seed, epoch, batch)


class Recipe:
    """The paper's recipe (docs/physics_and_methods.md §4), unchanged: the reference every other recipe is compared with.

    Hypothesis: none. Clean training data alone do not tell the network which cue to use; with a global
    average pool it is free to read localized density anywhere as topological evidence.
    """

    name = "paper"
    family = "reference"

    def record(self) -> dict:
        """What a model's ``config.json`` records about the recipe beyond the paper's settings (paper: nothing)."""
        return {}

    def check_supported(self, thermometer_levels: int | None) -> None:
        """``ValueError`` if the recipe cannot train this variant (only the paper's trains thermometer input)."""
        if thermometer_levels and self.name != DEFAULT_RECIPE:
            raise ValueError(f"recipe {self.name!r} trains real-valued input only, not thermometer_levels={thermometer_levels}")

    def augment(self, data: TrainingData, preset: Preset, seed: int) -> TrainingData:
        """The training data the recipe trains on (default: the preset's, unchanged)."""
        return data

    def prepare(self, model: CNN_SSH) -> None:
        """Adjust a freshly initialized model in place (default: nothing)."""

    def batch_input(self, x: torch.Tensor, seed: int, epoch: int, number: int) -> torch.Tensor:
        """The input tensor of one training batch as the step receives it (default: ``x`` itself)."""
        return x

    def step(self, states: Sequence[ModelState], inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor],
             sgd: SGDRecipe, engine: str) -> StepResult:
        """Forward, backward and update of every model (default: :func:`train_step`, the paper's loss)."""
        return train_step(states, inputs, targets, sgd, engine)


class DefectAugmentation(Recipe):
    """Mechanism-informed augmentation: clean chains with a few bond defects, labelled by exact winding.

    Hypothesis: a network that has seen localized states in the bulk with the right labels, a weak bond that
    binds mid-gap states at a cut inside a *trivial* chain, a strong bond that localizes a bulk state, learns
    that localized density away from the chain's ends is not topological evidence, and so stops calling
    disordered trivial chains topological. The constructions
    (:func:`ssh_ood.physics.constructions.bond_defect_dataset`: 1-3 open bonds multiplied by U(0, 2), the closing
    bond clean, label = exact winding of the ring) are not uniform disorder: the no-peeking rule allows them.
    Added to the training set only (early stopping keeps the paper's validation set), ``fraction`` x n_train
    of them, drawn from the run's base seed.
    """

    name = "defects"
    family = "augmentation"
    fraction = 0.5
    max_defects = 3
    max_factor = 2.0

    def record(self) -> dict:
        return {"name": self.name, "family": self.family, "defect_fraction": self.fraction,
                "max_defects": self.max_defects, "max_factor": self.max_factor}

    def augment(self, data: TrainingData, preset: Preset, seed: int) -> TrainingData:
        n_extra = max(2, int(round(self.fraction * preset.n_train)))
        extra = bond_defect_dataset(n_extra, disorder_rng(seed, _DEFECT_STREAM), preset.n_cells, self.max_defects,
                                    self.max_factor)
        x, y = to_tensors(extra, "bond_defects")
        training = data.training
        joined = TensorSplit(torch.cat([training.x, x.to(training.x.device)]), torch.cat([training.y, y.to(training.y.device)]),
                             (*training.sources, "bond_defects"))
        return TrainingData(training=joined, validation=data.validation, test=data.test)


class MirrorSymmetry(Recipe):
    """Structure the physics has: a network exactly invariant under the chain's two mirror symmetries.

    Hypothesis: the label does not change under the reflection of the chain (site j <-> M - 1 - j) and the
    observable is symmetric under the chiral mirror (eigenstate i <-> M - 1 - i); a disordered chain breaks
    both in its image while its winding number stays. A network invariant under both cannot use one end, one
    side of the spectrum, or their asymmetric combinations, removing cues that are free on (symmetric) clean
    chains and noise under disorder. Every convolution kernel is kept symmetric under both flips (projected
    after initialization and after every SGD update: exactly SGD on that subspace, since the projection is
    linear and orthogonal); with the stride-2, padding-2 first convolution on 50 sites the feature map flips
    exactly with the input, BatchNorm and LeakyReLU act per position, and the global average pool is
    invariant, so the evaluated network is exactly invariant. Same parameters and state_dict as the paper's.
    """

    name = "mirror"
    family = "symmetry"

    def record(self) -> dict:
        return {"name": self.name, "family": self.family, "kernels": "symmetric under both flips (projected SGD)"}

    def prepare(self, model: CNN_SSH) -> None:
        symmetrize_kernels([model])

    def step(self, states, inputs, targets, sgd, engine) -> StepResult:
        result = train_step(states, inputs, targets, sgd, engine)
        symmetrize_kernels([state.model for state in states])
        return result


class BulkInsensitivity(Recipe):
    """Right for the right reasons: a penalty on the response to localized density outside the edge states.

    Hypothesis: the winding number of a chain is visible in its edge states (mid-gap columns at the ends);
    a network whose logits do not move when a localized density appears anywhere else cannot be fooled by
    the Anderson-localized states of disordered trivial chains. Each training batch is paired with edited
    copies (:func:`ssh_ood.physics.constructions.localized_column_edits`: a random chiral mirror pair of columns
    replaced by a localized density at a random site, never in the edge-state region); the loss adds
    ``weight`` x mean (delta(x') - delta(x))^2, delta = logit_1 - logit_0, with the same dropout masks on both
    copies (one forward of the doubled batch; BatchNorm's batch statistics see both). The edits are image
    edits of clean chains, not data from the test distribution, and carry no labels. Caution: the probe
    ``probe_mid_bulk_shift`` is one such edit, so for this recipe that development signal is partly trained
    on and says less than for the others.
    """

    name = "bulk_insensitive"
    family = "right_reasons"
    weight = 1.0

    def record(self) -> dict:
        return {"name": self.name, "family": self.family, "penalty_weight": self.weight,
                "edits": "localized_column_edits, decay U(0.3, 0.8)"}

    def batch_input(self, x: torch.Tensor, seed: int, epoch: int, number: int) -> torch.Tensor:
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), _EDIT_STREAM, int(epoch), int(number)]))
        edited = localized_column_edits(x[:, 0].cpu().numpy(), rng)
        return torch.cat([x, torch.from_numpy(edited).unsqueeze(1).to(x.device, x.dtype)])

    def step(self, states, inputs, targets, sgd, engine) -> StepResult:
        for state in states:
            for p in state.model.parameters():
                p.grad = None
        keep = [_paired_keep_masks(state, x) for state, x in zip(states, inputs, strict=True)]
        if engine == "fused":
            logits = [fused_train_forward(s.model, x, m) for s, x, m in zip(states, inputs, keep, strict=True)]
        else:
            stacked = stacked_logits([s.model for s in states], inputs, keep)  # (2B, K, 2)
            logits = [stacked[:, k] for k in range(len(states))]
        terms = [self._loss(z, y) for z, y in zip(logits, targets, strict=True)]
        sum(total for total, _, _ in terms).backward()  # each model's parameters get only their own gradient
        sgd_update(states, sgd)
        return StepResult(torch.stack([ce * y.shape[0] for (_, ce, _), y in zip(terms, targets, strict=True)]).double(),
                          torch.stack([n for _, _, n in terms]).double())

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(cross-entropy + penalty, cross-entropy alone (detached), correct clean predictions)."""
        n = y.shape[0]
        clean, edited = logits[:n], logits[n:]
        ce = F.cross_entropy(clean, y)
        shift = (edited[:, 1] - edited[:, 0]) - (clean[:, 1] - clean[:, 0])
        return ce + self.weight * torch.mean(shift**2), ce.detach(), (clean.detach().argmax(1) == y).sum()


def _paired_keep_masks(state: ModelState, x: torch.Tensor) -> list[torch.Tensor]:
    """Dropout masks for a doubled batch (clean, edited): one draw for the clean half, repeated."""
    half = (x.shape[0] // 2, *x.shape[1:])
    masks = draw_keep_masks(state.generator, dropout_shapes(state.model, half), x.device)
    return [torch.cat([m, m]) for m in masks]


@torch.no_grad()
def symmetrize_kernels(models: Sequence[CNN_SSH]) -> None:
    """Project every convolution kernel onto the kernels symmetric under both spatial flips, in place."""
    for model in models:
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                w = module.weight
                w.copy_((w + w.flip(2) + w.flip(3) + w.flip(2, 3)) / 4)


RECIPES: dict[str, Recipe] = {r.name: r for r in (Recipe(), DefectAugmentation(), MirrorSymmetry(), BulkInsensitivity())}
RECIPE_NAMES = tuple(RECIPES)


def get_recipe(name: str | None) -> Recipe:
    """The recipe called ``name`` (default: the paper's); ``ValueError`` naming the choices otherwise."""
    name = DEFAULT_RECIPE if name is None else name
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"recipe: unknown recipe {name!r}; choose one of {', '.join(RECIPE_NAMES)}") from None


def load_recipe_data(data_dir, preset: Preset, recipe: str | None, seed: int) -> TrainingData:
    """The preset's datasets (clean and perturbative only, see :func:`load_training_data`) as ``recipe`` trains on them."""
    return get_recipe(recipe).augment(load_training_data(data_dir, preset), preset, seed)
