from decimal import Decimal

import pytest

from evpipe.models.kpi import kpis

pytestmark = pytest.mark.both_databases


def test_worked_example(worked_engine):
    k = kpis(worked_engine)
    assert k.tv == Decimal("22000.00")
    assert k.ev == Decimal("9500.00")
    assert k.ev_tv_rounded(4) == Decimal("0.4318")
    assert k.count == 4
