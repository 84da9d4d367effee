"""Finding a Python handler: a dotted path, or an entry point of an installed package."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from exportd.definitions.python_datasets import HandlerNotFound, load_handler
from exportd.handlers import ENTRY_POINT_GROUP
from tests.support import custom_kinds


def test_a_dotted_path_names_a_function_either_way() -> None:
    assert load_handler("tests.support.custom_kinds:squares") is custom_kinds.squares
    assert load_handler("tests.support.custom_kinds.report_pdf") is custom_kinds.report_pdf


def test_an_entry_point_of_an_installed_distribution_names_a_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `pip install` leaves behind for a package declaring the entry point.
    info = tmp_path / "acme_exports-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-exports\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nsquares = tests.support.custom_kinds:squares\n"
    )
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    assert load_handler("squares") is custom_kinds.squares


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("tests.no_such_module:rows", "cannot import 'tests.no_such_module'"),
        ("tests.support.custom_kinds:nothing", "has no attribute 'nothing'"),
        ("tests.support.custom_kinds:annotations", "is not callable"),
        (
            "no-such-entry-point",
            f"no entry point 'no-such-entry-point' in group {ENTRY_POINT_GROUP!r}",
        ),
    ],
)
def test_a_reference_that_names_no_handler_says_why(reference: str, message: str) -> None:
    with pytest.raises(HandlerNotFound, match=re.escape(message)):
        load_handler(reference)
