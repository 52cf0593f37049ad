"""Child processes of the dev and test stacks end with the process that started them, even when it
is killed without a chance to stop them (a supervisor's SIGKILL, the OOM killer)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(stop_signal: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn under which the kernel sends the child stop_signal when its parent ends.

    Linux only (prctl PR_SET_PDEATHSIG); None elsewhere. None too when called off the main thread:
    the signal follows the thread that forked the child, so a worker thread's end would stop it.
    The setting survives exec, and subprocess applies user= and group= before the preexec_fn
    (a change of credentials would clear it).
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()
    signal_number = int(stop_signal)

    def preexec() -> None:
        # Runs in the forked child before exec: only calls that need no lock another thread may hold.
        prctl(_PR_SET_PDEATHSIG, signal_number, 0, 0, 0)
        if os.getppid() != parent:
            # The parent ended between fork and prctl: nothing will send the signal any more.
            os._exit(1)

    return preexec
