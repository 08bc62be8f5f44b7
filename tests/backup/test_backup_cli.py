"""``madoguchi backup`` / ``restore`` through argparse: keys from the environment, reports,
exit statuses, bilingual refusals."""

from __future__ import annotations

import argparse
import base64
import secrets
from pathlib import Path

import pytest
from backup_support import file_sha256, flip_byte
from support import morning, small_site

from edge.backup import add_parsers
from edge.domain.clock import ManualClock
from edge.domain.commands import Issue
from edge.store.store import EventStore
from edge.store.writer import Writer
from hub.store import HubStore

CONFIG = small_site()


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="madoguchi")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    monkeypatch.setenv("MADOGUCHI_BACKUP_KEYS", f"nightly:{key}")
    monkeypatch.delenv("MADOGUCHI_BACKUP_COPY_TO", raising=False)


def edge_db(path: Path, tickets: int) -> None:
    w = Writer(EventStore(path, CONFIG.site), CONFIG, ManualClock(morning(24)))
    try:
        for _ in range(tickets):
            assert w.execute_sync(Issue("A")).refused is None
    finally:
        w.close()


@pytest.mark.usefixtures("keyed")
def test_edge_backup_and_restore_commands(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "edge.db"
    edge_db(db, 4)
    assert run("backup", "edge", "--db", str(db), "--to", str(tmp_path / "b"),
               "--copy-to", str(tmp_path / "far")) == 0
    out = capsys.readouterr().out
    assert "バックアップを作成しました" in out
    assert "4 tickets" in out
    [backup] = (tmp_path / "b").glob("edge-test-site-*.mbk")
    assert (tmp_path / "far" / backup.name).exists()

    target = tmp_path / "new" / "edge.db"
    assert run("restore", "edge", str(backup), "--db", str(target), "--site", "test-site") == 0
    out = capsys.readouterr().out
    assert "tickets / 整理券: 4" in out
    assert "max seq / 最終番号" in out

    flip_byte(backup, 200)
    before = file_sha256(target)
    assert run("restore", "edge", str(backup), "--db", str(target), "--site", "test-site") == 1
    err = capsys.readouterr().err
    assert "refused" in err
    assert "中止しました" in err
    assert file_sha256(target) == before


def test_no_key_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MADOGUCHI_BACKUP_KEYS", raising=False)
    db = tmp_path / "edge.db"
    edge_db(db, 1)
    assert run("backup", "edge", "--db", str(db), "--to", str(tmp_path / "b")) == 1
    err = capsys.readouterr().err
    assert "MADOGUCHI_BACKUP_KEYS" in err
    assert "バックアップ鍵がありません" in err
    assert not (tmp_path / "b").exists()


@pytest.mark.usefixtures("keyed")
async def test_hub_commands_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    src = f"sqlite:///{tmp_path}/hub.db"
    store = await HubStore.open(src)
    await store.close()
    assert await asyncio.to_thread(run, "backup", "hub", "--db", src, "--to",
                                   str(tmp_path / "b")) == 0
    [backup] = (tmp_path / "b").glob("hub-*.mbk")
    dst = f"sqlite:///{tmp_path}/restored.db"
    assert await asyncio.to_thread(run, "restore", "hub", str(backup), "--db", dst) == 0
    out = capsys.readouterr().out
    assert "all tables match the backup" in out
    assert "alembic_version" in out
