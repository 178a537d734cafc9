"""Writing an output file (export, dump, backup): private, and whole or not at all.

The file is written beside its destination as `.NAME.part`, created readable by its owner only
(like the database: an export holds the same customers and amounts), and moved into place only
when it is complete. Any failure, a full disk included, removes the partial file and says what
happened in one line; nothing half-written is ever left behind.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DomainError
from .share import output_mode

_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}


def write_failure(exc: OSError) -> str:
    """Why writing a file failed, in words."""
    if exc.errno in _NO_ROOM:
        return "there is no room left on the disk (free some space and try again)"
    if exc.errno in _NOT_ALLOWED:
        return "you may not write there (choose a folder of your own)"
    return exc.strerror or str(exc)


@contextmanager
def private_output(dest: Path, what: str) -> Iterator[Path]:
    """Yield the temporary path to write `dest` through; move it into place when the block ends
    without error. `what` names the command in messages ('export', 'dump', 'backup')."""
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        tmp.unlink(missing_ok=True)
        mode = output_mode(dest)  # the owner's; group-readable too in a folder shared with a group
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_EXCL, mode)
        os.close(fd)
        os.chmod(tmp, mode)  # whatever the umask
        yield tmp
        os.replace(tmp, dest)
    except OSError as exc:
        raise DomainError(
            f"{what}: could not write {dest}: {write_failure(exc)}; nothing was written", field="file"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["private_output", "write_failure"]
