"""The deployment files in docker/ agree with each other, with the package and with docker/README.md.

Nothing is built or started: the YAML parses, the image names match the build command, the image's
entrypoint is the console script, and every `dfsweep ...` written in the compose file, the cluster
launcher config, the Kubernetes manifests and the README parses with the real CLI parser.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import re
import shlex
import typing
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml

from dfsweep import config as dfconfig
from dfsweep.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
README = DOCKER / "README.md"
COMPOSE = DOCKER / "docker-compose.yml"
LAUNCHER = DOCKER / "ray-cluster.yaml"
RAYJOB = DOCKER / "rayjob.yaml"
K8S_MLFLOW = DOCKER / "k8s-mlflow.yaml"
DOCKERFILE = DOCKER / "Dockerfile"

YAML_FILES = sorted(DOCKER.glob("*.yml")) + sorted(DOCKER.glob("*.yaml"))
REQUIRED_SERVICES = {"postgres", "mlflow", "ray-head", "ray-gpu-worker", "sweep"}
SHELL_OPERATORS = {"&&", "||", ";", "|", "&", ">", ">>", "<", ">&", "2>", "(", ")"}
FORWARD_ARGS = ("$@", "$$@")       # `exec dfsweep "$@"`: the arguments come from the service's command


# ---------------------------------------------------------------- reading the files
def _load(path: Path) -> List[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _one(path: Path) -> Dict[str, Any]:
    docs = _load(path)
    assert len(docs) == 1, f"{path.name}: expected one YAML document, found {len(docs)}"
    return docs[0]


def _readme_commands() -> List[str]:
    """Every command line in the README's bash blocks, continuation lines joined."""
    text = README.read_text()
    blocks = re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, flags=re.S)
    lines: List[str] = []
    for block in blocks:
        lines += [ln.strip() for ln in block.replace("\\\n", " ").splitlines() if ln.strip()]
    return lines


def _build_tag() -> str:
    """The image name of the build command in docker/README.md (`docker build -f docker/Dockerfile -t TAG .`)."""
    for line in _readme_commands():
        tokens = _tokens(line)
        if tokens[:2] == ["docker", "build"] and "-t" in tokens and "docker/Dockerfile" in tokens:
            return tokens[tokens.index("-t") + 1]
    raise AssertionError("docker/README.md has no `docker build -f docker/Dockerfile -t NAME .` command")


def _is_project_image(image: str, tag: str) -> bool:
    return image == tag or image.endswith("/" + tag)


