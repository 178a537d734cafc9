"""tui/messages.py: its messages take their fields as dataclasses take them."""

from __future__ import annotations

import pytest

from evpipe.models.records import ChangeResult
from evpipe.tui.messages import ChangeFailed, DataChanged, JournalLoaded, message


def test_fields_by_position_by_name_and_by_default():
    failed = ChangeFailed("the disk is full", 7, retryable=True)
    assert (failed.error, failed.prospect_id, failed.retryable) == ("the disk is full", 7, True)
    assert failed.optimistic == (0, 0, 0) and failed.cause is None and failed.context is None
    assert DataChanged().result is None
    result = ChangeResult(1, "moved", "advance")
    assert DataChanged(result).result is result and DataChanged(result=result).result is result
    # Textual's own set-up ran: the message has its time and is not stopped
    assert failed.time > 0 and not failed._stop_propagation


def test_a_wrong_call_is_a_type_error_as_a_dataclass_says():
    with pytest.raises(TypeError, match="missing 'error'"):
        ChangeFailed()
    with pytest.raises(TypeError, match="unexpected argument 'colour'"):
        ChangeFailed("x", colour="red")
    with pytest.raises(TypeError, match="two values for 'error'"):
        ChangeFailed("x", error="y")
    with pytest.raises(TypeError, match="takes 1 arguments but 2 were given"):
        DataChanged(None, None)
    with pytest.raises(TypeError, match="missing 'entries'"):
        JournalLoaded()


def test_each_message_keeps_its_own_fields():
    from textual.message import Message

    @message
    class A(Message):
        x: int
        y: str = "y"

    @message
    class B(Message):
        y: str = "b"

    assert (A(1).x, A(1).y, B().y) == (1, "y", "b")
    with pytest.raises(TypeError):
        B(1, 2)


def test_a_message_derived_from_another_takes_its_fields_first():
    from textual.message import Message

    @message
    class Base(Message):
        x: int
        y: str = "y"

    @message
    class Derived(Base):
        z: float = 0.5

    d = Derived(1, z=2.0)
    assert (d.x, d.y, d.z) == (1, "y", 2.0)
    assert (Base(3).x, Base(3).y) == (3, "y") and not hasattr(Base(3), "z")
    with pytest.raises(TypeError, match="missing 'x'"):
        Derived()
