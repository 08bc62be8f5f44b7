"""``madoguchi provision``: files, modes, password hashes mosquitto accepts, stubs, rotation."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from conftest import free_port, unavailable
from test_broker_acl import WAIT_S, Client, run_mosquitto

from edge.config import parse_site_config
from edge.provision import add_parsers
from edge.provision import files as files_mod
from edge.provision.files import parse_env
from edge.provision.passwd import hash_password, parse_passwd, verify_password
from edge.provision.sites import ProvisionError, provision_broker, provision_site, site_stub


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its content (None for folders)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
            for p in sorted(root.rglob("*"))}


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="madoguchi")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


def test_site_files_modes_and_contents(tmp_path: Path) -> None:
    r = provision_site(tmp_path, "nerima-main", broker_host="mqtt.ward.example.jp")
    site = tmp_path / "sites/nerima-main"
    assert r.env_path == site / "mqtt.env"
    assert r.config_path == site / "site.toml"
    assert r.config_created
    assert r.hub_created
    assert r.username == "site-nerima-main"
    assert mode(site / "mqtt.env") == 0o600
    assert mode(site) == 0o700
    assert mode(tmp_path / "broker/passwd") == 0o600
    assert mode(tmp_path / "broker") == 0o700
    assert mode(tmp_path / "hub/mqtt.env") == 0o600
    env = parse_env((site / "mqtt.env").read_text())
    assert env == {"MADOGUCHI_SITE": "nerima-main",
                   "MADOGUCHI_MQTT_URL": "mqtt://mqtt.ward.example.jp:1883",
                   "MADOGUCHI_MQTT_USERNAME": "site-nerima-main",
                   "MADOGUCHI_MQTT_PASSWORD": r.password,
                   "MADOGUCHI_MQTT_PREFIX": "madoguchi/v1"}
    assert len(r.password) == 32  # 24 random bytes, URL-safe base64
    users = parse_passwd((tmp_path / "broker/passwd").read_text())
    assert set(users) == {"hub", "site-nerima-main"}
    assert verify_password(users["site-nerima-main"], r.password)
    hub_env = parse_env((tmp_path / "hub/mqtt.env").read_text())
    assert hub_env["MADOGUCHI_MQTT_USERNAME"] == "hub"
    assert verify_password(users["hub"], hub_env["MADOGUCHI_MQTT_PASSWORD"])
    # the plain password is in the site's env file and nowhere else
    holders = [k for k, v in tree(tmp_path).items() if v and r.password.encode() in v]
    assert holders == ["sites/nerima-main/mqtt.env"]
    acl = (tmp_path / "broker/acl").read_text()
    assert "user site-nerima-main\ntopic write madoguchi/v1/sites/nerima-main/events\n" in acl


def test_hash_format_is_mosquitto_passwd_s(tmp_path: Path) -> None:
    exe = shutil.which("mosquitto_passwd")
    if exe is None:
        unavailable("mosquitto_passwd not installed (apt install mosquitto)")
    pw_file = tmp_path / "pw"
    subprocess.run([exe, "-c", "-b", str(pw_file), "alice", "s3cret-パス"], check=True)
    theirs = parse_passwd(pw_file.read_text())["alice"]
    assert verify_password(theirs, "s3cret-パス")
    assert not verify_password(theirs, "s3cret")
    _, seven, iterations, salt_b64, _ = theirs.split("$")
    import base64

    ours = hash_password("s3cret-パス", iterations=int(iterations),
                         salt=base64.b64decode(salt_b64))
    assert (seven, ours) == ("7", theirs)  # byte-identical given the same salt
    assert re.fullmatch(r"\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==", hash_password("x"))


def test_mosquitto_accepts_the_generated_password_and_refuses_a_wrong_one(
        tmp_path: Path) -> None:
    r = provision_site(tmp_path, "oizumi")
    port = free_port()
    conf, _ = provision_broker(tmp_path, port=port, tls=False, tls_port=8883,
                               broker_host=None, prefix=None)
    with run_mosquitto(conf, [port]) as proc:
        connected = Client(port, r.username, r.password, protocol=mqtt.MQTTv311)
        assert connected.connect() == 0
        wrong = Client(port, r.username, r.password[:-1], protocol=mqtt.MQTTv311).connect()
        assert wrong == 135  # CONNACK 5 "not authorised", as paho reports it
        # rotate, reload (SIGHUP): the old password stops working, the new one works
        (tmp_path / "sites/oizumi/site.toml").write_text("# edited by the IT person\n")
        new = provision_site(tmp_path, "oizumi", rotate=True)
        assert new.password != r.password
        assert not new.config_created
        assert (tmp_path / "sites/oizumi/site.toml").read_text() == "# edited by the IT person\n"
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + WAIT_S
        while Client(port, new.username, new.password).connect() != 0:
            assert time.monotonic() < deadline, "mosquitto did not reload the password file"
        assert Client(port, r.username, r.password).connect() == 135
        connected.disconnects.get(timeout=WAIT_S)  # the reload dropped the old session
        connected.c.loop_stop()


def test_site_stub_parses_as_a_site_config(tmp_path: Path) -> None:
    r = provision_site(tmp_path, "hikarigaoka")
    cfg = parse_site_config(r.config_path.read_text(), str(r.config_path))
    assert cfg.site == "hikarigaoka"
    assert list(cfg.services) == ["A"]
    assert list(cfg.counters) == ["1"]
    assert parse_site_config(site_stub("x9")).site == "x9"


def test_existing_site_needs_rotate_and_rotate_needs_a_site(tmp_path: Path) -> None:
    provision_site(tmp_path, "oizumi")
    before = tree(tmp_path)
    with pytest.raises(ProvisionError, match="--rotate") as err:
        provision_site(tmp_path, "oizumi")
    assert "--rotate" in err.value.message_ja
    with pytest.raises(ProvisionError, match="nothing to rotate"):
        provision_site(tmp_path, "nerima-main", rotate=True)
    assert tree(tmp_path) == before
    hub_before = (tmp_path / "hub/mqtt.env").read_text()
    second = provision_site(tmp_path, "nerima-main")
    assert not second.hub_created
    assert (tmp_path / "hub/mqtt.env").read_text() == hub_before


@pytest.mark.parametrize("name", ["", "a", "Oizumi", "-oizumi", "oizumi_2", "x" * 42, "../etc",
                                  "site/one", "oizumi ", "大泉"])
def test_bad_names_are_refused_and_nothing_is_written(
        tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "prov"
    with pytest.raises(ProvisionError, match="bad site name"):
        provision_site(root, name)
    assert not root.exists()
    assert cli("provision", "site", "--dir", str(root), "--", name) == 2
    err = capsys.readouterr().err
    assert "bad site name" in err
    assert "サイト名" in err
    assert "Traceback" not in err
    assert not root.exists()


def test_an_operators_mode_and_group_survive_the_next_run(tmp_path: Path) -> None:
    provision_site(tmp_path, "oizumi")
    passwd = tmp_path / "broker/passwd"
    others = [g for g in os.getgroups() if g != passwd.stat().st_gid]
    gid = 4242 if os.geteuid() == 0 else others[0] if others else passwd.stat().st_gid
    os.chown(passwd, -1, gid)
    passwd.chmod(0o640)  # so that mosquitto's group can read it
    provision_site(tmp_path, "nerima-main")
    assert "site-nerima-main:" in passwd.read_text()
    assert mode(passwd) == 0o640
    assert passwd.stat().st_gid == gid


def test_a_failure_half_way_leaves_nothing_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    provision_site(tmp_path, "oizumi")
    before = tree(tmp_path)
    calls = 0
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 4:  # after some new files were written in full
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(files_mod.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        provision_site(tmp_path, "nerima-main")
    assert calls == 4
    assert tree(tmp_path) == before  # no new site folder, no temp files, passwd unchanged


def test_broker_conf_and_acl(tmp_path: Path) -> None:
    provision_site(tmp_path, "oizumi")
    provision_site(tmp_path, "nerima-main")
    conf, created = provision_broker(tmp_path, port=1884, tls=False, tls_port=8883,
                                     broker_host=None, prefix=None)
    assert not created
    assert not (tmp_path / "broker/tls").exists()
    text = conf.read_text()
    b = tmp_path.resolve() / "broker"
    for line in ["allow_anonymous false", f"password_file {b / 'passwd'}",
                 f"acl_file {b / 'acl'}", "persistence true",
                 f"persistence_location {b / 'data'}/", "listener 1884"]:
        assert f"\n{line}\n" in text, line
    assert "certfile" not in text
    acl = (tmp_path / "broker/acl").read_text()
    blocks = [b.strip().splitlines() for b in acl.split("\n\n")[1:]]
    assert blocks[0] == ["user hub", "topic readwrite madoguchi/v1/#"]
    assert blocks[1] == ["user site-nerima-main",
                         "topic write madoguchi/v1/sites/nerima-main/events",
                         "topic write madoguchi/v1/sites/nerima-main/status",
                         "topic write madoguchi/v1/sites/nerima-main/replies",
                         "topic read madoguchi/v1/sites/nerima-main/ack",
                         "topic read madoguchi/v1/sites/nerima-main/config",
                         "topic read madoguchi/v1/sites/nerima-main/commands",
                         "topic read madoguchi/v1/sites/nerima-main/staff",
                         "topic read madoguchi/v1/sites/nerima-main/reservations",
                         "topic read madoguchi/v1/hub/status"]
    assert blocks[2][0] == "user site-oizumi"
    assert len(blocks) == 3
    # port and prefix reach the env files, the passwords stay
    env_before = parse_env((tmp_path / "sites/oizumi/mqtt.env").read_text())
    provision_broker(tmp_path, port=1885, tls=False, tls_port=8883, broker_host="10.0.0.2",
                     prefix="ward/v1")
    env = parse_env((tmp_path / "sites/oizumi/mqtt.env").read_text())
    assert env["MADOGUCHI_MQTT_URL"] == "mqtt://10.0.0.2:1885"
    assert env["MADOGUCHI_MQTT_PREFIX"] == "ward/v1"
    assert env["MADOGUCHI_MQTT_PASSWORD"] == env_before["MADOGUCHI_MQTT_PASSWORD"]
    assert "topic write ward/v1/sites/oizumi/events" in (tmp_path / "broker/acl").read_text()


def test_tls_material_is_made_once_and_verifies(tmp_path: Path) -> None:
    provision_site(tmp_path, "oizumi")
    conf, created = provision_broker(tmp_path, port=1883, tls=True, tls_port=8883,
                                     broker_host="mqtt.ward.example.jp", prefix=None)
    tls = tmp_path / "broker/tls"
    assert created
    assert sorted(p.name for p in tls.iterdir()) == [
        "ca.crt", "server.crt", "server.key"]
    assert mode(tls / "server.key") == 0o600
    assert mode(tls) == 0o700
    text = conf.read_text()
    assert "\nlistener 1883 127.0.0.1\n" in text
    assert "\nlistener 8883\n" in text
    assert f"\ncertfile {tls.resolve() / 'server.crt'}\n" in text
    openssl = shutil.which("openssl")
    assert openssl is not None
    ok = subprocess.run([openssl, "verify", "-CAfile", str(tls / "ca.crt"),
                         str(tls / "server.crt")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    shown = subprocess.run([openssl, "x509", "-in", str(tls / "server.crt"), "-noout", "-ext",
                            "subjectAltName"], capture_output=True, text=True, check=True)
    assert "DNS:mqtt.ward.example.jp" in shown.stdout
    env = parse_env((tmp_path / "sites/oizumi/mqtt.env").read_text())
    assert env["MADOGUCHI_MQTT_URL"] == "mqtts://mqtt.ward.example.jp:8883"
    assert env["MADOGUCHI_MQTT_CA"] == "/etc/madoguchi/mqtt-ca.crt"
    assert (tmp_path / "sites/oizumi/mqtt-ca.crt").read_bytes() == (tls / "ca.crt").read_bytes()
    first = tree(tls)
    _, again = provision_broker(tmp_path, port=1883, tls=True, tls_port=8883, broker_host=None,
                                prefix=None)
    assert not again
    assert tree(tls) == first


def test_cli_site_and_broker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path)
    assert cli("provision", "site", "oizumi", "--dir", root, "--broker-host", "127.0.0.1") == 0
    out = capsys.readouterr().out
    env = parse_env((tmp_path / "sites/oizumi/mqtt.env").read_text())
    assert env["MADOGUCHI_MQTT_PASSWORD"] in out
    assert "shown once" in out
    assert cli("provision", "site", "oizumi", "--dir", root) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli("provision", "site", "oizumi", "--dir", root, "--rotate") == 0
    assert parse_env((tmp_path / "sites/oizumi/mqtt.env").read_text()) != env
    capsys.readouterr()
    assert cli("provision", "broker", "--dir", root, "--port", "1999") == 0
    assert "mosquitto -c" in capsys.readouterr().out
    assert cli("provision", "broker", "--dir", root, "--port", "0") == 2
    assert cli("provision", "broker", "--dir", root, "--broker-host", "a b") == 2
    err = capsys.readouterr().err
    assert "bad port 0" in err
    assert "bad broker host" in err
    assert "Traceback" not in err
