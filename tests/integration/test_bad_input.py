"""Bad input found by a security review (issue 13): each is exit 2 naming the variable, no traceback, no secret.

Unit tests of settings first (pure and fast), then a few through the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rclone_jupyter.config import settings
from rclone_jupyter.errors import ConfigError
from rclone_jupyter.state import StateDir

CLI = str(Path(sys.executable).parent / "rclone-jupyter")
S3 = {"AWS_S3_BUCKET_FOLDER": "bucket/me", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "s3-Secret-99zz"}


def _key(private_key: str) -> str:
    return json.dumps({"type": "service_account", "project_id": "p-1", "private_key": private_key,
                       "client_email": "sa@p-1.iam.gserviceaccount.com", "token_uri": "https://x/token"})


def real_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def problems(tmp_path: Path, **env) -> str:
    base = {"RCLONE_JUPYTER_STATE_DIR": str(tmp_path / "state"), "RCLONE_JUPYTER_DATA_DIR": str(tmp_path / "data"),
            "RCLONE_JUPYTER_EXAMPLES_DIR": ""}
    with pytest.raises(ConfigError) as info:
        settings.load({**base, **env})
    return str(info.value)


# -- paths ---------------------------------------------------------------------------------------------------


def test_a_data_folder_through_a_symlink_cannot_hide_the_state_dir_inside_it(tmp_path):
    real = tmp_path / "real-data"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    text = problems(tmp_path, RCLONE_JUPYTER_DATA_DIR=str(tmp_path / "link"),
                    RCLONE_JUPYTER_STATE_DIR=str(real / ".state"))
    assert "RCLONE_JUPYTER_STATE_DIR" in text and "inside the data folder" in text
    # ... and the other way round: the state dir through a symlink into the data folder.
    (tmp_path / "state-link").symlink_to(real / "sub", target_is_directory=True)
    text = problems(tmp_path, RCLONE_JUPYTER_DATA_DIR=str(real), RCLONE_JUPYTER_STATE_DIR=str(tmp_path / "state-link"))
    assert "inside the data folder" in text


@pytest.mark.parametrize("folder", ["/", "/etc", "/usr", "/root", "/proc/self", "/sys/kernel", "/dev/shm/x"])
def test_system_folders_are_refused_as_the_data_folder(tmp_path, folder):
    text = problems(tmp_path, RCLONE_JUPYTER_DATA_DIR=folder)
    assert "RCLONE_JUPYTER_DATA_DIR" in text and "system folder" in text


def test_a_symlink_to_the_root_is_refused(tmp_path):
    (tmp_path / "slash").symlink_to("/")
    assert "system folder" in problems(tmp_path, RCLONE_JUPYTER_DATA_DIR=str(tmp_path / "slash"))


def test_data_folder_or_state_dir_under_a_file_or_being_a_file(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    text = problems(tmp_path, RCLONE_JUPYTER_DATA_DIR=str(a_file / "data"))
    assert "RCLONE_JUPYTER_DATA_DIR" in text and "not a directory" in text
    text = problems(tmp_path, RCLONE_JUPYTER_STATE_DIR=str(a_file))
    assert "RCLONE_JUPYTER_STATE_DIR" in text and "not a directory" in text
    text = problems(tmp_path, RCLONE_JUPYTER_STATE_DIR=str(a_file / "state"))
    assert "RCLONE_JUPYTER_STATE_DIR" in text and "not a directory" in text


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only tmpfs needs root (CI runs as root)")
def test_a_read_only_data_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"mount refused: {mounted.stderr.decode().strip()}")
    try:
        for data in (ro, ro / "data"):
            text = problems(tmp_path, RCLONE_JUPYTER_DATA_DIR=str(data))
            assert "RCLONE_JUPYTER_DATA_DIR" in text and "read-only" in text
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=True)


def test_a_shared_state_dir_is_not_chmodded_a_private_subfolder_is_used(tmp_path):
    from rclone_jupyter.state import private_dir

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    loaded = settings.load({"RCLONE_JUPYTER_STATE_DIR": str(shared), "RCLONE_JUPYTER_DATA_DIR": str(tmp_path / "d"),
                            "RCLONE_JUPYTER_EXAMPLES_DIR": ""})
    assert loaded.state_dir == shared / "rclone-jupyter"
    StateDir(loaded.state_dir).ensure()
    assert shared.stat().st_mode & 0o7777 == 0o1777  # untouched
    assert (shared / "rclone-jupyter").stat().st_mode & 0o777 == 0o700
    assert private_dir(shared) == loaded.state_dir  # `status` finds the same place
    # A directory we made ourselves (private) is used as it is.
    own = tmp_path / "own"
    StateDir(own).ensure()
    assert private_dir(own) == own


# -- numbers -------------------------------------------------------------------------------------------------


SECONDS = ("RCLONE_JUPYTER_QUIET_PERIOD", "RCLONE_JUPYTER_MAX_DELAY", "RCLONE_JUPYTER_FLUSH_DEADLINE",
           "RCLONE_JUPYTER_RECONCILE_INTERVAL", "RCLONE_JUPYTER_RETRY_INTERVAL", "RCLONE_JUPYTER_POLL_INTERVAL",
           "RCLONE_JUPYTER_HEARTBEAT_INTERVAL")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e309", "NaN", "1e12"])
@pytest.mark.parametrize("name", SECONDS)
def test_seconds_must_be_finite_and_bounded(tmp_path, name, value):
    text = problems(tmp_path, **{name: value})
    assert f"{name}: must be a number of seconds" in text


# -- credentials and URLs ------------------------------------------------------------------------------------


def test_gcs_endpoint_with_credentials_is_refused_without_echoing_them(tmp_path):
    text = problems(tmp_path, GOOGLE_BUCKET_FOLDER="my-bucket", GOOGLE_APPLICATION_CREDENTIALS=_key(real_pem()),
                    GOOGLE_STORAGE_ENDPOINT="https://admin:gcs-Pass-77q@storage.example.com")
    assert "GOOGLE_STORAGE_ENDPOINT contains credentials" in text and "gcs-Pass-77q" not in text


@pytest.mark.parametrize("value", ["hunter2-short", "AKIAsecretvalue/xyz", "q7-Zk"])
def test_a_short_google_credentials_value_is_never_echoed(tmp_path, value):
    text = problems(tmp_path, GOOGLE_BUCKET_FOLDER="my-bucket", GOOGLE_APPLICATION_CREDENTIALS=value)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in text and value not in text


@pytest.mark.parametrize("variable, value", [
    ("AZURE_CONTAINER_URL", "http://[::1/devstoreaccount1/box"),
    ("AZURE_CONTAINER_URL", "http://[zz]:10000/devstoreaccount1/box"),
    ("AZURE_CONTAINER_URL", "http://127.0.0.1:99999/devstoreaccount1/box"),
    ("GOOGLE_STORAGE_ENDPOINT", "http://[::1:4443"),
    ("GOOGLE_STORAGE_ENDPOINT", "http://127.0.0.1:0"),
    ("GOOGLE_STORAGE_ENDPOINT", "http://127.0.0.1:port"),
    ("AWS_ENDPOINT_URL", "http://[fe80::1"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:70000"),
    ("STORAGE_EMULATOR_HOST", "127.0.0.1:99999"),
])
def test_broken_hosts_and_ports_name_the_variable(tmp_path, variable, value):
    env = {variable: value}
    if variable == "AZURE_CONTAINER_URL":
        env["AZURE_BLOB_SAS_TOKEN"] = "sv=2022-11-02&sp=racwdl&se=2099-01-01&sr=c&sig=abc"
    elif variable == "AWS_ENDPOINT_URL":
        env.update(S3)
    else:
        env.update(GOOGLE_BUCKET_FOLDER="my-bucket", GOOGLE_APPLICATION_CREDENTIALS=_key(real_pem()))
    assert variable in problems(tmp_path, **env)


def test_a_deeply_nested_json_key_is_a_clear_problem(tmp_path):
    nested = "[" * 100_000 + "]" * 100_000
    text = problems(tmp_path, GOOGLE_BUCKET_FOLDER="my-bucket", GOOGLE_APPLICATION_CREDENTIALS="{\"a\": " + nested + "}")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in text and "nested too deeply" in text


@pytest.mark.parametrize("breakage", ["truncated", "garbled", "no-end"])
def test_a_malformed_pem_key_is_refused_at_once(tmp_path, breakage):
    pem = real_pem()
    lines = pem.splitlines()
    secret_line = lines[3]
    broken = {"truncated": "\n".join(lines[:5] + lines[-1:]),
              "garbled": pem.replace(lines[3], lines[3][:20] + "!!" + lines[3][22:]),
              "no-end": "\n".join(lines[:-1])}[breakage]
    text = problems(tmp_path, GOOGLE_BUCKET_FOLDER="my-bucket", GOOGLE_APPLICATION_CREDENTIALS=_key(broken))
    assert "GOOGLE_APPLICATION_CREDENTIALS" in text and "private_key" in text
    assert secret_line not in text and secret_line[:20] not in text
    # The real key passes.
    settings.load({"RCLONE_JUPYTER_STATE_DIR": str(tmp_path / "s"), "RCLONE_JUPYTER_DATA_DIR": str(tmp_path / "d"),
                   "GOOGLE_BUCKET_FOLDER": "my-bucket", "GOOGLE_APPLICATION_CREDENTIALS": _key(pem)})


def test_a_non_utf8_password_is_refused_without_echoing_it(tmp_path):
    password = os.fsdecode(b"caf\xe9-secret-pw")  # how Python hands over a Latin-1 environment value
    text = problems(tmp_path, JUPYTERLAB_PW=password)
    assert "JUPYTERLAB_PW is not valid UTF-8" in text and "secret-pw" not in text


def test_storage_emulator_host_is_honoured_as_by_googles_libraries(tmp_path):
    env = {"RCLONE_JUPYTER_STATE_DIR": str(tmp_path / "s"), "RCLONE_JUPYTER_DATA_DIR": str(tmp_path / "d"),
           "GOOGLE_BUCKET_FOLDER": "my-bucket/me", "STORAGE_EMULATOR_HOST": "127.0.0.1:4443"}
    (remote,) = settings.load(env).remotes
    assert remote.options["endpoint"] == "http://127.0.0.1:4443/storage/v1/"
    assert remote.options["anonymous"] == "true"  # no key needed for an emulator
    (remote,) = settings.load({**env, "STORAGE_EMULATOR_HOST": "https://gcs.local:8443/"}).remotes
    assert remote.options["endpoint"] == "https://gcs.local:8443/storage/v1/"
    # Ours wins over the convention when both are set; without an emulator a key is still required.
    (remote,) = settings.load({**env, "GOOGLE_APPLICATION_CREDENTIALS": _key(real_pem()),
                               "GOOGLE_STORAGE_ENDPOINT": "http://127.0.0.1:9999"}).remotes
    assert remote.options["endpoint"] == "http://127.0.0.1:9999/storage/v1/" and remote.options["anonymous"] == ""
    assert "GOOGLE_APPLICATION_CREDENTIALS is not set" in problems(
        tmp_path, GOOGLE_BUCKET_FOLDER="my-bucket")


# -- through the real CLI ------------------------------------------------------------------------------------


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {"HOME": str(tmp_path / "home"), "PATH": os.environ["PATH"], "RCLONE_JUPYTER_EXAMPLES_DIR": "",
            "RCLONE_JUPYTER_STATE_DIR": str(tmp_path / "state"), "RCLONE_JUPYTER_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([CLI, *args], env={**base, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("env, variable, secret", [
    ({"RCLONE_JUPYTER_QUIET_PERIOD": "nan"}, "RCLONE_JUPYTER_QUIET_PERIOD", None),
    ({"RCLONE_JUPYTER_FLUSH_DEADLINE": "1e309"}, "RCLONE_JUPYTER_FLUSH_DEADLINE", None),
    ({"RCLONE_JUPYTER_DATA_DIR": "/"}, "RCLONE_JUPYTER_DATA_DIR", None),
    ({"AZURE_CONTAINER_URL": "http://[::1/devstoreaccount1/box", "AZURE_BLOB_SAS_TOKEN": "sp=racwdl&sig=Zz9-sig"},
     "AZURE_CONTAINER_URL", "Zz9-sig"),
    ({"GOOGLE_BUCKET_FOLDER": "my-bucket", "GOOGLE_APPLICATION_CREDENTIALS": "short-Secret-5"},
     "GOOGLE_APPLICATION_CREDENTIALS", "short-Secret-5"),
    ({"GOOGLE_BUCKET_FOLDER": "my-bucket", "STORAGE_EMULATOR_HOST": "http://me:emu-Pass-3@127.0.0.1:1"},
     "STORAGE_EMULATOR_HOST", "emu-Pass-3"),
])
def test_bad_input_through_the_cli_is_exit_2_naming_the_variable(tmp_path, env, variable, secret):
    for command in ("start", "check"):
        result = run_cli(tmp_path, command, *(["--no-jupyter"] if command == "start" else []), **env)
        assert result.returncode == 2, (command, result.stderr)
        assert variable in result.stderr and "Traceback" not in result.stderr
        assert "internal error" not in result.stderr
        if secret:
            assert secret not in result.stderr + result.stdout
    assert not (tmp_path / "data").exists()  # nothing was created


def test_a_non_utf8_password_through_the_cli(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "RCLONE_JUPYTER_STATE_DIR": str(tmp_path / "state"),
           "RCLONE_JUPYTER_DATA_DIR": str(tmp_path / "data")}
    env = {k.encode(): v.encode() for k, v in env.items() if not k.startswith(("AWS_", "AZURE_", "GOOGLE_"))}
    env[b"JUPYTERLAB_PW"] = b"caf\xe9-secret-pw"
    result = subprocess.run([CLI, "start", "--no-jupyter"], env=env, capture_output=True, timeout=60)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 2 and "JUPYTERLAB_PW" in stderr and "secret-pw" not in stderr
    assert "Traceback" not in stderr
