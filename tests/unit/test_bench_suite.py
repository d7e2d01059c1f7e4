"""`make bench-check`: a ratio more than the tolerance worse than the committed baseline is reported."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _suite() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_suite", ROOT / "benchmarks" / "suite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_suite", module)
    spec.loader.exec_module(module)
    return module


def test_only_ratios_more_than_the_tolerance_worse_or_gone_are_reported():
    suite = _suite()
    baseline = {"flow": 1.20, "drift": 0.50, "help": 1.30}
    current = {"flow": 1.43, "drift": 0.61, "extra": 9.0}  # +19%, +22%; help not measured
    found = suite.regressions(current, baseline, 0.2)
    assert found == ["drift: 0.61x, was 0.50x (+22%)", "help: in the baseline (1.30x), not measured now"]
    assert suite.regressions({"flow": 0.9, "drift": 0.5, "help": 1.3}, baseline, 0.2) == []


def test_a_ratio_is_the_product_over_its_bare_reference():
    suite = _suite()
    ratio = suite.Ratio("training_flow_1Mx50_time", 30.0, 24.0, "s")
    assert ratio.to_dict()["ratio"] == 1.25
    assert suite.Ratio("x", 1.0, 0.0, "s").ratio == float("inf")
    assert "| training_flow_1Mx50_time | 30 s | 24 s | 1.25x |" in suite.table([ratio])
