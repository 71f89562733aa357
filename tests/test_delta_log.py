"""Reading commit info straight from _delta_log agrees with Delta's own history."""

from __future__ import annotations

from delta.tables import DeltaTable

from orderlake.engine.delta_log import find_commit, is_delta_table, latest_version


def test_find_commit_by_user_metadata(spark, tmp_path):
    path = tmp_path / "t"
    assert not is_delta_table(path) and find_commit(path, "x") is None
    spark.range(3).write.format("delta").option("userMetadata", "first").save(str(path))
    spark.range(5).write.format("delta").mode("append").option("userMetadata", "second").save(
        str(path)
    )
    assert is_delta_table(path)
    info = find_commit(path, "second")
    assert info is not None and info["operationMetrics"]["numOutputRows"] == "5"
    history = DeltaTable.forPath(spark, str(path)).history().where("userMetadata = 'first'")
    assert find_commit(path, "first")["operation"] == history.first().operation
    assert find_commit(path, "third") is None


def test_a_log_folder_without_a_commit_is_not_a_table(tmp_path):
    """What a writer killed before its first commit leaves: never mistaken for a table."""
    log = tmp_path / "t" / "_delta_log"
    log.mkdir(parents=True)
    (log / ".00000000000000000000.json.3f2a.tmp").write_text("{}")
    (log / "00000000000000000000.crc.tmp").write_text("{}")
    assert not is_delta_table(tmp_path / "t") and latest_version(tmp_path / "t") is None
    (log / "00000000000000000010.checkpoint.parquet").write_bytes(b"PAR1")
    assert is_delta_table(tmp_path / "t") and latest_version(tmp_path / "t") == 10
    (log / "00000000000000000011.json").write_text("{}")
    assert latest_version(tmp_path / "t") == 11
