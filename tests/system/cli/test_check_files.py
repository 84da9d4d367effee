"""`exportd check` prepares a files dataset's query and checks its columns: their names
(key and some of bucket, path, size, sha256) and their types, at deploy time."""

from __future__ import annotations

from pathlib import Path

from tests.support.fixtures_s3 import S3Endpoint, create_bucket
from tests.support.helpers import deployment_env, exportd

KINDS = """
[kinds.good.datasets.receipts]
output = "files"
query = "SELECT 'r/' || :owner AS key, 'up' AS bucket, 'a.pdf'::varchar AS path, 3::bigint AS size"
[kinds.extra.datasets.receipts]
output = "files"
query = "SELECT 'r/a' AS key, 'a.pdf' AS filename WHERE :owner <> ''"
[kinds.twice.datasets.receipts]
output = "files"
query = "SELECT 'r/a' AS key, 'r/b' AS key WHERE :owner <> ''"
[kinds.sized.datasets.receipts]
output = "files"
query = "SELECT 'r/a' AS key, 1.5 AS size WHERE :owner <> ''"
[kinds.numbered.datasets.receipts]
output = "files"
query = "SELECT 7 AS key WHERE :owner <> ''"
"""


async def test_check_verifies_a_files_query_columns(
    rclone_server: S3Endpoint, dsn: str, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    env = deployment_env(tmp_path, dsn, rclone_server, bucket, KINDS)
    result = await exportd("check", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = {line.split(":", 1)[0]: line for line in result.stdout.splitlines()}
    assert lines["ok    kind good"].endswith("query prepares")
    assert "it returns key, filename" in lines["FAIL  kind extra"]
    assert "each once; it returns key, key" in lines["FAIL  kind twice"]
    assert "column size is of type numeric; it must be an integer" in lines["FAIL  kind sized"]
    assert "column key is of type int4; it must be text" in lines["FAIL  kind numbered"]
