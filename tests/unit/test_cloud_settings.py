"""Azure and GCS variables: every bad input is a clear problem naming its variable, and never echoes a secret."""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs

import pytest

from rclone_jupyter.daemon import jupyter_process as jupyter
from rclone_jupyter.config import settings
from rclone_jupyter.errors import ConfigError
from rclone_jupyter.config.remotes import kernel_environment, render_config, write_kernel_files

SIG = "c2lnbmF0dXJlLXNlY3JldC0xMjM0NQ%3D%3D"
TOKEN = f"sv=2022-11-02&sp=racwdl&se=2099-01-01T00:00:00Z&sr=c&sig={SIG}"
AZ_URL = "https://myacct.blob.core.windows.net/notebooks/team/alice"


def _real_pem() -> str:
    # A real key: a made-up one no longer passes the PEM structure check (remotes/gcs.pem_problem).
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


PEM = _real_pem()
KEY_LINE = PEM.splitlines()[3]  # a line from the middle of the private key: must never be shown
KEY = {"type": "service_account", "project_id": "proj-1", "private_key_id": "abc", "private_key": PEM,
       "client_email": "sa@proj-1.iam.gserviceaccount.com", "token_uri": "https://oauth2.googleapis.com/token"}


def load(**env):
    return settings.load({"RCLONE_JUPYTER_STATE_DIR": "/tmp/rj-unit-state", "RCLONE_JUPYTER_EXAMPLES_DIR": "",
                          **env})


def problems(**env) -> str:
    with pytest.raises(ConfigError) as info:
        load(**env)
    return str(info.value)


# -- Azure ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [TOKEN, f"?{TOKEN}", f'"?{TOKEN}"', f"'{TOKEN}'", f"  {TOKEN} "])
def test_azure_token_with_or_without_question_mark_quoted_or_not(token):
    (remote,) = load(AZURE_CONTAINER_URL=AZ_URL, AZURE_BLOB_SAS_TOKEN=token).remotes
    assert remote.name == "azure"
    assert remote.root == "notebooks/team/alice"  # with a SAS URL, rclone paths start with the container
    assert remote.options["sas_url"] == f"https://myacct.blob.core.windows.net/notebooks?{TOKEN}"
    assert SIG not in remote.display and "sig=" not in remote.display
    assert remote.options["sas_url"] in remote.secrets
    assert "[azure]\ntype = azureblob\nsas_url = https://" in render_config((remote,))


def test_azure_emulator_url_and_whole_sas_url_in_one_variable():
    (remote,) = load(AZURE_CONTAINER_URL=f"http://127.0.0.1:10000/devstoreaccount1/box?{TOKEN}").remotes
    assert remote.root == "box"
    assert remote.options["sas_url"] == f"http://127.0.0.1:10000/devstoreaccount1/box?{TOKEN}"
    assert remote.display == "http://127.0.0.1:10000/devstoreaccount1/box"


@pytest.mark.parametrize("url, expected", [
    ("myacct.blob.core.windows.net/notebooks", "is not an http(s) URL"),
    ("https://myacct.blob.core.windows.net/", "no container"),
    ("https://example.com/notebooks", "is not a Blob Storage host"),
    ("http://localhost:10000/devstoreaccount1/box", "use 127.0.0.1 instead of 'localhost'"),
    ("https://myacct.blob.core.windows.net/My_Container", "is not a valid container name"),
    ("http://127.0.0.1:10000/devstoreaccount1", "has no container"),
    ("https://myacct.blob.core.windows.net/notebooks/../x", "may not contain '.', '..'"),
])
def test_azure_bad_container_url(url, expected):
    text = problems(AZURE_CONTAINER_URL=url, AZURE_BLOB_SAS_TOKEN=TOKEN)
    assert "AZURE_CONTAINER_URL" in text and expected in text
    assert SIG not in text


@pytest.mark.parametrize("token, expected", [
    ("?", "AZURE_BLOB_SAS_TOKEN is empty"),
    ("sv=2022-11-02&sp=racwdl&se=2099-01-01", "no 'sig=' signature"),
    ("just some text", "contains blanks"),
    (f"sv=2022-11-02&sp=racwdl&se=2020-01-01T00:00:00Z&sig={SIG}", "expired on 2020-01-01"),
    (f"sv=2022-11-02&sp=rl&se=2099-01-01&sig={SIG}", "does not allow write, delete"),
    (f"sv=2022-11-02&se=soon&sig={SIG}", "is not a date"),
    (f"sv=2022-11-02&ss=q&srt=co&sp=racwdl&se=2099-01-01&sig={SIG}", "without the Blob service"),
])
def test_azure_bad_sas_token(token, expected):
    text = problems(AZURE_CONTAINER_URL=AZ_URL, AZURE_BLOB_SAS_TOKEN=token)
    assert "AZURE_BLOB_SAS_TOKEN" in text and expected in text
    assert SIG not in text and parse_qs(TOKEN)["sig"][0] not in text


def test_azure_partner_variable_missing():
    assert "AZURE_BLOB_SAS_TOKEN is not set" in problems(AZURE_CONTAINER_URL=AZ_URL)
    assert "AZURE_CONTAINER_URL is not set" in problems(AZURE_BLOB_SAS_TOKEN=TOKEN)
    text = problems(AZURE_CONTAINER_URL=f"{AZ_URL}?{TOKEN}", AZURE_BLOB_SAS_TOKEN=f"sv=1&sig=other")
    assert "differs from AZURE_BLOB_SAS_TOKEN" in text and SIG not in text


# -- GCS --------------------------------------------------------------------------------------------------


