"""Suite-wide setup.

A shell without job control (``nohup cmd &``, a CI runner's background step) starts its children with SIGINT
ignored, and an ignored signal stays ignored across ``exec``: the CLIs, servers and kernels the tests start would
never see the Ctrl-C that the interruption tests send. POSIX asks programs to keep an inherited SIG_IGN, so the
CLI does; the tests restore Python's default handler in this process instead, and their children then start with
SIGINT at its default disposition, as under an interactive shell.
"""

import signal

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
