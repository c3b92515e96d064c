"""The dashboard's Voilà application, configured for this project (run by :mod:`ssh_ood.commands.servers`).

``python -m ssh_ood.commands.voila_app [voila options] NOTEBOOK`` runs Voilà in this process with the
settings that its command line cannot carry:

- **Shutdown on page close.** When a dashboard page is closed or reloaded, Voilà's page posts
  ``/voila/api/shutdown/<kernel id>`` with the ``_xsrf`` value it reads from the page's cookie. Voilà never
  sets that cookie, so every post was refused (``403 ... '_xsrf' argument missing``) and every page load
  left its kernel running. :func:`issue_xsrf_cookie` runs before each page's kernel starts and sets the
  cookie, so the shutdown is accepted; the XSRF check itself stays on.
- **No CDN.** The ``offline`` template (:data:`TEMPLATE_ROOT`) is Voilà's ``lab`` template without its two
  Font Awesome stylesheets from cdn.jsdelivr.net (the dashboard's widgets use no icons).
- **The token** is read from the environment variable ``JUPYTER_TOKEN`` (not from the command line, where
  other users could read it in the process list).
- **Nothing served without the token.** Voilà serves ``/voila/files/`` (images next to the notebook) without
  checking the token; the dashboard needs none of them, so that route serves nothing.
- **Any stop signal stops it cleanly.** SIGINT, SIGTERM and SIGHUP alike stop the server and shut its kernels
  down (Voilà itself does so on SIGTERM only).
- **Nothing written into the repository.** The kernels save their figures in a fresh temporary folder
  (:data:`ssh_ood.base.figure_files.FIGURES_ENV`), not in the notebook's ``FIGURES_DIR``.

Kernel culling and the rest are ordinary options, passed by :func:`ssh_ood.commands.servers.dashboard_command`.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..base.figure_files import FIGURES_ENV

TEMPLATE_ROOT = Path(__file__).resolve().parent / "jupyter_data"  # holds voila/templates/offline
TEMPLATE = "offline"
#: the signals that stop the dashboard like Ctrl-C: its kernels shut down, its port freed
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def issue_xsrf_cookie(handler, notebook, cwd):
    """Voilà's ``prelaunch_hook``: give the page its ``_xsrf`` cookie (tornado sets it when the token is read).

    Parameters
    ----------
    handler : the tornado request handler of the page.
    notebook, cwd : the notebook about to run and its folder (unchanged).

    Returns
    -------
    None: the notebook is run as it is.
    """
    _ = handler.xsrf_token  # reading the token sets the cookie on this response
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Run Voilà with ``argv`` (as its own command line), the offline template and the cookie hook."""
    from voila.app import Voila

    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(TEMPLATE_ROOT), os.environ.get("JUPYTER_PATH")]))
    token = os.environ.pop("JUPYTER_TOKEN", None)  # the kernels need not see it
    args = list(sys.argv[1:] if argv is None else argv)
    figures = os.environ[FIGURES_ENV] = tempfile.mkdtemp(prefix="ssh_ood_dashboard_figures_")  # kernels inherit it
    app = Voila.instance()
    app.initialize([f"--template={TEMPLATE}", *([f"--token={token}"] if token else []), *args])
    app.voila_configuration.prelaunch_hook = issue_xsrf_cookie
    app.voila_configuration.file_allowlist = []  # /voila/files/ is served without the token: serve nothing there
    for number in STOP_SIGNALS:  # Voilà stops its kernels on SIGTERM only: on SIGINT and SIGHUP too
        signal.signal(number, app._handle_signal_stop)
    try:
        app.start()
    finally:
        shutil.rmtree(figures, ignore_errors=True)


if __name__ == "__main__":
    main()
