"""What a run finds (src/ssh_ood/figures/findings.py): the key-number rows and the findings sentences carry the numbers of
tiny synthetic population files, and leave out what is missing."""

from __future__ import annotations

import pandas as pd

from ssh_ood.base.io_utils import save_json
from ssh_ood.figures.findings import (
    findings_markdown,
    key_numbers,
    key_numbers_markdown,
    recipes_markdown,
    rules_bar_markdown,
)

STATS = pd.DataFrame({
    "model_index": range(5),
    "ood_accuracy": [0.50, 0.60, 0.70, 0.80, 0.95],
    "mae": [0.50, 0.40, 0.30, 0.19, 0.05],
    "rmse": [0.60, 0.50, 0.40, 0.30, 0.15],
    "test_accuracy": [0.90, 0.92, 0.95, 0.97, 1.00],
    "clean_accuracy": [0.91, 0.93, 0.96, 0.98, 0.99],
})


def _population(folder, predictors=True, precise_bn=True):
    folder.mkdir(parents=True, exist_ok=True)
    STATS.to_csv(folder / "stats.csv", index=False)
    if predictors:
        pd.DataFrame({
            "diagnostic": ["probe_x", "other", "cam_score"], "spearman_ood_accuracy": [-0.81, 0.5, -0.44],
            "spearman_low_ood_accuracy": [-0.9, 0.2, -0.62], "spearman_high_ood_accuracy": [-0.6, 0.7, -0.25],
            "spearman_p_ood_accuracy": [1e-5, 0.01, 0.02], "lift10": [0.123, 0.05, 0.01], "lift10_p": [0.004, 0.2, 0.4],
        }).to_csv(folder / "predictors.csv", index=False)
    if precise_bn:
        save_json(folder / "precise_bn_summary.json", {
            "near_half": "OOD accuracy < 0.55", "near_half_running": 7, "near_half_precise": 3,
            "ood_accuracy": {"running_median": 0.612, "precise_median": 0.655, "change_median": 0.031}})
    return folder


def _validation(folder):
    save_json(folder / "protocol_validation.json", {
        "n_models": 60, "n_replicated": 12, "n_tested": 40,
        "rule": {"diagnostic": "probe_x", "direction": "low", "k": 10, "selected_mean": 0.781,
                 "population_mean": 0.652, "lift": 0.129, "p_value": 0.0011}})
    return folder


def test_key_numbers_are_computed_from_the_stats_table():
    rows = {quantity: (ours, paper) for quantity, ours, paper in key_numbers(STATS)}
    assert rows["networks"] == ("5", "100")
    # the paper column from its per-network table (numbers checked by hand against the paper's table, not computed by the code)
    assert rows["OOD accuracy, min / median / max"] == ("0.500 / 0.700 / 0.950", "0.491 / 0.607 / 0.917 (its table)")
    assert rows["well generalizing, MAE ≤ 0.2"][0] == "2 of 5 (40%)"
    assert rows["well generalizing, MAE ≤ 0.2"][1].startswith("22 of 100 (22%) by its 'RMSE' ≤ 0.2")
    assert rows["well generalizing, RMSE ≤ 0.2"][0] == "1 of 5 (20%)"
    clean = rows["clean test accuracy (in-distribution test set), median (min–max)"]
    assert clean == ("0.950 (0.900–1.000)", "1.00 (the paper's demo network)")
    assert rows["accuracy on the clean row (W = 0) of the OOD grid, median (min–max)"][0] == "0.960 (0.910–0.990)"
    assert [q for q, _, _ in key_numbers(STATS[["ood_accuracy"]])] == ["networks", "OOD accuracy, min / median / max"]


