from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "motion"


@pytest.fixture
def shared_motion() -> Path:
    """../shared/data/motion (PROVENANCE.md there); tests needing it skip without it."""
    if not SHARED.is_dir():
        pytest.skip(f"no shared motion data at {SHARED}")
    return SHARED
