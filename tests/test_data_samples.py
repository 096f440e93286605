"""data/: every sample file listed in data/PROVENANCE.md is there with the stated sha256, nothing else is, and
each stays small."""

import hashlib
import re
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
PROVENANCE = DATA / "PROVENANCE.md"
LISTED = re.compile(r"^([0-9a-f]{64})  (\S+)$", re.MULTILINE)
MAX_FILE_BYTES = 1_000_000
MAX_TOTAL_BYTES = 5_000_000


def listed() -> dict[str, str]:
    """PROVENANCE.md's `sha256  path` lines: {path relative to data/: sha256}."""
    return {path: digest for digest, path in LISTED.findall(PROVENANCE.read_text())}


def present() -> set[str]:
    """Files under data/ other than PROVENANCE.md, as paths relative to data/."""
    return {p.relative_to(DATA).as_posix() for p in DATA.rglob("*") if p.is_file() and p != PROVENANCE}


def test_provenance_lists_every_file_and_only_files_that_exist():
    files = listed()
    assert files, f"no `sha256  path` lines in {PROVENANCE}"
    unlisted, missing = sorted(present() - files.keys()), sorted(files.keys() - present())
    assert not unlisted, f"files in data/ that PROVENANCE.md does not list: {unlisted}"
    assert not missing, f"files listed in PROVENANCE.md that are missing: {missing}"


@pytest.mark.parametrize("path", sorted(listed()))
def test_file_has_the_stated_sha256_and_is_small(path):
    data = (DATA / path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == listed()[path]
    assert len(data) < MAX_FILE_BYTES


def test_samples_stay_a_few_megabytes():
    assert sum((DATA / p).stat().st_size for p in present()) < MAX_TOTAL_BYTES
