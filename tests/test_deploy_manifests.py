"""The Kubernetes manifests and images: every kustomize overlay and the Helm chart render, lint and
validate against Kubernetes' schemas, describe the same production workloads, set every setting
the services need (and only real ones), drain within their grace period, run locked down, and the
Dockerfiles lint clean."""

from __future__ import annotations

import base64
import difflib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from hydite_controlplane.bootstrap import parse_bootstrap
from hydite_controlplane.settings import ControlplaneSettings
from hydite_dataplane.routes import ROUTES
from hydite_dataplane.serving import CLOSE_SECONDS
from hydite_dataplane.settings import DataplaneSettings
from hydite_spend_ingest.settings import IngestSettings
from tests.deploy_render import (
    BIN,
    CHART,
    DEPLOY,
    KUBE_VERSION,
    PRODUCTION_VALUES,
    ROOT,
    ContainerView,
    FieldValue,
    Manifest,
    SecretValue,
    chart_values,
    containers,
    find,
    helm_template,
    hydite_containers,
    kustomize,
    of_kind,
    pod_spec,
)

SCHEMAS = ROOT / "tests/specs/k8s"
CUSTOM_SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): SCHEMAS / "servicemonitor-v1.schema.json"}
WORKLOADS = ("Deployment", "StatefulSet", "Job")
DOCKERFILES = [ROOT / f"services/{name}/Dockerfile" for name in ("controlplane", "dataplane", "spend-ingest")]

SETTINGS: dict[str, type[BaseSettings]] = {
    "controlplane": ControlplaneSettings,
    "migrate": ControlplaneSettings,
    "dataplane": DataplaneSettings,
    "spend-ingest": IngestSettings,
}
"""Which settings class each Hydite container's process reads."""
MUST_SET = {
    "controlplane": {
        "HYDITE_ENVIRONMENT", "HYDITE_DATABASE_URL", "HYDITE_MASTER_KEY", "HYDITE_SALT_KEY",
        "HYDITE_CONFIG_TOKEN", "HYDITE_NATS_URL", "HYDITE_NATS_PREFIX", "HYDITE_ADMIN_PORT",
        "HYDITE_GRPC_PORT", "HYDITE_RUN_MIGRATIONS", "HYDITE_CONFIG", "HYDITE_SHUTDOWN_DELAY_SECONDS",
        "HYDITE_DRAIN_SECONDS",
    },
    "migrate": {
        "HYDITE_ENVIRONMENT", "HYDITE_DATABASE_URL", "HYDITE_MASTER_KEY", "HYDITE_SALT_KEY",
        "HYDITE_CONFIG_TOKEN",
    },
    "dataplane": {
        "HYDITE_ENVIRONMENT", "HYDITE_SALT_KEY", "HYDITE_CONFIG_TOKEN", "HYDITE_NATS_URL",
        "HYDITE_NATS_PREFIX", "HYDITE_CONTROLPLANE_GRPC", "HYDITE_CONTROLPLANE_URL", "HYDITE_PORT",
        "HYDITE_NODE_ID", "HYDITE_SHUTDOWN_DELAY_SECONDS", "HYDITE_DRAIN_SECONDS",
        "HYDITE_USAGE_DRAIN_SECONDS", "HYDITE_USAGE_SPOOL_DIR", "HYDITE_USAGE_SPOOL_MAX_MB",
    },
    "spend-ingest": {
        "HYDITE_ENVIRONMENT", "HYDITE_DATABASE_URL", "HYDITE_NATS_URL", "HYDITE_NATS_PREFIX",
        "HYDITE_INGEST_PORT", "HYDITE_DRAIN_SECONDS",
    },
}  # fmt: skip
"""Settings every manifest must set for each container, whatever their defaults: secrets, where the
other services are, ports the probes and Services name, and the shutdown timing."""
SECRET_SETTINGS = {"HYDITE_DATABASE_URL", "HYDITE_MASTER_KEY", "HYDITE_SALT_KEY", "HYDITE_CONFIG_TOKEN"}
"""Settings that must come from a Secret, never a literal in a manifest."""
STAND_IN_SECRETS = {
    "master-key": "sk-" + "m" * 40,
    "salt-key": "s" * 40,
    "config-token": "c" * 40,
    "database-url": "postgresql://hydite@db.example:5432/hydite",
}
"""Values of the operator's Secret when a render does not contain it (production)."""
SWITCHES = {
    "image": {"registry": "registry.example.com", "tag": "1.2.3"},
    "secrets": {
        "create": True,
        "masterKey": STAND_IN_SECRETS["master-key"],
        "saltKey": STAND_IN_SECRETS["salt-key"],
        "configToken": STAND_IN_SECRETS["config-token"],
        "databaseUrl": STAND_IN_SECRETS["database-url"],
    },
    "migrations": {"job": False},
    "dataplane": {"autoscaling": {"enabled": False, "inFlightPerPod": ""}, "replicas": 3},
    "ingress": {"adminDirect": True, "tls": [{"secretName": "hydite-tls", "hosts": ["hydite.example.com"]}]},
    "serviceMonitor": {"enabled": True},
}
"""Chart values that turn every switch away from its default (rendered as release "acme")."""


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    """Every rendering the tests check, each made once: kustomize base, overlays and the
    admin-direct component, and the chart with default, production and all-switched values."""
    admin_direct = Path(tmp_path_factory.mktemp("admin-direct"))
    (admin_direct / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{os.path.relpath(DEPLOY / 'overlays/prod', admin_direct)}]\n"
        f"components: [{os.path.relpath(DEPLOY / 'components/admin-direct', admin_direct)}]\n"
    )
    return {
        "kustomize/base": kustomize(DEPLOY / "base"),
        "kustomize/dev": kustomize(DEPLOY / "overlays/dev"),
        "kustomize/prod": kustomize(DEPLOY / "overlays/prod"),
        "kustomize/prod+admin-direct": kustomize(admin_direct),
        "helm/default": helm_template(None),
        "helm/production": helm_template(chart_values(PRODUCTION_VALUES)),
        "helm/switches": helm_template(SWITCHES, release="acme"),
    }


