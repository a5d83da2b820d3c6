"""Benchmarks share the test fixtures (real recordings, harness helpers)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