def gcs_env(**overrides):
    return {"GOOGLE_BUCKET_FOLDER": "gs://my-bucket/team/alice", "GOOGLE_PROJECT_ID": "proj-1",
            "GOOGLE_APPLICATION_CREDENTIALS": json.dumps(KEY), **overrides}


def test_gcs_json_content_goes_to_rclone_on_one_line_and_to_kernels_as_a_private_file(tmp_path):
    (remote,) = load(**gcs_env()).remotes
    assert (remote.name, remote.root, remote.display) == ("gcs", "my-bucket/team/alice", "gs://my-bucket/team/alice")
    one_line = remote.options["service_account_credentials"]
    assert "\n" not in one_line and json.loads(one_line) == KEY
    assert remote.options["project_number"] == "proj-1"
    assert PEM in remote.secrets  # masked in logs even when printed without the rest of the key
    section = render_config((remote,))
    assert section.count("\n[") == 1 and "\nservice_account_credentials = {" in section  # one section, one line

    write_kernel_files((remote,), tmp_path)
    extra = kernel_environment((remote,), tmp_path)
    path = extra["GOOGLE_APPLICATION_CREDENTIALS"]
    assert path == str(tmp_path / "kernel-files" / "google-service-account.json")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert json.loads(open(path).read()) == KEY
    env = jupyter.environment({**gcs_env(), "JUPYTERLAB_PW": "x"}, extra)
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == path and "JUPYTERLAB_PW" not in env


def test_gcs_key_path_real_line_breaks_endpoint_and_project_default(tmp_path):
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(KEY, indent=2))
    (remote,) = load(**gcs_env(GOOGLE_APPLICATION_CREDENTIALS=str(key_file), GOOGLE_PROJECT_ID="",
                               GOOGLE_STORAGE_ENDPOINT="http://127.0.0.1:4443")).remotes
    assert json.loads(remote.options["service_account_credentials"]) == KEY
    assert remote.options["project_number"] == "proj-1"  # from the key
    assert remote.options["endpoint"] == "http://127.0.0.1:4443/storage/v1/"
    assert remote.kernel_files == {}  # kernels can use the user's path as it is
    # Pasted with real line breaks inside the private key (not valid strict JSON): still understood.
    raw = json.dumps(KEY).replace("\\n", "\n")
    (remote,) = load(**gcs_env(GOOGLE_APPLICATION_CREDENTIALS=raw)).remotes
    assert json.loads(remote.options["service_account_credentials"])["private_key"] == PEM


@pytest.mark.parametrize("credentials, expected", [
    ('{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nsecret-key-material',
     "is not valid JSON"),
    (json.dumps({**KEY, "type": "authorized_user"}), "is a 'authorized_user' credential, not a service-account key"),
    (json.dumps({k: v for k, v in KEY.items() if k != "type"}), "without 'type'"),
    (json.dumps({k: v for k, v in KEY.items() if k != "private_key"}), "has no 'private_key'"),
    (json.dumps({**KEY, "private_key": "secret-key-material"}), "has no 'private_key'"),
    (json.dumps({k: v for k, v in KEY.items() if k != "client_email"}), "has no 'client_email'"),
    ("/no/such/key.json", "is neither a service-account JSON key nor the path of an existing file"),
    ("-----BEGIN PRIVATE KEY-----\nsecret-key-material", "is not valid JSON"),
])
def test_gcs_bad_credentials_never_echo_the_key(credentials, expected):
    text = problems(**gcs_env(GOOGLE_APPLICATION_CREDENTIALS=credentials))
    assert "GOOGLE_APPLICATION_CREDENTIALS" in text and expected in text
    assert "secret-key-material" not in text and KEY_LINE not in text


def test_gcs_bad_key_file_and_other_variables(tmp_path):
    bad = tmp_path / "key.json"
    bad.write_text('["not", "an", "object", "secret-key-material"]')
    text = problems(**gcs_env(GOOGLE_APPLICATION_CREDENTIALS=str(bad)))
    assert f"(the file {bad})" in text and "not a service-account key object" in text
    assert "secret-key-material" not in text
    assert "GOOGLE_APPLICATION_CREDENTIALS is not set" in problems(GOOGLE_BUCKET_FOLDER="my-bucket")
    assert "GOOGLE_BUCKET_FOLDER is not set" in problems(GOOGLE_APPLICATION_CREDENTIALS=json.dumps(KEY))
    assert "is not a valid bucket name" in problems(**gcs_env(GOOGLE_BUCKET_FOLDER="Bad_Bucket"))
    assert "GOOGLE_STORAGE_ENDPOINT" in problems(**gcs_env(GOOGLE_STORAGE_ENDPOINT="127.0.0.1:4443"))
    assert "GOOGLE_PROJECT_ID" in problems(**gcs_env(GOOGLE_PROJECT_ID="my project"))


def test_every_cloud_at_once_in_provider_order_and_all_problems_at_once():
    env = {**gcs_env(), "AZURE_CONTAINER_URL": AZ_URL, "AZURE_BLOB_SAS_TOKEN": TOKEN,
           "AWS_S3_BUCKET_FOLDER": "b-1/x", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret-1"}
    assert [r.name for r in load(**env).remotes] == ["s3", "azure", "gcs"]
    text = problems(AWS_ACCESS_KEY_ID="id", AZURE_BLOB_SAS_TOKEN="nosig", GOOGLE_BUCKET_FOLDER="b-2")
    for name in ("AWS_S3_BUCKET_FOLDER", "AZURE_CONTAINER_URL", "AZURE_BLOB_SAS_TOKEN",
                 "GOOGLE_APPLICATION_CREDENTIALS"):
        assert name in text
