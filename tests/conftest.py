"""Suite-wide setup.

A shell without job control (``nohup cmd &``, a CI runner's background step) starts its children with SIGINT
ignored, and an ignored signal stays ignored across ``exec``: the CLIs, servers and kernels the tests start would
never see the Ctrl-C that the interruption tests send. POSIX asks programs to keep an inherited SIG_IGN, so the
CLI does; the tests restore Python's default handler in this process instead, and their children then start with
SIGINT at its default disposition, as under an interactive shell.
"""

import signal

import pytest

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def smoke_reproduction(tmp_path_factory):
    """One ``make reproduce`` run of the smoke preset (seed 1), shared by the tests that read its outputs.

    Returns the output folder (``report/``, ``figures/``, ``executed_notebooks/``, ...) and the report the run
    wrote. Tests may run the pipeline on it again (every step is then skipped) but must not change its outputs.
    """
    from ssh_ood.commands.reproduce import run_pipeline

    out_dir = tmp_path_factory.mktemp("smoke_reproduction")
    report = run_pipeline("smoke", seed=1, out_dir=out_dir, progress=False)
    return out_dir, report.read_text()


# The costliest groups of ``make test`` (see its printed 15 longest tests), started first so that the two workers
# finish together: with ``--no-loadscope-reorder`` xdist hands out the groups in the order of the items.
COSTLY_GROUPS = ("smoke_reproduction", "tests.test_04a_script", "tests.test_fault_sweep", "tests.test_clustering",
                 "tests.test_diagnostics", "tests.test_population_browser", "tests.test_dask_cluster",
                 "tests.test_servers", "tests.test_nothing_silent", "tests.test_cam", "tests.test_thermometer",
                 "tests.test_recipe_protocol")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """Under ``pytest -n N`` (``make test`` runs two workers, ``--dist loadgroup``): the tests of one module run on one
    worker, so that a module's fixtures (a trained population, a server, a pipeline) are built once; the tests that
    read the smoke reproduction run together, wherever their module, so that it is built once too. The groups of
    ``COSTLY_GROUPS`` come first, in its order; the others keep their collection order."""
    groups = {}
    for item in items:
        group = "smoke_reproduction" if "smoke_reproduction" in getattr(item, "fixturenames", ()) else item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))
        groups[item.nodeid] = group
    rank = {group: position for position, group in enumerate(COSTLY_GROUPS)}
    items.sort(key=lambda item: rank.get(groups[item.nodeid], len(rank)))  # stable: collection order within a rank
