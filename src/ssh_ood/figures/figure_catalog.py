"""Every figure the pipeline draws, in the paper's order, grouped in sections, with a one-line caption.

The run report (:mod:`ssh_ood.commands.reproduce`) and the README gallery (:mod:`ssh_ood.figures.gallery`) take their captions from
here, so a caption is written once. :func:`present_sections` restricts the catalogue to the figures found in
a folder: a catalogued figure that was not drawn is skipped, and a figure that the catalogue does not know is
listed in a last section (:data:`OTHER_SECTION`), so nothing drawn disappears from the report silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FigureEntry:
    """One figure: its file stem (``<name>.png`` / ``.pdf`` in the figures folder) and a one-line caption."""

    name: str
    caption: str


@dataclass(frozen=True)
class Section:
    """A heading and its figures, in reading order."""

    heading: str
    figures: tuple[FigureEntry, ...]


SECTIONS: tuple[Section, ...] = (
    Section("The data (notebook 01)", (
        FigureEntry("Fig_3", "Fig. 3: fidelity of each eigenstate with the smallest-v chain against v, clean (a) and at "
                             "W = 0.15 (b): disorder scrambles the smooth bulk curves, the edge-state curves survive"),
    )),
    Section("The label: winding number (notebook 05, App. B)", (
        FigureEntry("Fig_6", "Fig. 6: winding number averaged over 25 realizations against v at W = 0, 1, 2, 3: a sharp "
                             "step at v = 1 when clean, broadened and pushed past v = 1 by disorder (dotted: v_c(W))"),
        FigureEntry("Fig_target_diagram", "The target phase diagram (W from 0 to 5, v from 0 to 2) regenerated from seeds, "
                                          "beside the published one; dashed: the thermodynamic boundary v_c(W)"),
    )),
    Section("The network and its training (notebook 02)", (
        FigureEntry("Fig_architecture", "CNN_SSH: three Conv-BatchNorm-LeakyReLU-Dropout blocks, a global average pool "
                                        "and one linear layer; 1,024 trainable parameters"),
        FigureEntry("Fig_training_inputs", "The input X[j, i] = |psi_i(j)|^2 (rows: sites, columns: eigenstates) of four "
                                           "clean training chains, two topological (v < 1) and two trivial"),
        FigureEntry("Fig_training_curves", "Loss and accuracy per epoch of one network, training (dropout on) and "
                                           "validation, best epoch marked"),
        FigureEntry("Fig_test_probability_vs_v", "Predicted probability of 'topological' against v on the clean test set, "
                                                 "whose window 0.8 < v < 1.2 was never trained on; the step is the label"),
        FigureEntry("Fig_accuracy_vs_W", "Accuracy and recall of each class of the same network against the disorder "
                                         "strength W (W ≤ 0.05 was part of training)"),
    )),
    Section("Class activation maps (notebook 03)", (
        FigureEntry("Fig_2", "Fig. 2: topological-class CAM of one clean topological chain for the toy model and four "
                             "networks (well/poorly generalizing x good/misleading CAM), above the target and their phase "
                             "diagrams. The four CAMs look alike because the good/misleading split sits at the population's "
                             "median CAM score, close to the chance level of a structureless map"),
        FigureEntry("Fig_CAM_averaged", "Both classes' CAMs of each highlighted network, averaged over all clean "
                                        "topological test chains, with the network's CAM score"),
        FigureEntry("Fig_CAM_score_vs_generalization", "The CAM score (share of the topological CAM in the edge-state "
                                                       "region) of every network against its MAE, RMSE and OOD accuracy, "
                                                       "with correlations: the more edge-focused the CAM, the worse the "
                                                       "network generalizes"),
    )),
    Section("Activations layer by layer (notebook 04)", (
        FigureEntry("Fig_4", "Fig. 4: PCA of the pooled features, fit on clean data, for two networks at W = 0 to 2: "
                             "light, the clean reference cloud; dark, the disordered chains"),
        FigureEntry("Fig_12", "Fig. 12: UMAP of five layers' activations at W = 0.15, 0.5, 1, 2, for the well-generalizing "
                              "network with a misleading CAM"),
        FigureEntry("Fig_13", "Fig. 13: UMAP of five layers' activations at W = 0.15, 0.5, 1, 2, for the poorly "
                              "generalizing network with a good CAM"),
    )),
    Section("The population (notebook 06)", (
        FigureEntry("Fig_population_summary", "The population: histograms of OOD accuracy, MAE, RMSE and SSIM to the "
                                              "target diagram, how many networks pass the 0.2 cut on MAE and RMSE, and "
                                              "the paper's 100 networks outlined (its \"RMSE\" column, a MAE, on the MAE "
                                              "panel)"),
    )),
    Section("Thermometer encoding (notebook 07, appendix)", (
        FigureEntry("Fig_thermometer", "Thermometer encoding of one clean chain (L = 15): 3-D bars of X, the lit pixels "
                                       "of each binary channel with channel 1 in red, and the number of lit channels per "
                                       "pixel: the bulk lights channel 0 only, the edge states many"),
        FigureEntry("Fig_thermometer_generalization", "Real-valued against thermometer-encoded input, same seeds and "
                                                      "recipe (the title gives the run and the networks per encoding): OOD "
                                                      "accuracy and RMSE of every network, as trained; below the dashed "
                                                      "RMSE = 0.2 a network passes the MAE ≤ 0.2 cut"),
        FigureEntry("Fig_thermometer_generalization_precise_bn", "Real-valued against thermometer-encoded input, same "
                                                                 "seeds and recipe (the title gives the run and the "
                                                                 "networks per encoding), with BatchNorm statistics "
                                                                 "averaged over the training set (precise BN)"),
    )),
    Section("Can clean data tell which networks generalize? (notebook 08)", (
        FigureEntry("Fig_predictors", "The clean-data diagnostics (from W ≤ 0.05 chains only) most correlated with "
                                      "OOD accuracy, each against it, one dot per network, Spearman with 95 % CI"),
        FigureEntry("Fig_lift_curves", "Selection lift: mean OOD accuracy of the k networks a diagnostic picks against "
                                       "k, beside random k-subsets (grey, 95 %) and the best possible pick (dashed)"),
        FigureEntry("Fig_recall_by_band", "Recall of the trivial (blue) and of the topological (red) class in each "
                                          "disorder band against the best clean-data diagnostic: which phase the failing "
                                          "networks get wrong, where"),
        FigureEntry("Fig_probe_images", "What the networks see: X = |psi_i(j)|^2 on a square-root colour scale, of a "
                                        "clean topological chain, an Anderson-localized trivial chain at W = 3, a clean "
                                        "trivial chain, and it with a probe's localized density"),
        FigureEntry("Fig_precise_bn", "Per network, as trained (running BatchNorm averages) against precise BN: OOD "
                                      "accuracy and the fraction of the W ≥ 2 region called topological"),
        FigureEntry("Fig_protocol_validation", "The frozen protocol out of sample: each diagnostic's Spearman with OOD "
                                               "accuracy on the validation population (95 % CI; filled: replicated), "
                                               "its discovery value as a cross"),
        FigureEntry("Fig_baseline_estimates", "The field's label-free OOD accuracy estimates (AC, DoC, ATC, agreement, COT) "
                                              "and the probe's frozen isotonic map against each network's true OOD "
                                              "accuracy, both populations, identity dashed"),
    )),
    Section("Making networks generalize (notebook 09)", (
        FigureEntry("Fig_ceiling", "The accuracy ceiling: the closing bond of the ring is never in the image; the Bayes "
                                   "classifier's accuracy against W (per band in red), per (W, v), and its recall per class"),
        FigureEntry("Fig_recipes_development", "Development on clean data only (quick preset, small ensembles per recipe and epoch budget): "
                                               "clean test accuracy and the bulk-density probe of every network"),
        FigureEntry("Fig_recipes_ood", "Validation (paper preset, seed 2): OOD accuracy of every network per recipe, "
                                       "beside the paper recipe's shipped populations and the ceiling (dotted)"),
        FigureEntry("Fig_recipes_median_diagrams", "The target diagram and the median network's predicted diagram "
                                                   "of each recipe"),
        FigureEntry("Fig_recipes_recall_by_band", "Median recall of each class per disorder band, per recipe, with "
                                                  "the ceiling's recall (dotted)"),
        FigureEntry("Fig_recipes_physics_rules", "The bar per disorder band: each population's median accuracy beside "
                                                 "the one-threshold physics rules (dashed) and the ceiling (dotted), "
                                                 "and its margin over the sublattice-position rule"),
        FigureEntry("Fig_recipes_cams", "The median network of each population: class activation maps averaged over "
                                        "clean topological chains, edge-state region boxed, with its CAM score"),
    )),
)
#: heading of the section listing the figures found in the folder but absent from :data:`SECTIONS`
OTHER_SECTION = "Other figures"
#: figure name -> caption, for every catalogued figure
CAPTIONS: dict[str, str] = {entry.name: entry.caption for section in SECTIONS for entry in section.figures}


def present_sections(figures_dir: str | Path, ext: str = "png") -> list[Section]:
    """The catalogue restricted to the figures drawn in ``figures_dir`` (files ``<name>.<ext>``).

    Sections keep their order and lose the figures that are missing; empty sections are dropped. Figures in
    the folder that the catalogue does not list follow, sorted by name, in a last section headed
    :data:`OTHER_SECTION` with empty captions.

    Parameters
    ----------
    figures_dir : folder of the pipeline's figures (missing folder: no figures).
    ext : file extension of the figures to look for, without the dot.

    Returns
    -------
    list of Section, possibly empty.
    """
    drawn = {path.stem for path in Path(figures_dir).glob(f"*.{ext}")}
    sections = []
    for section in SECTIONS:
        figures = tuple(entry for entry in section.figures if entry.name in drawn)
        if figures:
            sections.append(Section(section.heading, figures))
    others = tuple(FigureEntry(name, "") for name in sorted(drawn - CAPTIONS.keys()))
    if others:
        sections.append(Section(OTHER_SECTION, others))
    return sections