def test_findings_carry_the_numbers_of_every_file_present(tmp_path):
    text = findings_markdown(_population(tmp_path / "pop"), _validation(tmp_path))
    paragraphs = text.split("\n\n")
    assert len(paragraphs) == 4
    stats, predictors, precise_bn, validation = paragraphs
    for number in ("0.900 and 1.000", "median 0.950", "0.500 to 0.950", "median 0.700", "+1.00",
                   "2 of 5 (40%)", "1 of 5 (20%)"):
        assert number in stats, number
    for number in ("`probe_x`", "-0.81", "-0.90 to -0.60", "+0.123", "p = 0.004", "ranks 3 of 3", "-0.44",
                   "-0.62 to -0.25"):
        assert number in predictors, number
    for number in ("0.612 to 0.655", "+0.031", "OOD accuracy < 0.55: 7 as trained, 3 with precise BN"):
        assert number in precise_bn, number
    for number in ("60 networks", "12 of 40", "10 networks with the lowest `probe_x`", "0.781", "0.652", "+0.129",
                   "p = 0.0011"):
        assert number in validation, number


def test_findings_leave_out_what_is_missing(tmp_path):
    assert findings_markdown(tmp_path / "nothing", tmp_path / "nothing either") == ""
    assert key_numbers_markdown(tmp_path / "nothing") == ""
    only_stats = findings_markdown(_population(tmp_path / "pop", predictors=False, precise_bn=False), tmp_path)
    assert "2 of 5 (40%)" in only_stats and "\n\n" not in only_stats
    assert "predictor" not in only_stats and "BatchNorm" not in only_stats and "independent" not in only_stats


def test_recipes_table_carries_each_evaluated_population_and_waits_for_a_named_one(tmp_path):
    protocol = {"frozen": "2026-12-03T08:58:51+0000", "master_seed": 2, "main_recipe": "defects",
                "populations": {"defects": {"n_models": 50, "out": "val/defects"},
                                "mirror": {"n_models": 20, "out": "val/mirror"}},
                "comparison_populations": ["paper_pop"]}
    save_json(tmp_path / "recipes_protocol.json", protocol)
    _population(tmp_path / "paper_pop", predictors=False, precise_bn=False)
    assert recipes_markdown(tmp_path / "recipes_protocol.json", tmp_path) == ""  # only the comparison exists
    assert recipes_markdown(tmp_path / "missing.json", tmp_path) == ""
    _population(tmp_path / "val" / "defects", predictors=False, precise_bn=False)
    save_json(tmp_path / "val" / "defects" / "committee.json", {"ood_accuracy": 0.8761})
    table = recipes_markdown(tmp_path / "recipes_protocol.json", tmp_path)
    defects = next(line for line in table.splitlines() if line.startswith("| defects (seed 2)"))
    assert "0.500 / 0.700 / 0.950" in defects and "| 40% |" in defects and "| 0.950 |" in defects and "0.876" in defects
    assert "mirror" not in table  # not evaluated yet
    paper = next(line for line in table.splitlines() if line.startswith("| paper recipe, paper_pop"))
    assert paper.endswith("not evaluated |")


def test_rules_bar_sentences_follow_the_sign_of_each_margin():
    columns = ["overall", "W in [0, 0.5]", "W in [3, 5]"]
    rule = [0.9, 0.98, 0.85]
    rows = {"ahead": ["population", 0.95, 0.99, 0.9], "mixed": ["population", 0.8, 0.99, 0.6],
            "sublattice_position": ["rule", *rule], "ceiling": ["ceiling", 0.99, 1.0, 0.97]}
    for label in ("ahead", "mixed"):
        rows[f"{label} − sublattice_position"] = ["margin", *(a - b for a, b in zip(rows[label][1:], rule, strict=True))]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["kind", *columns])
    text = rules_bar_markdown(table, "sublattice_position")
    ahead, mixed = (line for line in text.splitlines() if line.startswith(("- **ahead", "- **mixed")))
    assert "beats the rule overall" in ahead and "behind in" not in ahead
    assert "falls short of the rule overall" in mixed
    assert "ahead in W in [0, 0.5]" in mixed and "behind in W in [3, 5]" in mixed
    assert "**1 of 2 populations** clear" in text
    assert "W in [3, 5] 0.850 against 0.970" in text  # the rule beside the ceiling, band by band
