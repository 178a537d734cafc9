"""A share of a long piece of Python work done by a forked copy of this process, beside this one.

A big import makes each new row's prospect, journal entry and stage history in Python, a row at a
time (models/import_commit.py): a core's work of seconds. Threads do not share it (the interpreter
lock), and a new process would have to import evpipe and be handed the plan first. A fork starts
with everything this process holds, works out its share and hands back the answer, pickled,
through a pipe; this process does the other share meanwhile.

The child only computes: it touches no database connection, file or terminal it inherited, and
ends with `os._exit` (none of this process's clean-ups run twice). Whatever goes wrong in it (an
exception, a signal, a fork the system refuses) comes back as "no answer", and the caller does
that share itself: the result is the same, only slower."""

from __future__ import annotations

import os
import pickle
import select
import signal
from collections.abc import Callable
from time import monotonic
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")


class Forked:
    """A child process working out `work()`; `answer()` waits for what it returned."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd
        self.done = False

    @staticmethod
    def patience(own_share: float) -> float:
        """How long to wait for a child's answer once this process's own share took `own_share`
        seconds: the child's share is about as long, so a healthy child has answered long before."""
        return 10.0 + 3 * own_share

    @classmethod
    def start(cls, work: Callable[[], Any]) -> Forked | None:
        """`work` begun in a forked child; None where there is no second core or no fork."""
        if not hasattr(os, "fork") or (os.cpu_count() or 1) < 2:
            return None
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return None
        if pid == 0:  # pragma: no cover - the child (coverage does not follow a fork)
            code = 1
            try:
                os.close(read_end)
                try:
                    answer = pickle.dumps((True, work()), protocol=pickle.HIGHEST_PROTOCOL)
                except BaseException as exc:  # noqa: BLE001 - any failure is "no answer" to the parent
                    answer = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
                with os.fdopen(write_end, "wb") as out:
                    out.write(answer)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        return cls(pid, read_end)

    def answer(self, timeout: float | None = None) -> tuple[bool, Any]:
        """(True, what `work` returned), or (False, why there is none). A child that has not
        begun to answer within `timeout` seconds (a caller gives several times what its own share
        took) is stopped: its share is then the caller's, rather than a wait without end."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            self.close()
            return False, f"the helper process gave no answer within {timeout:g} s"
        try:
            with os.fdopen(self.fd, "rb") as pipe:
                data = pipe.read()
        finally:
            self.done = True
            _, status = os.waitpid(self.pid, 0)
        if not data:
            return False, f"the helper process ended without an answer (status {status})"
        try:
            ok, value = pickle.loads(data)
        except Exception as exc:  # noqa: BLE001 - a cut-short answer is no answer
            return False, f"the helper's answer could not be read: {exc}"
        return bool(ok), value

    def close(self) -> None:
        """Stop the child and reap it when its answer was not taken (the caller failed first)."""
        if self.done:
            return
        self.done = True
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


class Ahead(Generic[_T]):
    """`work` begun now in a forked child (`Forked.start`), its answer taken when the caller
    needs it (calling this): where the child gave none (no fork, no second core, an error in it,
    no answer within `Forked.patience` of the time since it began), `work` is done here then.
    `close` stops a child whose answer was not taken (the caller failed first)."""

    def __init__(self, work: Callable[[], _T]) -> None:
        self.work = work
        self.child = Forked.start(work)
        self.began = monotonic()

    def __call__(self) -> _T:
        child, self.child = self.child, None
        if child is not None:
            ok, value = child.answer(Forked.patience(monotonic() - self.began))
            if ok:
                return value
        return self.work()

    def close(self) -> None:
        if self.child is not None:
            self.child.close()
            self.child = None
