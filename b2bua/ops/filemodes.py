"""Private files: what the product writes (the database, voicemail recordings, the admin token) holds personal
data, so nobody but the service's own user may read it.

The umask is set once at process start, before anything is created, so every file and directory written later
(also by SQLite and by pjsua2's recorder, which take their modes from it) is private. What already exists from
an older version (the state and voicemail directories, the database, the token) is tightened explicitly at
start, because a umask only affects what is created.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from b2bua.ops.logging import get_logger


def parse_umask(text: str) -> int:
    """``"0077"`` -> 0o077; raises ValueError for anything that is not an octal mask leaving the owner access."""
    if not text or len(text) > 4 or any(c not in "01234567" for c in text):
        raise ValueError(f"{text!r} is not an octal umask such as \"0077\"")
    mask = int(text, 8)
    if mask & 0o700:
        raise ValueError(f"{text!r} would deny the service's own user access to its files")
    return mask


def apply_umask(text: str) -> int:
    """Set the process umask from its setting (``[node] umask``); returns the previous one."""
    return os.umask(parse_umask(text))


def tighten(paths: list[Path], umask: str) -> None:
    """Take from existing files and directories of ours the permissions the umask forbids (new ones are created
    without them). Only paths owned by this user, never a shared sticky directory such as /tmp; each change is
    logged; one that cannot be made is logged and left to whoever uses the path."""
    mask = parse_umask(umask)
    log = get_logger("b2bua")
    for path in paths:
        try:
            st = path.lstat()
            mode = stat.S_IMODE(st.st_mode)
            ours = st.st_uid == os.getuid() and not mode & stat.S_ISVTX
            if ours and (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)) and mode & mask:
                path.chmod(mode & ~mask)
                log.warning("permissions tightened", path=str(path), was=oct(mode), now=oct(mode & ~mask))
        except FileNotFoundError:
            continue
        except OSError as e:
            log.warning("cannot tighten permissions", path=str(path), error=str(e))
