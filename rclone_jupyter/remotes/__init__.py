"""Storage providers: one module each, one small interface, one registry.

A provider knows how to notice that the environment asks for it (`detect`), how to read and check its
variables (`parse`, reporting every problem with the variable's name), and how to render its rclone config
section from `rclone_conf_templates/<provider>.conf`. Adding a provider touches its module, its template and
PROVIDERS below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from importlib import resources
from string import Template
from typing import Protocol

from rclone_jupyter.remotes import s3


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
    # Extra environment for JupyterLab's kernels (e.g. a credentials file path instead of JSON content).
    kernel_env: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(v for k, v in self.options.items() if k in self.secret_keys and v)

    @property
    def bucket(self) -> str:
        return self.root.split("/", 1)[0]

    def path(self, rel: str = "") -> str:
        """Given a path relative to the bucket folder, return the rclone path `name:root/rel`."""
        base = f"{self.name}:{self.root}"
        return f"{base}/{rel}" if rel else base

    def bucket_path(self) -> str:
        return f"{self.name}:{self.bucket}"


class Provider(Protocol):
    NAME: str
    VARIABLES: tuple[str, ...]

    def detect(self, env: Mapping[str, str]) -> bool: ...

    def parse(self, env: Mapping[str, str], problems: list[str]) -> Remote | None: ...


PROVIDERS: tuple[Provider, ...] = (s3,)


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
