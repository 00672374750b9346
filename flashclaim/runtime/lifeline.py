"""Child processes die with their parent, even when the parent is killed with SIGKILL.

Linux's PR_SET_PDEATHSIG has the kernel send a signal to a process when the
thread that started it exits. `serve` passes `die_with_parent` to every
subprocess it starts (the embedded server, the admin listener), and each uvicorn
worker calls `tie_to_parent` itself (uvicorn starts them, not us). Elsewhere
(macOS) these are no-ops: the children then outlive a SIGKILL of their parent.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import sys

PARENT_ENV = "FLASHCLAIM_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def _set_parent_death_signal(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0)


def die_with_parent() -> None:
    """A preexec_fn for subprocess.Popen: SIGTERM this child when its parent dies."""
    _set_parent_death_signal(signal.SIGTERM)


def tie_to_parent() -> None:
    """In a process started by someone else on our behalf (a uvicorn worker): take SIGTERM
    when the `serve` process named in the environment dies, and leave at once if it
    already has (it may have died before this call)."""
    raw = os.environ.get(PARENT_ENV, "")
    if not re.fullmatch(r"[0-9]{1,10}", raw) or int(raw) == os.getpid():
        return
    tie_to(int(raw))


def tie_to(parent: int) -> None:
    """In a child process: take SIGTERM when `parent` dies, and at once if it already has
    (the quote worker's initializer; tie_to_parent for a uvicorn worker)."""
    if _set_parent_death_signal(signal.SIGTERM) and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)
