"""The one integer rule of the package (ssh_ood.base.validation) and its use at the public entry points."""

import numpy as np
import pytest

from ssh_ood.base.validation import is_integer, optional_int, require_int


def test_integers_are_ints_and_numpy_integers_never_bools():
    assert all(is_integer(v) for v in (0, -3, np.int64(7), np.uint8(2)))
    assert not any(is_integer(v) for v in (True, False, np.bool_(True), 1.0, "1", None, np.float64(2.0)))


@pytest.mark.parametrize(("value", "bounds", "message"), [
    (True, {"minimum": 1}, r"n must be an integer >= 1, got True"),
    (0, {"minimum": 1}, r"n must be an integer >= 1, got 0"),
    (11, {"minimum": 1, "maximum": 10}, r"n must be an integer in \[1, 10\], got 11"),
    (3, {"maximum": 2}, r"n must be an integer <= 2, got 3"),
    (2.0, {}, r"n must be an integer, got 2.0"),
])
def test_a_value_outside_the_rule_is_refused_in_one_line_naming_it(value, bounds, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        require_int("n", value, **bounds)


def test_accepted_values_come_back_as_python_ints():
    for value in (np.int32(5), 5):
        checked = require_int("n", value, minimum=5, maximum=5)
        assert checked == 5 and type(checked) is int
    assert optional_int("n", None, minimum=1) is None
    with pytest.raises(ValueError, match="got 0: why"):
        require_int("n", 0, minimum=1, reason="why")


def test_the_entry_points_share_the_rule():
    from ssh_ood.nets.architecture import CNN_SSH
    from ssh_ood.nets.training_recipe import model_seed
    from ssh_ood.physics.data_generation import disorder_rng

    for call in (lambda: CNN_SSH(True), lambda: model_seed(0, True), lambda: disorder_rng(True)):
        with pytest.raises(ValueError, match="must be an integer"):
            call()
