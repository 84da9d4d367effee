"""Which datasets are split, and what the object becomes: pure decisions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from exportd.definitions.loader import definitions_from_text
from exportd.export.formats import FORMATS
from exportd.export.layout import ManifestHead, layout, manifest, part_entries, wants_split
from exportd.export.streams import MemberStats

KINDS = definitions_from_text(
    """
[kinds.orders]
query = "SELECT 1 AS n WHERE :owner <> ''"

[kinds.squares]
handler = "tests.support.custom_kinds:squares"

[kinds.account]
[kinds.account.datasets.accounts]
query = "SELECT 1 AS n WHERE :owner <> ''"
[kinds.account.datasets.events]
format = "jsonl"
query = "SELECT 1 AS n WHERE :owner <> ''"
[kinds.account.datasets.report]
handler = "tests.support.custom_kinds:report_pdf"
output = "bytes"
extension = "pdf"
"""
)


def test_a_query_is_split_only_past_split_rows_and_a_handler_always() -> None:
    orders = KINDS["orders"].datasets[0]
    assert not wants_split(None, orders, 5000)
    assert not wants_split(1000, orders, 1000)
    assert wants_split(1000, orders, 1001)
    assert not wants_split(1000, orders, 0)
    squares = KINDS["squares"].datasets[0]
    assert wants_split(1000, squares, None)
    assert not wants_split(None, squares, None)
    report = KINDS["account"].datasets[2]
    assert not wants_split(1, report, None), "a file is never split"


def test_a_split_single_file_becomes_a_zip_of_plain_parts() -> None:
    kind = KINDS["orders"]
    for name, extension in [
        ("csv", "csv"),
        ("csv.gz", "csv"),
        ("jsonl", "jsonl"),
        ("jsonl.gz", "jsonl"),
        ("json", "json"),
    ]:
        whole = layout(FORMATS[name], kind, {"orders": False})
        assert (whole.fmt.name, whole.zipped) == (name, False)
        split = layout(FORMATS[name], kind, {"orders": True})
        assert (split.fmt.name, split.fmt.content_type, split.zipped) == (
            "zip",
            "application/zip",
            True,
        )
        (member,) = split.members
        assert (member.extension, member.split, member.array) == (
            extension,
            True,
            name == "json",
        )
        assert member.encoding == FORMATS[name].encoding


def test_a_zip_splits_each_dataset_on_its_own() -> None:
    plan = layout(FORMATS["zip"], KINDS["account"], {"accounts": False, "events": True})
    assert plan.fmt.name == "zip"
    assert [(m.dataset.name, m.extension, m.split) for m in plan.members] == [
        ("accounts", "csv", False),
        ("events", "jsonl", True),
        ("report", "pdf", False),
    ]


def test_the_manifest_lists_parts_in_order_with_their_numbers() -> None:
    (member,) = layout(FORMATS["csv"], KINDS["orders"], {"orders": True}).members
    stats = [MemberStats(f"orders-000{n}.csv", 10 * n, f"h{n}") for n in (1, 2)]
    entries = part_entries(member, stats, [1000, 3])
    at = datetime(2026, 1, 2, tzinfo=UTC)
    head = ManifestHead("orders", "ann", "id", {}, at, split_rows=1000)
    document = json.loads(manifest(head, entries))
    assert document["split_rows"] == 1000
    assert document["members"] == [
        {
            "name": "orders-0001.csv",
            "dataset": "orders",
            "format": "csv",
            "rows": 1000,
            "bytes": 10,
            "sha256": "h1",
            "part": 1,
        },
        {
            "name": "orders-0002.csv",
            "dataset": "orders",
            "format": "csv",
            "rows": 3,
            "bytes": 20,
            "sha256": "h2",
            "part": 2,
        },
    ]
    assert "split_rows" not in json.loads(manifest(ManifestHead("k", "o", "i", {}, at), []))