def _dockerfile_instructions() -> List[Tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _dockerfile_args() -> Dict[str, str]:
    args = {}
    for word, rest in _dockerfile_instructions():
        if word == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            args[k.strip()] = v.strip().strip('"')
    return args


def _console_scripts() -> Dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib                                   # Python >= 3.11
    except ModuleNotFoundError:                           # pragma: no cover - Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads(text).get("project", {}).get("scripts", {})


# ---------------------------------------------------------------- finding `dfsweep ...` in shell text
def _tokens(command: str) -> List[str]:
    lex = shlex.shlex(command, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = "#"
    return list(lex)


def _segments(tokens: List[str]) -> Iterator[List[str]]:
    seg: List[str] = []
    for t in tokens:
        if t in SHELL_OPERATORS or set(t) <= set("&|;<>()"):
            if seg:
                yield seg
            seg = []
        else:
            seg.append(t)
    if seg:
        yield seg


def _dfsweep_argvs(command: str, tag: str, forwarders: set) -> List[List[str]]:
    """The argument lists `dfsweep` gets from one shell command: `dfsweep ARGS`, `docker run ... IMAGE
    ARGS` (the image's entrypoint is dfsweep), `docker compose run SERVICE ARGS` for a service whose
    entrypoint hands its arguments to dfsweep, and the same inside quoted strings (`bash -c "..."`)."""
    try:
        tokens = _tokens(command)
    except ValueError:                   # not shell (e.g. a Python one-liner's own quoting)
        return []
    out: List[List[str]] = []
    for seg in _segments(tokens):
        if seg[:2] == ["docker", "run"]:
            images = [i for i, t in enumerate(seg) if _is_project_image(t, tag)]
            if images and "--entrypoint" not in seg[: images[0]]:
                out.append(seg[images[0] + 1:])
                continue
        if seg[:2] == ["docker", "compose"]:
            sub, service, rest = _compose_call(seg)
            if sub == "run" and service in forwarders:
                out.append(rest)
                continue
        for i, t in enumerate(seg):
            if t == "dfsweep":
                argv = seg[i + 1:]
                if argv not in ([FORWARD_ARGS[0]], [FORWARD_ARGS[1]]):
                    out.append(argv)
                break
            if " " in t:
                out += _dfsweep_argvs(t, tag, forwarders)
    return out


def _compose_call(seg: List[str]) -> Tuple[str, str, List[str]]:
    """`docker compose [-f F] [--env-file F] SUB [flags] SERVICE REST...` -> (SUB, SERVICE, REST)."""
    i = 2
    while i < len(seg) and seg[i].startswith("-"):
        i += 2 if seg[i] in ("-f", "--file", "--env-file", "-p", "--project-name", "--project-directory") else 1
    if i >= len(seg):
        return "", "", []
    sub = seg[i]
    i += 1
    while i < len(seg) and seg[i].startswith("-"):
        i += 1
    if i >= len(seg):
        return sub, "", []
    service = seg[i].split(":", 1)[0] if sub == "cp" else seg[i]
    return sub, service, seg[i + 1:]


def _strings(node: Any) -> Iterator[Any]:
    """Every string, and every list of strings, inside a YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        if node and all(isinstance(x, str) for x in node):
            yield node
        for v in node:
            yield from _strings(v)


def _yaml_argvs(doc: Any, tag: str, forwarders: set) -> List[List[str]]:
    out: List[List[str]] = []
    for s in _strings(doc):
        if isinstance(s, list):
            if s[0] == "dfsweep":                     # exec form: [dfsweep, run, ...]
                out.append(s[1:])
        elif s.strip() != "dfsweep":                 # a bare name (e.g. `bash -c SCRIPT dfsweep`'s $0)
            out += _dfsweep_argvs(s, tag, forwarders)
    return out


def _compose_forwarders(compose: Dict[str, Any], tag: str) -> set:
    """Services whose arguments go to dfsweep: the image's own entrypoint, or one ending in `dfsweep "$@"`."""
    out = set()
    for name, svc in compose["services"].items():
        if not _is_project_image(svc.get("image", ""), tag):
            continue
        entry = svc.get("entrypoint")
        if entry is None or any(re.search(r'dfsweep "?\$\$?@', e) for e in entry if isinstance(e, str)):
            out.add(name)
    return out


def _compose_argvs(compose: Dict[str, Any], tag: str) -> List[Tuple[str, List[str]]]:
    forwarders = _compose_forwarders(compose, tag)
    out = []
    for name, svc in compose["services"].items():
        if name in forwarders and isinstance(svc.get("command"), list):
            out.append((f"compose service {name} (command)", svc["command"]))
        for argv in _yaml_argvs({k: v for k, v in svc.items() if k != "command" or name not in forwarders},
                                tag, forwarders):
            out.append((f"compose service {name}", argv))
    return out


# ---------------------------------------------------------------- checking an argument list
def _subparsers() -> Dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(sub: argparse.ArgumentParser) -> set:
    return {s for a in sub._actions for s in a.option_strings}


def _set_key_ok(key: str) -> bool:
    """Does KEY name a config field (through the dataclasses; free-form mappings accept anything)?"""
    cls: Any = dfconfig.Config
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(cls):
            return False
        hints = typing.get_type_hints(cls)
        if part not in hints:
            return False
        cls = hints[part]
        origin = typing.get_origin(cls)
        if origin in (typing.Mapping, dict, Dict) or cls in (typing.Mapping, dict):
            return True
        if i == len(parts) - 1:
            return True
    return False


def _check_argv(argv: List[str], where: str) -> str:
    """Parse ARGV with dfsweep's parser; return the subcommand ('' for `--help`)."""
    argv = list(argv)
    if argv in (["--help"], ["-h"]):
        return ""
    subs = _subparsers()
    positional = [t for t in argv if not t.startswith("-")]
    assert positional, f"{where}: `dfsweep {' '.join(argv)}` names no subcommand"
    name = positional[0]
    assert name in subs, f"{where}: `dfsweep {name}` is not a subcommand (valid: {', '.join(subs)})"
    opts = _options(subs[name])
    after = argv[argv.index(name) + 1:]
    for t in after:
        if t.startswith("--"):
            flag = t.split("=", 1)[0]
            assert flag in opts, f"{where}: `dfsweep {name}` has no {flag} (it has {', '.join(sorted(opts))})"
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        raise AssertionError(f"{where}: `dfsweep {' '.join(argv)}` does not parse (exit {e.code})") from None
    for item in getattr(args, "set", None) or []:
        key = item.split("=", 1)[0]
        assert "=" in item and _set_key_ok(key), f"{where}: --set {item}: {key} is not a config key"
    if name == "run":
        space = ROOT / args.space
        assert space.is_file() or not args.space.startswith("search_spaces/"), f"{where}: no {args.space}"
    if name == "finalize":
        # the shipped spaces set no data.test: without --test finalize stops with "no test folder"
        assert args.test, f"{where}: `dfsweep finalize` without --test has no images to score"
    return name


def _all_argvs() -> List[Tuple[str, List[str]]]:
    tag = _build_tag()
    compose = _one(COMPOSE)
    forwarders = _compose_forwarders(compose, tag)
    found = _compose_argvs(compose, tag)
    for path in (LAUNCHER, RAYJOB, K8S_MLFLOW):
        for doc in _load(path):
            found += [(path.name, a) for a in _yaml_argvs(doc, tag, forwarders)]
    for line in _readme_commands():
        found += [(f"README: {line[:60]}", a) for a in _dfsweep_argvs(line, tag, forwarders)]
    return found


# ---------------------------------------------------------------- the tests
@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_yaml_parses(path):
    docs = _load(path)
    assert docs and all(isinstance(d, dict) for d in docs), f"{path.name}: not a YAML mapping"


def test_the_expected_files_exist():
    for p in (DOCKERFILE, COMPOSE, LAUNCHER, RAYJOB, README):
        assert p.is_file(), f"missing {p.relative_to(ROOT)}"


def test_compose_has_the_services_and_everything_they_name():
    compose = _one(COMPOSE)
    services = compose["services"]
    assert REQUIRED_SERVICES <= set(services), f"missing services: {REQUIRED_SERVICES - set(services)}"
    declared_volumes = set(compose.get("volumes") or {})
    for name, svc in services.items():
        for dep in svc.get("depends_on") or {}:
            assert dep in services, f"{name} depends on unknown service {dep}"
        for vol in svc.get("volumes") or []:
            src = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source", "")
            if src and not src.startswith((".", "/", "$", "~")):
                assert src in declared_volumes, f"{name} mounts undeclared volume {src}"
    for needs_healthy in ("postgres", "mlflow", "ray-head"):
        assert "healthcheck" in services[needs_healthy], f"{needs_healthy} has no healthcheck"
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_services_named_in_the_readme_exist():
    services = set(_one(COMPOSE)["services"])
    named = set()
    for line in _readme_commands():
        for seg in _segments(_tokens(line)):
            if seg[:2] == ["docker", "compose"]:
                sub, service, _ = _compose_call(seg)
                if sub in ("run", "exec", "logs", "cp", "restart", "stop", "start") and service:
                    named.add(service)
    table = re.search(r"^\| `docker-compose.yml` \|(.*)\|$", README.read_text(), flags=re.M)
    assert table, "the README's file table has no docker-compose.yml row"
    named |= set(re.findall(r"`([a-z][a-z0-9-]*)`", table.group(1)))
    assert named, "the README names no compose service"
    assert named <= services, f"the README names services the compose file lacks: {named - services}"
    assert REQUIRED_SERVICES <= named, f"the README does not mention {REQUIRED_SERVICES - named}"


def test_compose_dollar_signs_are_escaped():
    # Compose interpolates $VAR and ${VAR}; a shell's own $@ or $1 must be written $$@ / $$1
    text = "\n".join(ln for ln in COMPOSE.read_text().splitlines() if not ln.lstrip().startswith("#"))
    bad = re.findall(r"\$(?!\$|\{|[A-Za-z_])", text.replace("$$", ""))
    assert not bad, f"unescaped $ in docker-compose.yml: {bad}"


def test_every_project_image_has_the_build_commands_name():
    tag = _build_tag()
    name = tag.split("/")[-1].split(":")[0]
    images: List[Tuple[str, str]] = []
    for svc_name, svc in _one(COMPOSE)["services"].items():
        images.append((f"compose {svc_name}", svc.get("image", "")))
    docker = _one(LAUNCHER)["docker"]
    images += [(f"ray-cluster.yaml docker.{k}", docker[k]) for k in ("image", "head_image", "worker_image")
               if k in docker]
    for path in (RAYJOB, K8S_MLFLOW):
        for doc in _load(path):
            for node in _walk(doc):
                if isinstance(node, dict) and "image" in node and "name" in node:
                    images.append((f"{path.name} container {node['name']}", node["image"]))
    ours = [(w, i) for w, i in images if i.split("/")[-1].split(":")[0] == name or name in i]
    assert len(ours) >= 8, f"expected the project's image in compose, launcher and Kubernetes files: {ours}"
    for where, image in ours:
        assert _is_project_image(image, tag), f"{where}: image {image} is not {tag} (the README's build tag)"
    others = {i for w, i in images if (w, i) not in ours}
    assert others <= {"postgres:16"}, f"unexpected images: {others}"
    # the cluster files name one registry image, the one the README's sed rewrites
    remote = {i for w, i in ours if "/" in i}
    assert len(remote) == 1, f"the cluster files name different registry images: {remote}"
    assert remote.pop() in README.read_text(), "the README does not show how to set the registry image"


def _mount_target(volume: Any) -> str:
    """The container path of a compose volume entry (`SRC:DST[:MODE]`, SRC may be `${VAR:-default}`)."""
    if isinstance(volume, dict):
        return volume["target"]
    return re.sub(r"\$\{[^}]*\}", "SRC", volume).split(":")[1]


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_dockerfile_entrypoint_is_the_console_script():
    instr = _dockerfile_instructions()
    entry = [json.loads(rest) for word, rest in instr if word == "ENTRYPOINT"]
    assert entry and entry[-1] == ["dfsweep"], f"ENTRYPOINT is {entry[-1] if entry else None}"
    scripts = _console_scripts()
    assert scripts.get("dfsweep") == "dfsweep.cli:entry", f"[project.scripts] dfsweep = {scripts.get('dfsweep')}"
    cmd = [json.loads(rest) for word, rest in instr if word == "CMD"]
    assert cmd, "no default CMD"
    _check_argv(cmd[-1], "Dockerfile CMD")


def test_dockerfile_base_user_workdir_and_copies():
    instr = _dockerfile_instructions()
    args = _dockerfile_args()
    base = [rest for word, rest in instr if word == "FROM"][0]
    base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), base)
    assert ":" in base and not base.endswith(":latest"), f"base image {base} has no pinned tag"
    assert "cuda" in base, f"base image {base} is not a CUDA image"
    users = [rest for word, rest in instr if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image runs as root"
    assert [rest for word, rest in instr if word == "WORKDIR"][-1] == "/app"
    ignored = {ln.strip() for ln in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")}
    for word, rest in instr:
        if word == "COPY" and not rest.startswith("--from"):
            sources = [t for t in rest.split()[:-1] if not t.startswith("--")]
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository (build context = its root)"
                assert src not in ignored, f"COPY {src}: excluded by Dockerfile.dockerignore"


def test_every_dfsweep_command_is_a_real_subcommand_with_real_flags():
    found = _all_argvs()
    used = {}
    for where, argv in found:
        used.setdefault(_check_argv(argv, where), []).append(where)
    # the files do run sweeps, and the README shows the other steps
    assert any(w.startswith("compose service sweep") for w in used.get("run", [])), used
    assert any(w == RAYJOB.name for w in used.get("run", [])), used
    assert any(w == LAUNCHER.name for w in used.get("", [])), used
    for sub in ("run", "finalize", "demo-data"):
        assert any(w.startswith("README") for w in used.get(sub, [])), f"the README shows no `dfsweep {sub}`"


def test_the_sweep_points_at_the_cluster_mlflow_and_shared_storage():
    compose = _one(COMPOSE)
    argv = compose["services"]["sweep"]["command"]
    assert argv[argv.index("--address") + 1] == "ray-head:6379"
    assert argv[argv.index("--tracking-uri") + 1] == "http://mlflow:5000"
    storage = argv[argv.index("--storage") + 1]
    for svc in ("ray-head", "ray-gpu-worker", "sweep"):
        mounts = [_mount_target(v) for v in compose["services"][svc]["volumes"]]
        assert storage in mounts, f"{svc} does not mount the sweep storage {storage}"
    entry = shlex.split(_one(RAYJOB)["spec"]["entrypoint"])
    assert entry[:2] == ["dfsweep", "run"]
    assert entry[entry.index("--tracking-uri") + 1] == "http://mlflow:5000"
    assert "--storage" in entry


def test_the_drivers_own_records_outlive_the_driver():
    # --storage moves only Tune's experiment; sweep.yaml, state.json, optuna.db, leaderboard.csv and
    # best.yaml stay in sweeps/ under the driver's working directory, which --resume and finalize read
    workdir = [rest for word, rest in _dockerfile_instructions() if word == "WORKDIR"][-1]
    records = f"{workdir}/sweeps"
    sweep = _one(COMPOSE)["services"]["sweep"]
    assert records in [_mount_target(v) for v in sweep["volumes"]], "compose: the sweep's records are not on a volume"
    head_opts = " ".join(_one(LAUNCHER)["docker"].get("head_run_options", []))
    assert re.search(rf"--volume \S+:{re.escape(records)}\b", head_opts), "launcher: the head's records are not on the host"
    head = _one(RAYJOB)["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mounts = [m["mountPath"] for c in head["containers"] for m in c.get("volumeMounts", [])]
    assert records in mounts, "rayjob: the head's records are not on a volume"
    wd = {c.get("workingDir", workdir) for c in head["containers"]}
    assert wd == {workdir}, f"rayjob: the driver runs in {wd}, not {workdir}"


def test_gpu_workers_request_gpus():
    worker = _one(COMPOSE)["services"]["ray-gpu-worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices), devices
    assert "replicas" in worker["deploy"]
    head = _one(COMPOSE)["services"]["ray-head"]
    assert "deploy" not in head and "--num-gpus=0" in head["entrypoint"]

    launcher = _one(LAUNCHER)
    assert "--gpus all" in launcher["docker"].get("worker_run_options", [])
    workers = {k: v for k, v in launcher["available_node_types"].items() if k != launcher["head_node_type"]}
    assert workers, "the launcher config has no worker node type"
    for name, node in workers.items():
        assert 0 <= node["min_workers"] <= node["max_workers"] <= launcher["max_workers"], name
        assert re.match(r"(g|p)\d", node["node_config"]["InstanceType"]), f"{name} is not a GPU instance"

    spec = _one(RAYJOB)["spec"]["rayClusterSpec"]
    for group in spec["workerGroupSpecs"]:
        for c in group["template"]["spec"]["containers"]:
            assert int(c["resources"]["limits"]["nvidia.com/gpu"]) >= 1, group["groupName"]
    for c in spec["headGroupSpec"]["template"]["spec"]["containers"]:
        assert "nvidia.com/gpu" not in c.get("resources", {}).get("limits", {})


def test_rayjob_is_a_kuberay_rayjob():
    job = _one(RAYJOB)
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert {"headGroupSpec", "workerGroupSpecs"} <= set(spec["rayClusterSpec"])
    # KubeRay pastes the entrypoint into the submitter's shell script: one command only
    ops = [t for t in _tokens(spec["entrypoint"]) if t in SHELL_OPERATORS]
    assert not ops, f"the RayJob entrypoint holds shell operators {ops}"
    mlflow_services = [d["metadata"]["name"] for d in _load(K8S_MLFLOW) if d["kind"] == "Service"]
    assert "mlflow" in mlflow_services, "http://mlflow:5000 needs a Service named mlflow"
    claims = {d["metadata"]["name"] for d in _load(K8S_MLFLOW) if d["kind"] == "PersistentVolumeClaim"}
    for node in _walk(spec):
        if isinstance(node, dict) and "persistentVolumeClaim" in node:
            assert node["persistentVolumeClaim"]["claimName"] in claims


def test_a_retried_rayjob_continues_its_sweep():
    spec = _one(RAYJOB)["spec"]
    args = build_parser().parse_args(_tokens(spec["entrypoint"])[1:])
    assert args.name and args.resume_or_start and spec["backoffLimit"] >= 1


def _bytes(size: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    return int(float(size[:-2]) * units[size[-2].lower()]) if size.lower().endswith("b") else int(size)


def test_every_ray_node_sizes_its_object_store_below_its_shared_memory():
    """Ray puts its object store in /dev/shm only where it fits (else a slow /tmp fallback); its default
    size is 30% of the host's memory, so each node must set it below the container's shm_size."""
    nodes = 0
    for name, svc in _one(COMPOSE)["services"].items():
        cmd = " ".join(str(t) for t in (svc.get("entrypoint") or []) + (svc.get("command") or []))
        if "ray start" not in cmd and not cmd.startswith("ray start"):
            continue
        store = [t.split("=", 1)[1] for t in cmd.split() if t.startswith("--object-store-memory=")]
        assert store, f"compose service {name}: `ray start` without --object-store-memory"
        assert int(store[0]) < _bytes(str(svc["shm_size"])), f"compose service {name}: store {store[0]} > shm"
        nodes += 1
    assert nodes == 3


def test_ray_token_auth_everywhere_and_one_ray_version():
    compose = _one(COMPOSE)["services"]
    for svc in ("ray-head", "ray-gpu-worker", "sweep"):
        env = compose[svc]["environment"]
        assert env.get("RAY_AUTH_MODE") == "token" and env.get("RAY_AUTH_TOKEN"), f"{svc}: no token auth"
    launcher = _one(LAUNCHER)
    assert "--env RAY_AUTH_MODE=token" in launcher["docker"]["run_options"]
    assert "~/.ray/auth_token" in launcher["file_mounts"]
    spec = _one(RAYJOB)["spec"]["rayClusterSpec"]
    assert spec["authOptions"]["mode"] == "token"
    ray_version = _dockerfile_args()["RAY_VERSION"]
    assert spec["rayVersion"] == ray_version
    assert ray_version in " ".join(launcher["setup_commands"])
    assert f'ray[default]=={ray_version}' in README.read_text()


def test_launcher_config_matches_rays_schema():
    launcher = _one(LAUNCHER)
    assert launcher["head_node_type"] in launcher["available_node_types"]
    assert "--entrypoint=" in launcher["docker"]["run_options"], "the launcher starts the image with `bash`"
    spec = importlib.util.find_spec("ray")
    jsonschema = pytest.importorskip("jsonschema")
    if spec is None or spec.origin is None:
        pytest.skip("ray is not installed")
    schema = json.loads((Path(spec.origin).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(launcher, schema)