def each(renders: dict[str, list[Manifest]]) -> Iterator[tuple[str, Manifest]]:
    """Every object of every rendering, with the rendering's name."""
    for source, objects in renders.items():
        for obj in objects:
            yield source, obj


def test_every_object_validates_against_its_schema(renders: dict[str, list[Manifest]]) -> None:
    """Every rendered object is valid for Kubernetes 1.33 (strict: no unknown fields), custom
    resources against their vendored CRD schemas; no kind goes unchecked."""
    checked = 0
    for source, obj in each(renders):
        custom = CUSTOM_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
        where = f"{source}: {obj['kind']}/{obj['metadata']['name']}"
        try:
            if custom is not None:
                jsonschema.Draft202012Validator(json.loads(custom.read_text())).validate(obj)
            else:
                kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except jsonschema.ValidationError as exc:
            pytest.fail(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")
        checked += 1
    assert checked > 100


def test_the_validator_refuses_unknown_fields() -> None:
    """Strict validation is on: a misspelt field fails (so a pass above means something)."""
    typo: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 80, "targetPrt": 80}]},
    }
    with pytest.raises(jsonschema.ValidationError):
        kubernetes_validate.validate(typo, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("values_file", [None, PRODUCTION_VALUES], ids=["default", "production"])
def test_chart_lints_clean(values_file: Path | None) -> None:
    """`helm lint --strict` finds nothing above info level (the chart has no icon) with the default
    and with the production values."""
    report = helm.lint(CHART, chart_values(values_file), strict=True, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize(
    "values",
    [
        {"dataplane": {"drainSeconds": "15s"}},
        {"secrets": {"create": True}},
        {"secrets": {"existingSecret": ""}},
        {"environment": "production"},
        {"ingress": {"hosts": ["a"]}},
        {"dataplane": {"autoscaling": {"inFlightPerPod": 100}}},
    ],
)
def test_chart_schema_refuses_bad_values(values: dict[str, Any]) -> None:
    """values.schema.json turns away wrong types, unknown keys and a created Secret without values."""
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(chart.merge_values(values))


def _comparable(obj: Manifest) -> Any:
    """What must match between Helm and kustomize: the object's spec (or data) without the labels
    and annotations each tool adds for itself."""
    body = json.loads(
        json.dumps({k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")})
    )
    template = body.get("spec", {}).get("template", {})
    template.get("metadata", {}).pop("annotations", None)
    return body


def _diff(left: Any, right: Any) -> str:
    """A unified diff of two values as sorted YAML, for a readable failure."""
    before, after = (yaml.safe_dump(side, sort_keys=True).splitlines() for side in (left, right))
    return "\n".join(difflib.unified_diff(before, after, lineterm="", n=2))


def test_helm_production_and_kustomize_prod_describe_the_same_workloads(
    renders: dict[str, list[Manifest]],
) -> None:
    """The chart with values-production.yaml and overlays/prod render the same objects (the
    Namespace aside, which Helm leaves to --create-namespace) with the same specs: images, env,
    probes, ports, resources, NetworkPolicies, HPA, PDBs, Ingress, ServiceMonitors."""
    helm_objects = {(o["kind"], o["metadata"]["name"]): o for o in renders["helm/production"]}
    kustomize_objects = {
        (o["kind"], o["metadata"]["name"]): o for o in renders["kustomize/prod"] if o["kind"] != "Namespace"
    }
    assert sorted(helm_objects) == sorted(kustomize_objects)
    for key, obj in kustomize_objects.items():
        charted, kustomized = _comparable(helm_objects[key]), _comparable(obj)
        assert charted == kustomized, f"{key}, Helm (-) against kustomize (+):\n{_diff(charted, kustomized)}"


def test_admin_direct_ingress_is_the_same_in_both_and_only_names_control_plane_paths(
    renders: dict[str, list[Manifest]],
) -> None:
    """The admin-direct Ingress (kustomize component, chart switch) sends to the control plane
    only paths the data plane does not serve itself."""
    kustomized = find(renders["kustomize/prod+admin-direct"], "Ingress", "hydite-admin")
    charted = find(renders["helm/switches"], "Ingress", "acme-hydite-admin")
    routed = {
        source: [
            (p["path"], p["pathType"], p["backend"]["service"]["name"])
            for p in ingress["spec"]["rules"][0]["http"]["paths"]
        ]
        for source, ingress in (("hydite", kustomized), ("acme-hydite", charted))
    }
    assert [(path, kind) for path, kind, _ in routed["hydite"]] == [
        (path, kind) for path, kind, _ in routed["acme-hydite"]
    ]
    for release, paths in routed.items():
        assert {service for _, _, service in paths} == {f"{release}-controlplane"}
    served = {route.path for route in ROUTES}
    for path, kind, _ in routed["hydite"]:
        taken = [s for s in served if s == path or (kind == "Prefix" and s.startswith(path + "/"))]
        assert taken == [], f"{path} would take data-plane routes {taken}"


def _field_env_names(settings: type[BaseSettings], field_name: str) -> set[str]:
    """The environment variables one settings field is read from: prefix + name, or its aliases."""
    alias = settings.model_fields[field_name].validation_alias
    if isinstance(alias, str):
        return {alias.upper()}
    if isinstance(alias, AliasChoices):
        return {str(choice).upper() for choice in alias.choices}
    return {f"{settings.model_config.get('env_prefix', '')}{field_name}".upper()}


def _setting_env_names(settings: type[BaseSettings]) -> set[str]:
    """Every environment variable the settings class reads."""
    return {name for field_name in settings.model_fields for name in _field_env_names(settings, field_name)}


def _secret_data(objects: list[Manifest], name: str) -> dict[str, str]:
    """The keys of the Secret the render holds under this name, or stand-ins for the operator's."""
    secret = next((o for o in of_kind(objects, "Secret") if o["metadata"]["name"] == name), None)
    if secret is None:
        return STAND_IN_SECRETS
    data = {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}
    return {**data, **secret.get("stringData", {})}


def _resolved(view: ContainerView, objects: list[Manifest]) -> dict[str, str]:
    """The container's environment with Secrets and pod fields filled in as the kubelet would."""
    resolved: dict[str, str] = {}
    for name, value in view.env.items():
        if isinstance(value, SecretValue):
            resolved[name] = _secret_data(objects, value.secret)[value.key]
        elif isinstance(value, FieldValue):
            resolved[name] = f"{view.workload['metadata']['name']}-7d9f8-x2x4q"
        else:
            resolved[name] = value
    return resolved


def test_every_setting_the_services_need_is_set_and_every_one_set_is_real(
    renders: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Hydite container sets every setting it must, sets only HYDITE_* names its service
    reads (a typo fails), takes secrets from Secrets, and its service accepts the values."""
    for name in [n for n in os.environ if n.startswith("HYDITE_")]:
        monkeypatch.delenv(name)
    for source, objects in renders.items():
        found = hydite_containers(objects)
        expected = {"controlplane", "dataplane", "spend-ingest"} | (
            {"migrate"} if any(o["kind"] == "Job" for o in objects) else set()
        )
        assert set(found) == expected, source
        for name, view in found.items():
            settings = SETTINGS[name]
            known = _setting_env_names(settings)
            hydite_names = {n for n in view.env if n.startswith("HYDITE_")}
            assert hydite_names - known == set(), (
                f"{source} {view.label}: not settings of {settings.__name__}"
            )
            assert MUST_SET[name] - hydite_names == set(), f"{source} {view.label}: missing"
            for field_name, field in settings.model_fields.items():
                if field.is_required():
                    assert _field_env_names(settings, field_name) & set(view.env), f"{source} {view.label}"
            literal = {n for n in SECRET_SETTINGS & hydite_names if not isinstance(view.env[n], SecretValue)}
            assert literal == set(), f"{source} {view.label}: secrets given as literals"
            with monkeypatch.context() as env:
                for key, value in _resolved(view, objects).items():
                    env.setenv(key, value)
                settings()


def test_manifests_point_the_services_at_each_other_consistently(renders: dict[str, list[Manifest]]) -> None:
    """The control plane addresses data planes use are the control plane's Service and ports, and
    the ports settings name are the containers' ports."""
    for source, objects in renders.items():
        found = hydite_containers(objects)
        dataplane, controlplane = found["dataplane"], found["controlplane"]
        service = next(
            s
            for s in of_kind(objects, "Service")
            if s["spec"]["selector"] == controlplane.workload["spec"]["selector"]["matchLabels"]
        )
        ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
        name = service["metadata"]["name"]
        assert dataplane.env["HYDITE_CONTROLPLANE_GRPC"] == f"{name}:{ports['grpc']}", source
        assert dataplane.env["HYDITE_CONTROLPLANE_URL"] == f"http://{name}:{ports['http']}", source
        for view, setting in (
            (controlplane, "HYDITE_ADMIN_PORT"),
            (dataplane, "HYDITE_PORT"),
            (found["spend-ingest"], "HYDITE_INGEST_PORT"),
        ):
            http = {p["name"]: p["containerPort"] for p in view.container["ports"]}["http"]
            assert view.env[setting] == str(http), f"{source} {view.label}"
        assert controlplane.env["HYDITE_GRPC_PORT"] == str(
            {p["name"]: p["containerPort"] for p in controlplane.container["ports"]}["grpc"]
        )


def test_only_the_job_migrates_when_there_is_one(renders: dict[str, list[Manifest]]) -> None:
    """With a migration Job, control-plane replicas do not migrate at start; without one they do."""
    for source, objects in renders.items():
        has_job = any(o["kind"] == "Job" for o in objects)
        run_at_start = hydite_containers(objects)["controlplane"].env["HYDITE_RUN_MIGRATIONS"]
        assert run_at_start == ("false" if has_job else "true"), source
        for job in of_kind(objects, "Job"):
            assert hydite_containers([job])["migrate"].container["args"] == ["migrate"]
            assert pod_spec(job)["restartPolicy"] == "Never"


def test_helm_runs_the_migration_job_before_the_release_and_its_secret_before_that(
    renders: dict[str, list[Manifest]],
) -> None:
    """The chart's Job is a pre-install/pre-upgrade hook, and a Secret the chart creates (and the
    Job's NetworkPolicy) are hooks of lower weight, so the Job finds them."""
    job = find(renders["helm/default"], "Job", "hydite-migrate")
    policy = find(renders["helm/default"], "NetworkPolicy", "hydite-migrate")
    secret = find(renders["helm/switches"], "Secret", "acme-hydite-secrets")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    for earlier in (policy, secret):
        assert earlier["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        weight = int(earlier["metadata"]["annotations"]["helm.sh/hook-weight"])
        assert weight < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])


def _seconds(view: ContainerView, setting: str) -> float:
    """A duration setting as the container sets it, or the service's default."""
    value = view.env.get(setting)
    if value is None:
        field = SETTINGS[view.name].model_fields[setting.removeprefix("HYDITE_").lower()]
        return float(field.default)
    return float(str(value))


def test_every_service_stops_within_its_grace_period(renders: dict[str, list[Manifest]]) -> None:
    """terminationGracePeriodSeconds covers the preStop sleep, HYDITE_SHUTDOWN_DELAY_SECONDS,
    HYDITE_DRAIN_SECONDS (and the data plane's HYDITE_USAGE_DRAIN_SECONDS and final close) with
    room to spare; data and control planes sleep in preStop while their endpoints are removed."""
    for source, objects in renders.items():
        for name, view in hydite_containers(objects).items():
            if name == "migrate":
                continue
            where = f"{source} {view.label}"
            sleep = (
                view.container.get("lifecycle", {})
                .get("preStop", {})
                .get("exec", {})
                .get("command", ["", "0"])
            )
            assert sleep[0] in ("sleep", ""), where
            needed = (
                int(sleep[1])
                + _seconds(view, "HYDITE_SHUTDOWN_DELAY_SECONDS")
                + _seconds(view, "HYDITE_DRAIN_SECONDS")
            )
            if name == "dataplane":
                needed += _seconds(view, "HYDITE_USAGE_DRAIN_SECONDS") + CLOSE_SECONDS
            if name in ("dataplane", "controlplane"):
                assert int(sleep[1]) > 0, where
            assert pod_spec(view.workload)["terminationGracePeriodSeconds"] >= needed + 5, where


def test_the_usage_spool_is_a_volume_larger_than_the_spool(renders: dict[str, list[Manifest]]) -> None:
    """HYDITE_USAGE_SPOOL_DIR is a mounted emptyDir whose sizeLimit exceeds HYDITE_USAGE_SPOOL_MAX_MB,
    so the spool fills (and batches wait in memory) before the kubelet would evict the pod."""
    for source, objects in renders.items():
        view = hydite_containers(objects)["dataplane"]
        spec = pod_spec(view.workload)
        mount = next(
            m for m in view.container["volumeMounts"] if m["mountPath"] == view.env["HYDITE_USAGE_SPOOL_DIR"]
        )
        volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        size_limit = volume["emptyDir"]["sizeLimit"]
        assert size_limit.endswith("Gi"), source
        assert int(size_limit[:-2]) * 1024 > int(str(view.env["HYDITE_USAGE_SPOOL_MAX_MB"])), source


def test_every_container_runs_locked_down_with_probes_on_its_health_routes(
    renders: dict[str, list[Manifest]],
) -> None:
    """Non-root (uid 10001 for Hydite's images), read-only root, no capabilities, no privilege
    escalation, RuntimeDefault seccomp, requests and limits; writable paths are emptyDirs; the
    services' probes hit /health/liveliness and /health/readiness on their HTTP port."""
    for source, objects in renders.items():
        for view in containers(objects):
            where = f"{source} {view.label}"
            pod = pod_spec(view.workload)
            context = {**pod["securityContext"], **view.container["securityContext"]}
            assert context["runAsNonRoot"] is True, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert pod["automountServiceAccountToken"] is False, where
            assert {"requests", "limits"} <= set(view.container["resources"]), where
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            for mount in view.container.get("volumeMounts", []):
                volume = volumes[mount["name"]]
                assert "emptyDir" in volume or ("configMap" in volume and mount.get("readOnly")), where
            if view.name not in hydite_containers(objects):
                continue
            assert context["runAsUser"] == 10001 and context["runAsGroup"] == 10001, where
            if view.name == "migrate":
                continue
            probes = {
                kind: view.container[kind]["httpGet"]
                for kind in ("livenessProbe", "readinessProbe", "startupProbe")
                if kind in view.container
            }
            assert probes["livenessProbe"] == {"path": "/health/liveliness", "port": "http"}, where
            assert probes["readinessProbe"] == {"path": "/health/readiness", "port": "http"}, where
            assert probes.get("startupProbe", probes["livenessProbe"])["path"] == "/health/liveliness", where


def _selects(pod_labels: list[dict[str, str]], match: dict[str, str]) -> bool:
    """Whether the label selector matches the pods of some workload."""
    return any(match.items() <= labels.items() for labels in pod_labels)


def test_references_between_objects_resolve(renders: dict[str, list[Manifest]]) -> None:
    """Services, PDBs, ServiceMonitors and NetworkPolicies select pods that exist; Ingress backends,
    HPA targets, ConfigMap volumes and ServiceMonitor ports name objects and ports that exist."""
    for source, objects in renders.items():
        pod_labels = [w["spec"]["template"]["metadata"]["labels"] for w in objects if w["kind"] in WORKLOADS]
        services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
        for service in services.values():
            assert _selects(pod_labels, service["spec"]["selector"]), (
                f"{source} {service['metadata']['name']}"
            )
        for obj in of_kind(objects, "PodDisruptionBudget") + of_kind(objects, "NetworkPolicy"):
            selector = obj["spec"].get("selector") or obj["spec"]["podSelector"]
            assert _selects(pod_labels, selector["matchLabels"]), (
                f"{source} {obj['kind']}/{obj['metadata']['name']}"
            )
        for monitor in of_kind(objects, "ServiceMonitor"):
            matched = [
                s
                for s in services.values()
                if monitor["spec"]["selector"]["matchLabels"].items()
                <= s["metadata"].get("labels", {}).items()
            ]
            assert len(matched) == 1, f"{source} {monitor['metadata']['name']}"
            port_names = {p["name"] for p in matched[0]["spec"]["ports"]}
            assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names
        for ingress in of_kind(objects, "Ingress"):
            for rule in ingress["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    backend = path["backend"]["service"]
                    names = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
                    assert backend["port"]["name"] in names, f"{source} {path}"
        for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
            target = find(
                objects, hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"]
            )
            assert "replicas" not in target["spec"], f"{source}: the HPA owns the replica count"
        for workload in objects:
            if workload["kind"] in WORKLOADS:
                for volume in pod_spec(workload).get("volumes", []):
                    if "configMap" in volume:
                        find(objects, "ConfigMap", volume["configMap"]["name"])


def test_the_hpa_scales_on_a_metric_the_data_plane_exports(renders: dict[str, list[Manifest]]) -> None:
    """Every Pods metric an HPA names is a gauge the data plane registers for /metrics."""
    sources = "\n".join(
        p.read_text() for p in (ROOT / "services/dataplane/src/hydite_dataplane").rglob("*.py")
    )
    for source, objects in renders.items():
        for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
            for metric in hpa["spec"]["metrics"]:
                if metric["type"] == "Pods":
                    assert f'"{metric["pods"]["metric"]["name"]}"' in sources, source


def _policy(objects: list[Manifest], app: str) -> dict[str, Any]:
    spec: dict[str, Any] = next(
        p["spec"]
        for p in of_kind(objects, "NetworkPolicy")
        if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name", "").endswith(app)
    )
    return spec


def _egress_ports(policy: dict[str, Any]) -> set[int]:
    return {port["port"] for rule in policy.get("egress", []) for port in rule.get("ports", [])}


def test_network_policies_fence_postgres_and_the_config_stream(renders: dict[str, list[Manifest]]) -> None:
    """Only the control plane, spend-ingest and the migration Job may open Postgres; only data
    planes reach the config stream; data planes reach NATS, providers on 443 and the control
    plane, and are reached from the ingress controller; every Hydite pod is isolated both ways."""
    for source, objects in renders.items():
        controlplane, dataplane = _policy(objects, "-controlplane"), _policy(objects, "-dataplane")
        ingest = _policy(objects, "-spend-ingest")
        for policy in (controlplane, dataplane, ingest):
            assert policy["policyTypes"] == ["Ingress", "Egress"], source
        assert 5432 in _egress_ports(controlplane) and 5432 in _egress_ports(ingest), source
        assert 5432 not in _egress_ports(dataplane), source
        if any(o["kind"] == "Job" for o in objects):
            assert 5432 in _egress_ports(_policy(objects, "-migrate")), source
        assert {4222, 443, 4001, 50051} <= _egress_ports(dataplane), source
        grpc_rules = [r for r in controlplane["ingress"] if 50051 in {p["port"] for p in r.get("ports", [])}]
        assert len(grpc_rules) == 1, source
        peers = grpc_rules[0]["from"]
        assert [set(p) for p in peers] == [{"podSelector"}], source
        assert peers[0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"].endswith("-dataplane")
        namespaces = [
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in dataplane["ingress"]
            for peer in rule["from"]
        ]
        assert "ingress-nginx" in namespaces, source


def test_the_bootstrap_file_is_mounted_where_hydite_config_points_and_parses(
    renders: dict[str, list[Manifest]],
) -> None:
    """HYDITE_CONFIG names the file the bootstrap ConfigMap mounts, and the control plane accepts it."""
    for objects in renders.values():
        view = hydite_containers(objects)["controlplane"]
        path = Path(str(view.env["HYDITE_CONFIG"]))
        mount = next(m for m in view.container["volumeMounts"] if m["mountPath"] == str(path.parent))
        volume = next(v for v in pod_spec(view.workload)["volumes"] if v["name"] == mount["name"])
        config_map = find(objects, "ConfigMap", volume["configMap"]["name"])
        parse_bootstrap(config_map["data"][path.name])


def test_dockerfiles_lint_clean() -> None:
    """hadolint finds nothing in the three Dockerfiles, at any severity."""
    done = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", "--failure-threshold", "style", *map(str, DOCKERFILES)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, ""), done.stdout + done.stderr
