"""Storage providers: one module each, one small interface, one registry.

A provider knows how to notice that the environment asks for it (`detect`), how to read and check its
variables (`parse`, reporting every problem with the variable's name), and how to render its rclone config
section from `rclone_conf_templates/<provider>.conf`. Adding a provider touches its module, its template and
PROVIDERS below.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from string import Template
from typing import Protocol

from rclone_jupyter.config.remotes import azure, gcs, s3


@dataclasses.dataclass(frozen=True)
class Remote:
    """One configured bucket folder: what the engine syncs with.

    `name` is the rclone remote name (section in the config), `root` the path inside it
    (`bucket/folder`), `options` the values substituted into the provider's template,
    `secrets` the option values that must never be shown.
    """

    name: str
    provider: str
    root: str
    options: Mapping[str, str]
    secret_keys: frozenset[str] = frozenset()
    # What the user sees in logs and status: no secret in it.
    display: str = ""
    # Extra environment for JupyterLab's kernels (plain values).
    kernel_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Files for JupyterLab's kernels: {variable: (file name, content)}. The supervisor writes each content into
    # a private file (0600) in the state dir and gives the kernels `variable=<its path>` (see kernel_environment).
    kernel_files: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    # Parts of secret options that may show up on their own in rclone's messages (e.g. a SAS signature).
    extra_secrets: tuple[str, ...] = ()
    # When the credentials stop working, if they say so (a SAS's `se=`, AWS_CREDENTIAL_EXPIRATION), and the
    # variable that says it: the pre-flight warns before that date.
    expires: dt.datetime | None = None
    expiry_source: str = ""

    @property
    def secrets(self) -> tuple[str, ...]:
        values = [v for k, v in self.options.items() if k in self.secret_keys and v]
        values += [content for _name, content in self.kernel_files.values()]
        return tuple(v for v in (*values, *self.extra_secrets) if v)

    @property
    def has_folders(self) -> bool:
        """False for the object stores (S3, Azure Blob, GCS): a folder there is only a prefix of its objects."""
        return self.provider not in (azure.NAME, gcs.NAME, s3.NAME)

    @property
    def bucket(self) -> str:
        return self.root.split("/", 1)[0]

    def path(self, rel: str = "") -> str:
        """Given a path relative to the bucket folder, return the rclone path `name:root/rel`."""
        base = f"{self.name}:{self.root}"
        return f"{base}/{rel}" if rel else base

    def bucket_path(self) -> str:
        return f"{self.name}:{self.bucket}"

    def missing_bucket(self) -> str:
        """What to tell the user when the bucket is not there (or these credentials cannot see it)."""
        return (f"the bucket {self.bucket!r} ({self.display}) does not exist, or these credentials cannot see it. "
                "Create it, or fix the bucket name.")


class Provider(Protocol):
    NAME: str
    VARIABLES: tuple[str, ...]

    def detect(self, env: Mapping[str, str]) -> bool: ...

    def parse(self, env: Mapping[str, str], problems: list[str]) -> Remote | None: ...


# Also the restore order when several clouds are configured: the first one's files are restored as they are,
# each next one is merged in (a file that differs becomes a conflict copy, see Restorer.restore in engine/restore.py).
PROVIDERS: tuple[Provider, ...] = (s3, azure, gcs)


def parse_remotes(env: Mapping[str, str], problems: list[str]) -> tuple[Remote, ...]:
    """Given the environment, return every remote it configures; append each problem found to `problems`."""
    remotes = []
    for provider in PROVIDERS:
        if provider.detect(env):
            remote = provider.parse(env, problems)
            if remote is not None:
                remotes.append(remote)
    return tuple(remotes)


def template_text(provider: str) -> str:
    return resources.files("rclone_jupyter.rclone_conf_templates").joinpath(f"{provider}.conf").read_text()


def render_section(remote: Remote) -> str:
    """Return the rclone config section of `remote`, rendered from its provider's template."""
    for key, value in remote.options.items():
        # A newline in a value would inject config lines; providers reject these first, this is the backstop.
        if "\n" in value or "\r" in value:
            raise ValueError(f"option {key} of remote {remote.name} contains a line break")
    return Template(template_text(remote.provider)).substitute(name=remote.name, **remote.options)


def render_config(remotes: tuple[Remote, ...]) -> str:
    return "\n".join(render_section(r) for r in remotes)


KERNEL_FILES_DIR = "kernel-files"


def kernel_environment(remotes: tuple[Remote, ...], state_path: Path) -> dict[str, str]:
    """Given the remotes and the state dir, return the extra environment of JupyterLab and its kernels."""
    env: dict[str, str] = {}
    for remote in remotes:
        env.update(remote.kernel_env)
        for variable, (file_name, _content) in remote.kernel_files.items():
            env[variable] = str(state_path / KERNEL_FILES_DIR / file_name)
    return env


def write_kernel_files(remotes: tuple[Remote, ...], state_path: Path) -> None:
    """Write every remote's kernel files into the state dir, readable by the owner only."""
    from rclone_jupyter.state import write_private

    files = [f for remote in remotes for f in remote.kernel_files.values()]
    if not files:
        return
    directory = state_path / KERNEL_FILES_DIR
    directory.mkdir(mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    for file_name, content in files:
        write_private(directory / file_name, content)
