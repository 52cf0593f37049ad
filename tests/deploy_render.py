"""Rendering and reading Hydite's Kubernetes manifests for the deploy tests: kustomize through the
kubectl binary, the Helm chart through the Helm engine, and the views of a rendered object that
the tests compare (containers, their effective environment)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy/k8s"
CHART = DEPLOY / "helm/hydite"
PRODUCTION_VALUES = CHART / "values-production.yaml"
BIN = Path(sys.executable).parent
KUBE_VERSION = "1.33.0"
"""The Kubernetes version every manifest is validated against."""
RELEASE = "hydite"
NAMESPACE = "hydite"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")

Manifest = dict[str, Any]


def kustomize(path: Path) -> list[Manifest]:
    """The objects `kubectl kustomize path` renders."""
    done = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def chart_values(path: Path | None) -> dict[str, Any] | None:
    """A values file as Helm reads it (`-f path`), or None for the chart's defaults."""
    return None if path is None else helm.values_from_yaml(path.read_text())


def helm_template(values: dict[str, Any] | None, *, release: str = RELEASE) -> list[Manifest]:
    """The objects `helm template release CHART` renders with these values (hooks included)."""
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(chart.merge_values(values))
        rendered = chart.render(values=values, name=release, namespace=NAMESPACE, is_install=True)
    return [
        doc
        for name, text in sorted(rendered.items())
        if name.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    """The one object of this kind and name."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    """Every object of this kind."""
    return [o for o in objects if o["kind"] == kind]


def pod_spec(workload: Manifest) -> dict[str, Any]:
    """The pod template's spec of a Deployment, StatefulSet or Job."""
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


@dataclass(frozen=True)
class SecretValue:
    """An env value read from a key of a Secret."""

    secret: str
    key: str


@dataclass(frozen=True)
class FieldValue:
    """An env value taken from the pod's own fields (the downward API)."""

    path: str


EnvValue = str | SecretValue | FieldValue


@dataclass(frozen=True)
class ContainerView:
    """One container of a rendered workload with everything the tests look at."""

    workload: Manifest
    container: dict[str, Any]
    env: dict[str, EnvValue]
    """Its environment as the process sees it: ConfigMaps of envFrom resolved, then env on top."""

    @property
    def name(self) -> str:
        """The container's name."""
        name: str = self.container["name"]
        return name

    @property
    def label(self) -> str:
        """kind/name/container, for messages."""
        return f"{self.workload['kind']}/{self.workload['metadata']['name']}/{self.name}"


def _env_value(entry: dict[str, Any]) -> EnvValue:
    if "value" in entry:
        value: str = entry["value"]
        return value
    source = entry["valueFrom"]
    if "secretKeyRef" in source:
        return SecretValue(source["secretKeyRef"]["name"], source["secretKeyRef"]["key"])
    if "fieldRef" in source:
        return FieldValue(source["fieldRef"]["fieldPath"])
    raise AssertionError(f"unexpected env source {source}")


def container_env(container: dict[str, Any], objects: list[Manifest]) -> dict[str, EnvValue]:
    """The container's environment: ConfigMaps named by envFrom (which must be in objects), then env."""
    env: dict[str, EnvValue] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config_map = find(objects, "ConfigMap", source["configMapRef"]["name"])
            env.update({k: str(v) for k, v in config_map.get("data", {}).items()})
    for entry in container.get("env", []):
        env[entry["name"]] = _env_value(entry)
    return env


def containers(objects: list[Manifest]) -> Iterator[ContainerView]:
    """Every container (init containers too) of every workload in objects."""
    for workload in objects:
        if workload["kind"] not in WORKLOAD_KINDS:
            continue
        spec = pod_spec(workload)
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield ContainerView(workload, container, container_env(container, objects))


def is_hydite_image(image: str) -> bool:
    """Whether the image is one of Hydite's (hydite/<service>, under any registry and tag)."""
    repository = image.rsplit(":", 1)[0].split("/")
    return len(repository) >= 2 and repository[-2] == "hydite"


def hydite_containers(objects: list[Manifest]) -> dict[str, ContainerView]:
    """The containers running Hydite's images, by container name (controlplane, migrate, ...)."""
    found = {c.name: c for c in containers(objects) if is_hydite_image(c.container["image"])}
    assert found, "no Hydite container rendered"
    return found
