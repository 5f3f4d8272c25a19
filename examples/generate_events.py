#!/usr/bin/env python3
"""Generate ``events.jsonl``: 40 minutes of one cluster's Kubernetes Events.

Every line is one Event object exactly as the API server serialises it on a
watch (``kind`` first, Go field order, ``null`` for unset times, ``<``/``>``/``&``
escaped as ``\\u003c``/``\\u003e``/``\\u0026``). The story, the message formats and
the field shapes follow what kubelet, kube-scheduler, kube-controller-manager,
kube-proxy, node-problem-detector and a few add-ons really write; see README.md.

Deterministic: a fixed seed and a fixed base time, so the output only changes
when this file does. Python 3.11 standard library only.

    python3 examples/generate_events.py            # writes examples/events.jsonl, prints statistics
    python3 examples/generate_events.py --check    # fails if events.jsonl is not what this script writes
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import random
import sys
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

SEED = 20261120
BASE = datetime(2026, 11, 20, 9, 0, 0, tzinfo=timezone.utc)
OUT = Path(__file__).with_name("events.jsonl")

# etcd revisions are cluster-wide: events share them with pods, leases,
# endpoints... so consecutive event lines are a few revisions apart.
RV0 = 48_213_977
RV_PER_SECOND = 7.3

MAX_AGE = 300.0  # the time filter's default max age, used only to verify the story
ESCALATION = 5  # the occurrence core's default repeat threshold

NODES = {
    "n1": "ip-10-0-12-41.eu-west-1.compute.internal",
    "n2": "ip-10-0-27-133.eu-west-1.compute.internal",
    "n3": "ip-10-0-45-208.eu-west-1.compute.internal",
}
NODE_SUBNET = {"n1": "10.0.12", "n2": "10.0.27", "n3": "10.0.45"}
CONTROL_PLANE_HOST = "ip-172-16-81-204.eu-west-1.compute.internal"
ECR = "471112853907.dkr.ecr.eu-west-1.amazonaws.com"
# Alphabet of k8s.io/apimachinery rand.SafeEncodeString (ReplicaSet hashes, pod suffixes).
SAFE = "bcdfghjklmnpqrstvwxz2456789"

rng = random.Random(SEED)


# ---------------------------------------------------------------- time, ids

def at(t: float) -> datetime:
    return BASE + timedelta(microseconds=round(t * 1_000_000))


def iso(t: float) -> str:
    """metav1.Time: RFC 3339, whole seconds."""
    return at(math.floor(t)).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro(t: float) -> str:
    """metav1.MicroTime: always six fractional digits."""
    return at(t).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hms(m: int, s: float = 0.0) -> float:
    """Seconds since 09:00:00 for 09:mm:ss (m may be negative for 08:xx)."""
    return m * 60 + s


def new_uid() -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def safe(n: int) -> str:
    return "".join(rng.choice(SAFE) for _ in range(n))


def rv_at(t: float) -> int:
    """The cluster's etcd revision at time t (older history grew more slowly)."""
    if t >= -7200:
        return RV0 + int(t * RV_PER_SECOND)
    return rv_at(-7200) + int((t + 7200) * 0.35)


def go_duration(seconds: float) -> str:
    """time.Duration.String() of a duration truncated to milliseconds."""
    ms = int(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms"
    return f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"


def cron_job_name(cronjob: str, t: float) -> str:
    """CronJob controller: job name suffix is the scheduled time in minutes since the epoch."""
    return f"{cronjob}-{int(at(t).timestamp()) // 60}"


# ------------------------------------------------------------------- model

@dataclass
class Obj:
    """An object Events are about (ObjectReference without fieldPath)."""

    kind: str
    name: str
    namespace: str | None
    api_version: str | None
    uid: str = ""
    rv_time: float | None = None  # None: the reference carries no resourceVersion
    node: str | None = None  # pods: node key in NODES
    ip: str | None = None

    def ref(self, field_path: str | None = None) -> dict:
        r: dict = {"kind": self.kind}
        if self.namespace:
            r["namespace"] = self.namespace
        r["name"] = self.name
        if self.uid:
            r["uid"] = self.uid
        if self.api_version:
            r["apiVersion"] = self.api_version
        if self.rv_time is not None:
            r["resourceVersion"] = str(rv_at(self.rv_time))
        if field_path:
            r["fieldPath"] = field_path
        return r


@dataclass(frozen=True)
class Producer:
    """Who writes the Event and through which API.

    ``native`` producers use the events.k8s.io/v1 recorder (client-go tools/events):
    they set eventTime/action/series and leave the deprecated core fields empty.
    The others use the core/v1 recorder (client-go tools/record): source, counts,
    first/last timestamps, and reportingComponent/Instance copied from the source.
    """

    component: str
    host: str = ""
    manager: str = "kube-controller-manager"
    native: bool = False


def kubelet(node: str) -> Producer:
    return Producer("kubelet", NODES[node], "kubelet")


def ctrl(name: str) -> Producer:
    return Producer(name)


SCHEDULER = Producer("default-scheduler", f"default-scheduler-{CONTROL_PLANE_HOST}", "kube-scheduler", native=True)


@dataclass
class Event:
    uid: str
    name: str
    namespace: str
    regarding: Obj
    field_path: str | None
    reason: str
    type: str
    message: str
    producer: Producer
    form: str  # "v1" or "events.k8s.io/v1": which API this object is read through
    created: float
    action: str = ""
    tag: str = ""  # scenario label, for the "interesting" report
    # mutable state, copied into each version
    count: int = 0
    first: float | None = None
    last: float | None = None
    event_time: float | None = None
    series_count: int = 0
    series_last: float | None = None


@dataclass
class Version:
    write: float  # when the API server stored it (orders the watch stream)
    seq: int
    ev: Event
    state: dict
    rv: int = 0


@dataclass
class Sim:
    versions: list[Version] = field(default_factory=list)
    seq: int = 0

    # -- writing Events

    def emit(self, ev: Event, write: float) -> None:
        self.seq += 1
        state = {k: getattr(ev, k) for k in ("count", "first", "last", "event_time", "series_count", "series_last", "message")}
        self.versions.append(Version(write, self.seq, ev, state))

    def event(self, t: float, obj: Obj, reason: str, message: str, producer: Producer, *,
              type: str = "Normal", field_path: str | None = None, action: str = "",
              form: str | None = None, tag: str = "", ns: str | None = None) -> Event:
        # client-go names events "<involved name>.<UnixNano in hex>" in both recorders
        nanos = int(at(t).timestamp()) * 1_000_000_000 + rng.randrange(1_000_000_000)
        ev = Event(
            uid=new_uid(), name=f"{obj.name}.{nanos:x}",
            # events about cluster-scoped objects (Nodes) live in "default"
            namespace=ns or obj.namespace or "default",
            regarding=obj, field_path=field_path, reason=reason, type=type, message=message,
            producer=producer, form=form or default_form(obj, producer), created=t, action=action, tag=tag,
        )
        if producer.native:
            ev.event_time = t + rng.randrange(100_000) / 1e6  # MicroTime: a real clock, not round numbers
            self.emit(ev, t + rng.uniform(0.004, 0.25))
        else:
            ev.count, ev.first, ev.last = 1, t, t
            self.emit(ev, t + rng.uniform(0.05, 1.1))
        return ev

    def bump(self, ev: Event, t: float) -> None:
        """core/v1 recorder: the EventCorrelator PATCHes count and lastTimestamp."""
        assert not ev.producer.native
        ev.count += 1
        ev.last = t
        self.emit(ev, t + rng.uniform(0.05, 1.1))

    def series(self, ev: Event, observed: float, count: int, write: float) -> None:
        """events.k8s.io/v1 recorder: isomorphic events become a series; the second
        one is written at once, later ones only on the 30-minute refresh."""
        assert ev.producer.native
        ev.series_count, ev.series_last = count, observed + rng.randrange(100_000) / 1e6
        self.emit(ev, write)


def default_form(obj: Obj, producer: Producer) -> str:
    """Which API an object is read through (each Event object keeps one form).

    The scheduler and kube-proxy write through events.k8s.io/v1; most of their
    events are read that way too, except in default/kube-system, where they are
    read through core/v1 (eventTime set, first/lastTimestamp null, no count).
    Everything about monitoring/ and team-b-prod's ml-serving and orders-db is
    read through events.k8s.io/v1 (deprecated* fields carry the core/v1 data).
    """
    if producer.native:
        return "v1" if obj.namespace in (None, "default", "kube-system") and obj.kind == "Pod" else "events.k8s.io/v1"
    if obj.namespace == "monitoring" or obj.name.startswith(("ml-serving", "orders-db")):
        return "events.k8s.io/v1"
    return "v1"


# ------------------------------------------------------------------ render

def render(v: Version) -> dict:
    ev, s, p = v.ev, v.state, v.ev.producer
    meta = {
        "name": ev.name,
        "namespace": ev.namespace,
        "uid": ev.uid,
        "resourceVersion": str(v.rv),
        "creationTimestamp": iso(ev.created),
        "managedFields": [managed_fields(ev, s, v.write)],
    }
    ref = ev.regarding.ref(ev.field_path)
    series = {"count": s["series_count"], "lastObservedTime": micro(s["series_last"])} if s["series_count"] else None
    source = {} if p.native else ({"component": p.component, "host": p.host} if p.host else {"component": p.component})
    first = iso(s["first"]) if s["first"] is not None else None
    last = iso(s["last"]) if s["last"] is not None else None
    event_time = micro(s["event_time"]) if s["event_time"] is not None else None

    if ev.form == "v1":
        d: dict = {"kind": "Event", "apiVersion": "v1", "metadata": meta, "involvedObject": ref, "reason": ev.reason}
        if s["message"]:
            d["message"] = s["message"]
        d["source"] = source
        d["firstTimestamp"] = first
        d["lastTimestamp"] = last
        if s["count"]:
            d["count"] = s["count"]
        d["type"] = ev.type
        d["eventTime"] = event_time
        if series:
            d["series"] = series
        if ev.action:
            d["action"] = ev.action
        d["reportingComponent"] = p.component
        d["reportingInstance"] = p.host
        return d

    d = {"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": meta, "eventTime": event_time}
    if series:
        d["series"] = series
    d["reportingController"] = p.component
    if p.host:
        d["reportingInstance"] = p.host
    if ev.action:
        d["action"] = ev.action
    d["reason"] = ev.reason
    d["regarding"] = ref
    if s["message"]:
        d["note"] = s["message"]
    d["type"] = ev.type
    d["deprecatedSource"] = source
    d["deprecatedFirstTimestamp"] = first
    d["deprecatedLastTimestamp"] = last
    if s["count"]:
        d["deprecatedCount"] = s["count"]
    return d


def managed_fields(ev: Event, s: dict, write: float) -> dict:
    p = ev.producer
    if p.native:
        f = {"f:action": {}, "f:eventTime": {}, "f:reason": {}, "f:regarding": {},
             "f:reportingController": {}, "f:reportingInstance": {}, "f:type": {}}
        if s["message"]:
            f["f:note"] = {}
        if s["series_count"]:
            f["f:series"] = {".": {}, "f:count": {}, "f:lastObservedTime": {}}
        api = "events.k8s.io/v1"
    else:
        f = {"f:count": {}, "f:firstTimestamp": {}, "f:involvedObject": {}, "f:lastTimestamp": {},
             "f:message": {}, "f:reason": {}, "f:reportingComponent": {},
             "f:source": {"f:component": {}, "f:host": {}} if p.host else {"f:component": {}}, "f:type": {}}
        if p.host:
            f["f:reportingInstance"] = {}
        api = "v1"
    return {"manager": p.manager, "operation": "Update", "apiVersion": api, "time": iso(write),
            "fieldsType": "FieldsV1", "fieldsV1": dict(sorted(f.items()))}


def go_json(d: dict) -> str:
    """encoding/json as the API server uses it: compact, UTF-8, HTML-escaped."""
    s = json.dumps(d, separators=(",", ":"), ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def effective_time(d: dict) -> float | None:
    """The time filter's notion of "when": last timestamp, else the newest of
    eventTime and series.lastObservedTime."""
    last = d.get("lastTimestamp") or d.get("deprecatedLastTimestamp")
    if last:
        return parse(last)
    times = [parse(x) for x in (d.get("eventTime"), (d.get("series") or {}).get("lastObservedTime")) if x]
    return max(times) if times else None


def parse(s: str) -> float:
    return (datetime.fromisoformat(s.replace("Z", "+00:00")) - BASE).total_seconds()


# --------------------------------------------------------------- workloads

sim = Sim()


def pod(ns: str, name: str, node: str, t: float) -> Obj:
    return Obj("Pod", name, ns, "v1", new_uid(), t, node, f"{NODE_SUBNET[node]}.{rng.randint(5, 250)}")


def rs_pod_name(rs: str) -> str:
    return f"{rs}-{safe(5)}"


def schedule(p: Obj, t: float) -> Event:
    return sim.event(t, p, "Scheduled", f"Successfully assigned {p.namespace}/{p.name} to {NODES[p.node]}",
                     SCHEDULER, action="Binding")


def start_containers(p: Obj, t: float, containers: list[tuple], form: str | None = None) -> float:
    """kubelet starting containers one after another.

    Each container is (name, image, pull_seconds or None when already present, image_size, init).
    Returns the time after the last Started event.
    """
    k = kubelet(p.node)
    for name, image, pull, size, init in containers:
        fp = f"spec.{'initContainers' if init else 'containers'}{{{name}}}"
        if pull is None:
            sim.event(t, p, "Pulled", f'Container image "{image}" already present on machine and can be accessed by the pod',
                      k, field_path=fp, form=form)
        else:
            sim.event(t, p, "Pulling", f'Pulling image "{image}"', k, field_path=fp, form=form)
            t += pull
            sim.event(t, p, "Pulled",
                      f'Successfully pulled image "{image}" in {go_duration(pull)} ({go_duration(pull + rng.uniform(0, 0.4))} including waiting). Image size: {size} bytes.',
                      k, field_path=fp, form=form)
        t += rng.uniform(0.1, 0.6)
        sim.event(t, p, "Created", f"Created container: {name}", k, field_path=fp, form=form)
        t += rng.uniform(0.1, 0.5)
        sim.event(t, p, "Started", f"Started container {name}", k, field_path=fp, form=form)
        if init:
            t += rng.uniform(1.5, 6.0)  # init containers run to completion before the next starts
    return t


def deployment(ns: str, name: str, t: float) -> Obj:
    return Obj("Deployment", name, ns, "apps/v1", new_uid(), t)


def replicaset(ns: str, dep: str, t: float) -> Obj:
    return Obj("ReplicaSet", f"{dep}-{safe(rng.choice((9, 10)))}", ns, "apps/v1", new_uid(), t)


def scale_rs(dep: Obj, rs: Obj, frm: int, to: int, t: float) -> None:
    verb = "up" if to > frm else "down"
    sim.event(t, dep, "ScalingReplicaSet", f"Scaled {verb} replica set {rs.name} from {frm} to {to}", ctrl("deployment-controller"))


def rs_create(rs: Obj, node: str, t: float) -> Obj:
    p = pod(rs.namespace, rs_pod_name(rs.name), node, t)
    sim.event(t, rs, "SuccessfulCreate", f"Created pod: {p.name}", ctrl("replicaset-controller"))
    return p


def rs_delete(rs: Obj, p: Obj, container: str, t: float) -> None:
    sim.event(t, rs, "SuccessfulDelete", f"Deleted pod: {p.name}", ctrl("replicaset-controller"))
    sim.event(t + rng.uniform(0.2, 0.9), p, "Killing", f"Stopping container {container}", kubelet(p.node),
              field_path=f"spec.containers{{{container}}}")


def rolling_update(ns: str, dep_name: str, t: float, replicas: int, container: str, image: str,
                   size: int, nodes: list[str], step: float = 14.0) -> tuple[Obj, Obj, list[Obj]]:
    dep = deployment(ns, dep_name, t)
    old_rs, new_rs = replicaset(ns, dep_name, t - 86400 * 6), replicaset(ns, dep_name, t)
    old_pods = [Obj("Pod", rs_pod_name(old_rs.name), ns, "v1", new_uid(), t - 86400 * 6, nodes[i % len(nodes)])
                for i in range(replicas)]
    new_pods = []
    for i in range(replicas):
        scale_rs(dep, new_rs, i, i + 1, t)
        p = rs_create(new_rs, nodes[(i + 1) % len(nodes)], t + 0.05)
        schedule(p, t + rng.uniform(0.08, 0.2))
        pull = rng.uniform(1.2, 3.5) if i < 2 else None  # later pods land on nodes that have the image
        t = start_containers(p, t + rng.uniform(1.0, 1.8), [(container, image, pull, size, False)])
        t += rng.uniform(5, 9)  # readiness before the old pod goes
        scale_rs(dep, old_rs, replicas - i, replicas - i - 1, t)
        rs_delete(old_rs, old_pods[i], container, t + 0.1)
        new_pods.append(p)
        t += step
    return dep, new_rs, new_pods


# ------------------------------------------------------------------ secrets

def fake_jwt() -> str:
    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    header = b64(json.dumps({"alg": "RS256", "kid": safe(16)}, separators=(",", ":")).encode())
    payload = b64(json.dumps({"aud": ["checkout"], "exp": 1795165200, "iat": 1795161600,
                              "iss": "https://auth.acme-shop.internal",
                              "sub": "system:serviceaccount:checkout:checkout-web"}, separators=(",", ":")).encode())
    return f"{header}.{payload}.{b64(rng.randbytes(256))}"


def fake_password() -> str:
    return "hunter2-" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(12))


def fake_aws_keys() -> tuple[str, str]:
    """Shaped like real keys, marked EXAMPLE like AWS's documentation keys."""
    key_id = "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(9)) + "EXAMPLE"
    secret = base64.b64encode(rng.randbytes(23)).decode()[:30] + "EXAMPLEKEY"
    return key_id, secret


# ------------------------------------------------------------------- story

def story() -> dict[str, list[Event]]:
    """Writes every watched Event version; returns the objects relists repeat."""
    relist_picks: dict[str, list[Event]] = {"r1": [], "r2": []}

    # 09:00 control-plane style background: cronjob default/cleanup-tmp every 10 minutes
    cron = Obj("CronJob", "cleanup-tmp", "default", "batch/v1", new_uid(), -86400 * 40)
    history: list[str] = [cron_job_name("cleanup-tmp", hms(m)) for m in (-30, -20, -10)]
    for i, m in enumerate((0, 10, 20, 30, 40)):
        t = hms(m, rng.uniform(0.3, 1.5))
        job_name = cron_job_name("cleanup-tmp", hms(m))
        job = Obj("Job", job_name, "default", "batch/v1", new_uid(), t)
        sim.event(t, cron, "SuccessfulCreate", f"Created job {job_name}", ctrl("cronjob-controller"))
        p = pod("default", f"{job_name}-{safe(5)}", ["n1", "n2", "n3"][i % 3] if m != 20 else "n1", t)
        sim.event(t + 0.3, job, "SuccessfulCreate", f"Created pod: {p.name}", ctrl("job-controller"))
        schedule(p, t + 0.4)
        end = start_containers(p, t + rng.uniform(1.2, 2.0), [("cleanup", "busybox:1.36.1", None, 0, False)])
        end += rng.uniform(6, 12)
        sim.event(end, job, "Completed", "Job completed", ctrl("job-controller"))
        sim.event(end + rng.uniform(1, 4), cron, "SawCompletedJob", f"Saw completed job: {job_name}, condition: Complete",
                  ctrl("cronjob-controller"))
        sim.event(end + rng.uniform(4, 5), cron, "SuccessfulDelete", f"Deleted job {history.pop(0)}", ctrl("cronjob-controller"))
        history.append(job_name)

    # 09:00:20 default/hello-web rolls out nginx 1.27.4 over three replicas
    rolling_update("default", "hello-web", hms(0, 20), 3, "web", "docker.io/library/nginx:1.27.4", 72_188_133,
                   ["n1", "n2", "n3"])

    # 09:00:50 monitoring/prometheus-k8s scales to 2: a new PVC (WaitForFirstConsumer, EBS CSI)
    sts = Obj("StatefulSet", "prometheus-k8s", "monitoring", "apps/v1", new_uid(), 50.0)
    t = hms(0, 50.4)
    pvc = Obj("PersistentVolumeClaim", "prometheus-k8s-db-prometheus-k8s-1", "monitoring", "v1", new_uid(), t)
    prom = pod("monitoring", "prometheus-k8s-1", "n2", t)
    sim.event(t, sts, "SuccessfulCreate", f"create Claim {pvc.name} Pod prometheus-k8s-1 in StatefulSet prometheus-k8s success",
              ctrl("statefulset-controller"))
    sim.event(t + 0.1, sts, "SuccessfulCreate", "create Pod prometheus-k8s-1 in StatefulSet prometheus-k8s successful",
              ctrl("statefulset-controller"))
    sim.event(t + 0.2, pvc, "WaitForFirstConsumer", "waiting for first consumer to be created before binding",
              ctrl("persistentvolume-controller"))
    ext = sim.event(t + 1.1, pvc, "ExternalProvisioning",
                    "Waiting for a volume to be created either by the external provisioner 'ebs.csi.aws.com' or manually by the "
                    "system administrator. If volume creation is delayed, please verify that the provisioner is running and "
                    "correctly registered.", ctrl("persistentvolume-controller"), tag="count-bump")
    csi = Producer(f"ebs.csi.aws.com_ebs-csi-controller-6d8f9c7b54-{safe(5)}_{new_uid()}", "", "csi-provisioner")
    sim.event(t + 1.3, pvc, "Provisioning", f'External provisioner is provisioning volume for claim "monitoring/{pvc.name}"', csi)
    sim.bump(ext, t + 3.0)
    sim.bump(ext, t + 5.0)
    pv = f"pvc-{pvc.uid}"
    sim.event(t + 6.2, pvc, "ProvisioningSucceeded", f"Successfully provisioned volume {pv}", csi)
    schedule(prom, t + 6.9)
    sim.event(t + 9.4, prom, "SuccessfulAttachVolume", f'AttachVolume.Attach succeeded for volume "{pv}"',
              ctrl("attachdetach-controller"))
    start_containers(prom, t + 13.0, [
        ("init-config-reloader", "quay.io/prometheus-operator/prometheus-config-reloader:v0.86.1", 2.41, 14_911_220, True),
        ("prometheus", "quay.io/prometheus/prometheus:v3.7.3", 6.82, 137_226_413, False),
        ("config-reloader", "quay.io/prometheus-operator/prometheus-config-reloader:v0.86.1", None, 0, False),
    ])

    # 09:01:40 kube-system/metrics-server restarts, briefly unready
    t = hms(1, 40)
    ms_rs = Obj("ReplicaSet", "metrics-server-867d48dc9c", "kube-system", "apps/v1", new_uid(), -86400 * 12)
    ms_old = Obj("Pod", rs_pod_name(ms_rs.name), "kube-system", "v1", new_uid(), -86400 * 12, "n1")
    sim.event(t, ms_old, "Killing", "Stopping container metrics-server", kubelet("n1"), field_path="spec.containers{metrics-server}")
    ms = rs_create(ms_rs, "n3", t + 0.6)
    schedule(ms, t + 0.7)
    t = start_containers(ms, t + 1.9, [("metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.8.0", 3.18, 20_582_732, False)])
    unready = sim.event(t + 11, ms, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 500",
                        kubelet("n3"), type="Warning", field_path="spec.containers{metrics-server}", tag="count-bump")
    sim.bump(unready, t + 21)

    # 09:03 payments/payments-api 1.14.3 crash-loops; kubelet reports BackOff 1 -> 7
    t = hms(3, 0.6)
    pay_dep = deployment("payments", "payments-api", t)
    pay_rs = replicaset("payments", "payments-api", t)
    image = f"{ECR}/payments/api:1.14.3"
    scale_rs(pay_dep, pay_rs, 0, 1, t)
    crash = rs_create(pay_rs, "n1", t + 0.04)
    schedule(crash, t + 0.1)
    fp = "spec.containers{api}"
    k = kubelet("n1")
    sim.event(t + 1.2, crash, "Pulling", f'Pulling image "{image}"', k, field_path=fp)
    sim.event(t + 4.9, crash, "Pulled", f'Successfully pulled image "{image}" in 3.671s (3.671s including waiting). Image size: 48213776 bytes.',
              k, field_path=fp)
    pulled = None  # restarts re-use the cached image: a second "Pulled" Event object, with its own count
    created = sim.event(t + 5.4, crash, "Created", "Created container: api", k, field_path=fp, tag="count-bump")
    started = sim.event(t + 5.7, crash, "Started", "Started container api", k, field_path=fp, tag="count-bump")
    backoff_msg = f"Back-off restarting failed container api in pod {crash.name}_payments({crash.uid})"
    backoff = None
    restarts = [31.0, 69.0, 128.0]  # kubelet back-off 10s, 20s, 40s after each crash
    backoff_times = [21.0, 45.5, 58.8, 83.2, 97.9, 121.7, 136.4]
    for i, bt in enumerate(backoff_times):
        for rt in [r for r in restarts if (backoff_times[i - 1] if i else 0) < r <= bt]:
            if pulled is None:
                pulled = sim.event(t + rt, crash, "Pulled",
                                   f'Container image "{image}" already present on machine and can be accessed by the pod',
                                   k, field_path=fp, tag="count-bump")
            else:
                sim.bump(pulled, t + rt)
            sim.bump(created, t + rt + 0.2)
            sim.bump(started, t + rt + 0.5)
        if backoff is None:
            backoff = sim.event(t + bt, crash, "BackOff", backoff_msg, k, type="Warning", field_path=fp, tag="bump-backoff-1-to-7")
        else:
            sim.bump(backoff, t + bt)
    # an add-on mirrors container waiting/terminated reasons into Events (kubelet never uses these reasons)
    reporter = Producer("container-state-reporter", "", "container-state-reporter")
    clbo = sim.event(t + 50.2, crash, "CrashLoopBackOff",
                     f"Container api in pod payments/{crash.name} is waiting in CrashLoopBackOff: back-off 20s restarting failed container (restarts: 2, last exit code: 1)",
                     reporter, type="Warning", field_path=fp, tag="addon-reason")
    sim.bump(clbo, t + 101.3)
    # 09:07:10 the rollout is undone
    t = hms(7, 10)
    scale_rs(pay_dep, pay_rs, 1, 0, t)
    rs_delete(pay_rs, crash, "api", t + 0.2)

    # 09:05 team-a-dev/report-api 2.7.0-rc1 was never pushed: the image-pull cycle
    t = hms(5, 3.3)
    ra_dep = deployment("team-a-dev", "report-api", t)
    ra_rs = replicaset("team-a-dev", "report-api", t)
    scale_rs(ra_dep, ra_rs, 0, 1, t)
    bad = rs_create(ra_rs, "n2", t + 0.05)
    schedule(bad, t + 0.1)
    image = "registry.acme-shop.internal/team-a/report-api:2.7.0-rc1"
    fp, k = "spec.containers{report-api}", kubelet("n2")
    pull_err = (f'Failed to pull image "{image}": failed to pull and unpack image "{image}": failed to resolve reference '
                f'"{image}": {image}: not found')
    chain: dict[str, Event] = {}

    def say(key: str, tt: float, reason: str, msg: str, typ: str) -> None:
        if key in chain:
            sim.bump(chain[key], tt)
        else:
            chain[key] = sim.event(tt, bad, reason, msg, k, type=typ, field_path=fp, tag="count-bump")

    for cycle in (1.0, 13.1, 35.4, 76.2, 157.9):
        say("pulling", t + cycle, "Pulling", f'Pulling image "{image}"', "Normal")
        say("failed", t + cycle + 0.6, "Failed", pull_err, "Warning")
        say("errimagepull", t + cycle + 0.6, "Failed", "Error: ErrImagePull", "Warning")
        say("backoff", t + cycle + 1.5, "BackOff", f'Back-off pulling image "{image}"', "Normal")
        say("ipbo", t + cycle + 1.5, "Failed", "Error: ImagePullBackOff", "Warning")
    say("backoff", t + 318.4, "BackOff", f'Back-off pulling image "{image}"', "Normal")
    say("ipbo", t + 318.4, "Failed", "Error: ImagePullBackOff", "Warning")
    chain["backoff"].tag = "bump-normal-backoff-to-6"

    # 09:06 team-b-prod/feature-backfill asks for 48Gi: FailedScheduling as an events.k8s.io series
    t = hms(6, 11.7)
    job = Obj("Job", "feature-backfill", "team-b-prod", "batch/v1", new_uid(), t)
    fb = pod("team-b-prod", f"feature-backfill-{safe(5)}", "n1", t)
    sim.event(t, job, "SuccessfulCreate", f"Created pod: {fb.name}", ctrl("job-controller"))
    nomem = ("0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: "
             "3 No preemption victims found for incoming pod.")
    fs = sim.event(t + 0.21, fb, "FailedScheduling", nomem, SCHEDULER, type="Warning", action="Scheduling",
                   tag="series-refresh-old-eventTime")
    sim.series(fs, t + 29.4, 2, t + 29.5)
    ca = Producer("cluster-autoscaler", "", "cluster-autoscaler")
    nts = sim.event(t + 9.8, fb, "NotTriggerScaleUp",
                    "pod didn't trigger scale-up: 2 Insufficient memory, 1 max node group size reached", ca, tag="count-bump")
    sim.bump(nts, t + 71.0)
    sim.bump(nts, t + 133.6)
    relist_picks["r2"].append(fs)
    fs_refresh = (hms(31, 47.2), 19)  # written below, after everything else in between

    # 09:08 team-a-dev/report-worker mounts a ConfigMap that does not exist yet
    t = hms(8, 4.8)
    rw_rs = Obj("ReplicaSet", "report-worker-5b7d9f4c6d", "team-a-dev", "apps/v1", new_uid(), t - 30)
    rw = rs_create(rw_rs, "n3", t)
    schedule(rw, t + 0.1)
    mount = sim.event(t + 0.9, rw, "FailedMount", 'MountVolume.SetUp failed for volume "config" : configmap "app-config" not found',
                      kubelet("n3"), type="Warning", tag="count-bump")
    for d in (1, 3, 7, 15, 31, 63, 127):  # the volume manager's exponential retry
        sim.bump(mount, t + 0.9 + d)
    sim.event(t + 121.3, rw, "FailedMount",
              "Unable to attach or mount volumes: unmounted volumes=[config], unattached volumes=[], failed to process volumes=[]: "
              "timed out waiting for the condition", kubelet("n3"), type="Warning")
    # 09:12:40 the ConfigMap is created; the pod starts
    t = start_containers(rw, hms(12, 41.5), [("report-worker", "registry.acme-shop.internal/team-a/report-worker:2.6.4", 2.2, 88_412_077, False)])

    # 09:09 checkout/checkout-web: HPA scales 4 -> 6; one new pod never gets ready (Unhealthy 1 -> 7)
    t = hms(9, 2.2)
    hpa = Obj("HorizontalPodAutoscaler", "checkout-web", "checkout", "autoscaling/v2", new_uid(), t)
    co_dep = deployment("checkout", "checkout-web", t)
    co_rs = Obj("ReplicaSet", "checkout-web-5f6d8c7b9", "checkout", "apps/v1", new_uid(), -86400 * 2)
    sim.event(t, hpa, "SuccessfulRescale", "New size: 6; reason: cpu resource utilization (percentage of request) above target",
              ctrl("horizontal-pod-autoscaler"))
    scale_rs(co_dep, co_rs, 4, 6, t + 0.1)
    co_image = "ghcr.io/acme-shop/checkout-web:3.8.1"
    co_pods = []
    for node in ("n2", "n3"):
        p = rs_create(co_rs, node, t + 0.2)
        schedule(p, t + 0.3)
        start_containers(p, t + 1.4 + len(co_pods) * 0.5, [
            ("web", co_image, 4.1 if node == "n3" else None, 61_552_904, False),
            ("auth-proxy", "quay.io/oauth2-proxy/oauth2-proxy:v7.12.0", None, 0, False),
        ])
        co_pods.append(p)
    sick = co_pods[0]
    fp = "spec.containers{web}"
    ready = None
    for i in range(7):  # periodSeconds: 10
        tt = t + 7.5 + i * 10 + rng.uniform(-0.2, 0.2)
        if ready is None:
            ready = sim.event(tt, sick, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503",
                              kubelet("n2"), type="Warning", field_path=fp, tag="bump-unhealthy-1-to-7")
        else:
            sim.bump(ready, tt)

    # the other new pod fails its liveness probe and is restarted
    other = co_pods[1]
    live = None
    for i in range(3):
        tt = t + 42.3 + i * 15
        if live is None:
            live = sim.event(tt, other, "Unhealthy",
                             f'Liveness probe failed: Get "http://{other.ip}:8080/healthz": context deadline exceeded '
                             "(Client.Timeout exceeded while awaiting headers)",
                             kubelet("n3"), type="Warning", field_path=fp, tag="count-bump")
        else:
            sim.bump(live, tt)
    sim.event(t + 72.6, other, "Killing", "Container web failed liveness probe, will be restarted", kubelet("n3"), field_path=fp)

    # 09:10 Kyverno background scan flags a Secret (events about Secrets: the secret guard drops them)
    kyverno = Producer("kyverno-scan", "", "kyverno")
    legacy = Obj("Secret", "legacy-db-password", "team-a-dev", "v1", new_uid(), -86400 * 200)
    sim.event(hms(10, 31.0), legacy, "PolicyViolation",
              "policy require-secret-owner/check-owner fail: validation error: Secrets must carry the label 'owner'. "
              "rule check-owner failed at path /metadata/labels/owner/", kyverno, type="Warning", tag="secret-object")

    # 09:12 control plane upgrade: new leaders
    t = hms(12, 3.1)
    for lease, comp, mgr in (("kube-controller-manager", "kube-controller-manager", "kube-controller-manager"),
                             ("kube-scheduler", "default-scheduler", "kube-scheduler"),
                             ("cloud-controller-manager", "cloud-controller-manager", "cloud-controller-manager")):
        obj = Obj("Lease", lease, "kube-system", "coordination.k8s.io/v1", new_uid(), t)
        sim.event(t, obj, "LeaderElection", f"{CONTROL_PLANE_HOST}_{new_uid()} became leader", Producer(comp, "", mgr))
        t += rng.uniform(2, 9)

    # 09:15 payments/ledger-reconcile: init container command written as one string, DSN with a password
    t = hms(15, 0.4)
    lr = Obj("CronJob", "ledger-reconcile", "payments", "batch/v1", new_uid(), -86400 * 90)
    job_name = cron_job_name("ledger-reconcile", hms(15))
    job = Obj("Job", job_name, "payments", "batch/v1", new_uid(), t)
    sim.event(t, lr, "SuccessfulCreate", f"Created job {job_name}", ctrl("cronjob-controller"))
    lp = pod("payments", f"{job_name}-{safe(5)}", "n2", t)
    sim.event(t + 0.2, job, "SuccessfulCreate", f"Created pod: {lp.name}", ctrl("job-controller"))
    schedule(lp, t + 0.3)
    migrate = f"{ECR}/payments/ledger-migrate:4.2.0"
    sim.event(t + 1.4, lp, "Pulled", f'Container image "{migrate}" already present on machine and can be accessed by the pod',
              kubelet("n2"), field_path="spec.initContainers{migrate}")
    sim.event(t + 1.6, lp, "Created", "Created container: migrate", kubelet("n2"), field_path="spec.initContainers{migrate}")
    argv0 = (f"/app/migrate --db=host=ledger-db.payments.svc port=5432 user=ledger password={fake_password()} "
             "dbname=ledger sslmode=require up")
    leak = sim.event(t + 1.9, lp, "Failed",
                     "Error: failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create "
                     f'failed: unable to start container process: exec: "{argv0}": stat {argv0}: no such file or directory: unknown',
                     kubelet("n2"), type="Warning", field_path="spec.initContainers{migrate}", tag="leak-password")
    lbo = sim.event(t + 3.0, lp, "BackOff", f"Back-off restarting failed container migrate in pod {lp.name}_payments({lp.uid})",
                    kubelet("n2"), type="Warning", field_path="spec.initContainers{migrate}", tag="count-bump")
    sim.bump(leak, t + 16.2)
    sim.bump(lbo, t + 17.4)
    sim.bump(lbo, t + 29.9)
    sim.bump(leak, t + 43.1)
    sim.bump(lbo, t + 44.0)
    relist_picks["r1"].append(leak)
    ble = sim.event(t + 95.2, job, "BackoffLimitExceeded", "Job has reached the specified backoff limit", ctrl("job-controller"),
                    type="Warning")
    relist_picks["r1"].append(ble)

    # 09:16 checkout/checkout-web auth-proxy: an exec readiness probe runs `curl -sv` with a bearer token
    t = hms(16, 4.0)
    target = co_pods[1]
    token = fake_jwt()
    probe_out = ("Readiness probe failed: *   Trying 127.0.0.1:4180...\n* Connected to 127.0.0.1 (127.0.0.1) port 4180\n"
                 "> GET /oauth2/auth HTTP/1.1\n> Host: 127.0.0.1:4180\n> User-Agent: curl/8.14.1\n> Accept: */*\n"
                 f"> Authorization: Bearer {token}\n> \n< HTTP/1.1 401 Unauthorized\n< Content-Length: 13\n<\n"
                 "* Connection #0 to host 127.0.0.1 left intact\ncurl: (22) The requested URL returned error: 401\n")
    jwt_ev = sim.event(t, target, "Unhealthy", probe_out, kubelet("n3"), type="Warning",
                       field_path="spec.containers{auth-proxy}", tag="leak-bearer")
    sim.bump(jwt_ev, t + 30.1)
    sim.bump(jwt_ev, t + 60.0)
    relist_picks["r1"].append(jwt_ev)

    # 09:19 node n3 stops reporting; 09:23 it comes back after a reboot
    n3 = Obj("Node", NODES["n3"], None, "v1", new_uid(), None)
    kn3 = Obj("Node", NODES["n3"], None, None, NODES["n3"])  # kubelet's own reference: uid = node name, no apiVersion
    t = hms(19, 12.0)
    sim.event(t, n3, "NodeNotReady", f"Node {NODES['n3']} status is now: NodeNotReady", ctrl("node-controller"))
    for p in (ms, rw, co_pods[1]):
        sim.event(t + rng.uniform(0.2, 0.9), p, "NodeNotReady", "Node is not ready", ctrl("node-controller"), type="Warning")
    # HPA asks for one more checkout pod; it cannot fit while n3 is unreachable (core/v1 view of a scheduler series)
    sim.event(t + 38.0, hpa, "SuccessfulRescale", "New size: 7; reason: cpu resource utilization (percentage of request) above target",
              ctrl("horizontal-pod-autoscaler"))
    scale_rs(co_dep, co_rs, 6, 7, t + 38.1)
    pend = rs_create(co_rs, "n3", t + 38.2)
    unreach = ("0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 Insufficient cpu. "
               "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.")
    fs2 = sim.event(t + 38.3, pend, "FailedScheduling", unreach, SCHEDULER, type="Warning", action="Scheduling",
                    form="v1", tag="v1-series-no-count")
    sim.series(fs2, t + 51.9, 2, t + 52.0)
    # a pod that was terminating on n3 cannot be torn down while its CNI is gone
    dying = Obj("Pod", rs_pod_name("orders-api-7c4f9b8d6f"), "team-b-prod", "v1", new_uid(), t - 20, "n3")
    t = hms(23, 38.5)  # kubelet is back
    kn = kubelet("n3")
    sim.event(t, kn3, "Starting", "Starting kubelet.", kn)
    sim.event(t + 0.3, kn3, "NodeAllocatableEnforced", "Updated Node Allocatable limit across pods", kn)
    for cond in ("NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID"):
        sim.event(t + 0.5, kn3, cond, f"Node {NODES['n3']} status is now: {cond}", kn)
    boot = new_uid()
    sim.event(t + 0.7, kn3, "Rebooted", f"Node {NODES['n3']} has been rebooted, boot id: {boot}", kn, type="Warning")
    sim.event(t + 1.2, kn3, "Starting", "", Producer("kube-proxy", f"kube-proxy-{NODES['n3']}", "kube-proxy", native=True),
              action="StartKubeProxy", tag="empty-note")
    aws_node = Obj("Pod", f"aws-node-{safe(5)}", "kube-system", "v1", new_uid(), -86400 * 20, "n3", f"{NODE_SUBNET['n3']}.208")
    fp = "spec.containers{aws-node}"
    sim.event(t + 2.0, aws_node, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.", kn)
    start_containers(aws_node, t + 2.6, [
        ("aws-vpc-cni-init", "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon-k8s-cni-init:v1.20.4-eksbuild.1", None, 0, True),
        ("aws-node", "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon-k8s-cni:v1.20.4-eksbuild.1", None, 0, False),
    ])
    # the scheduler places the pending checkout pod once n3 is Ready; CNI is not up yet
    sim.event(t + 4.9, kn3, "NodeReady", f"Node {NODES['n3']} status is now: NodeReady", kn)
    schedule(pend, t + 5.3)
    nnr = sim.event(t + 5.9, pend, "NetworkNotReady",
                    "network is not ready: container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
                    "message:Network plugin returns error: cni plugin not initialized", kn, type="Warning", tag="count-bump")
    sim.bump(nnr, t + 7.9)
    sim.bump(nnr, t + 9.9)
    sim.event(t + 9.4, dying, "FailedKillPod",
              f'error killing pod: failed to "KillPodSandbox" for "{dying.uid}" with KillPodSandboxError: "rpc error: code = Unknown '
              f'desc = failed to destroy network for sandbox \\"{rng.randbytes(32).hex()}\\": plugin type=\\"aws-cni\\" '
              'name=\\"aws-cni\\" failed (delete): del cmd: error received from DelNetwork gRPC call: rpc error: code = Unavailable '
              'desc = connection error: desc = \\"transport: Error while dialing: dial tcp 127.0.0.1:50051: connect: connection refused\\""',
              kn, type="Warning")
    cni = sim.event(t + 11.8, pend, "FailedCreatePodSandBox",
                    f'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox '
                    f'"{rng.randbytes(32).hex()}": plugin type="aws-cni" name="aws-cni" failed (add): add cmd: Error received from '
                    'AddNetwork gRPC call: rpc error: code = Unavailable desc = connection error: desc = "transport: Error while '
                    'dialing: dial tcp 127.0.0.1:50051: connect: connection refused"', kn, type="Warning", tag="count-bump")
    sim.bump(cni, t + 14.2)
    probe_ts = micro(t + 15.6)[:-4] + "Z"
    sim.event(t + 15.6, aws_node, "Unhealthy",
              f'Readiness probe failed: {{"level":"info","ts":"{probe_ts}","caller":"/root/sdk/go1.24.9/src/runtime/proc.go:283",'
              '"msg":"timeout: failed to connect service \\":50051\\" within 5s"}\n', kn, type="Warning", field_path=fp)
    t = start_containers(pend, t + 24.0, [("web", co_image, None, 0, False),
                                          ("auth-proxy", "quay.io/oauth2-proxy/oauth2-proxy:v7.12.0", None, 0, False)])

    # 09:21 / 09:26 / 09:31 payments secret rotation keeps failing (an event about a Secret, count 1 -> 3)
    rotator = Producer("secret-rotator", "", "secret-rotator")
    stripe = Obj("Secret", "stripe-api-key", "payments", "v1", new_uid(), -86400 * 60)
    rot = sim.event(hms(21, 0.8), stripe, "Failed",
                    "Failed to rotate secret payments/stripe-api-key: Error making API request. URL: PUT "
                    "https://vault.acme-shop.internal:8200/v1/secret/data/payments/stripe-api-key Code: 403. Errors: * permission denied",
                    rotator, type="Warning", tag="secret-object")
    sim.bump(rot, hms(26, 0.9))
    sim.bump(rot, hms(31, 1.1))
    relist_picks["r2"].append(rot)
    creds = Obj("Secret", "ledger-db-credentials", "payments", "v1", new_uid(), hms(21, 2))
    sim.event(hms(21, 2.6), creds, "Rotated", "Rotated secret payments/ledger-db-credentials to version 14", rotator,
              tag="secret-object")

    # 09:26 node n2 under memory pressure; team-b-prod/report-builder is OOM-killed
    t = hms(26, 14.2)
    k2 = kubelet("n2")
    kn2 = Obj("Node", NODES["n2"], None, None, NODES["n2"])
    rb_rs = Obj("ReplicaSet", "report-builder-84c6d9f7b5", "team-b-prod", "apps/v1", new_uid(), -86400 * 4)
    rb = Obj("Pod", rs_pod_name(rb_rs.name), "team-b-prod", "v1", new_uid(), -3600 * 3, "n2")
    pid = rng.randint(2_000_000, 4_000_000)
    npd = Producer("kernel-monitor", NODES["n2"], "node-problem-detector")
    sim.event(t, kn2, "OOMKilling",
              f"Memory cgroup out of memory: Killed process {pid} (java) total-vm:7341924kB, anon-rss:2087460kB, "
              "file-rss:31208kB, shmem-rss:0kB, UID:1001 pgtables:4668kB oom_score_adj:936", npd, type="Warning")
    oom = sim.event(t + 1.6, rb, "OOMKilled",
                    f"Container report-builder in pod team-b-prod/{rb.name} was OOMKilled (exit code 137, memory limit 2Gi, restarts: 1)",
                    reporter, type="Warning", field_path="spec.containers{report-builder}", tag="addon-reason")
    fp = "spec.containers{report-builder}"
    rb_img = "registry.acme-shop.internal/team-b/report-builder:5.0.2"
    p2 = sim.event(t + 2.2, rb, "Pulled", f'Container image "{rb_img}" already present on machine and can be accessed by the pod',
                   k2, field_path=fp, tag="count-bump")
    c2 = sim.event(t + 2.5, rb, "Created", "Created container: report-builder", k2, field_path=fp, tag="count-bump")
    s2 = sim.event(t + 2.8, rb, "Started", "Started container report-builder", k2, field_path=fp, tag="count-bump")
    sim.event(t + 47.0, kn2, "SystemOOM", f"System OOM encountered, victim process: java, pid: {pid + 4711}", k2, type="Warning")
    sim.bump(oom, t + 49.3)
    rbo = sim.event(t + 50.0, rb, "BackOff", f"Back-off restarting failed container report-builder in pod {rb.name}_team-b-prod({rb.uid})",
                    k2, type="Warning", field_path=fp, tag="count-bump")
    sim.bump(rbo, t + 63.8)
    sim.bump(p2, t + 61.0)  # restarted after the 10s back-off
    sim.bump(c2, t + 61.2)
    sim.bump(s2, t + 61.4)
    sim.event(t + 71.4, kn2, "EvictionThresholdMet", "Attempting to reclaim memory", k2, type="Warning")
    sim.event(t + 71.9, kn2, "NodeHasInsufficientMemory", f"Node {NODES['n2']} status is now: NodeHasInsufficientMemory", k2)
    lg_rs = Obj("ReplicaSet", "load-generator-6bd5c8f47", "team-a-dev", "apps/v1", new_uid(), -86400)
    lg = Obj("Pod", rs_pod_name(lg_rs.name), "team-a-dev", "v1", new_uid(), -3600, "n2")
    sim.event(t + 72.6, lg, "Evicted",
              f"The node was low on resource: memory. Threshold quantity: 100Mi, available: {rng.randint(80_000, 99_000)}Ki. "
              f"Container locust was using {rng.randint(1_500_000, 1_900_000)}Ki, request is 0, has larger consumption of memory.",
              k2, type="Warning")
    sim.event(t + 72.8, lg, "Killing", "Stopping container locust", k2, field_path="spec.containers{locust}")
    new_lg = rs_create(lg_rs, "n1", t + 73.5)
    schedule(new_lg, t + 73.6)
    start_containers(new_lg, t + 75.0, [("locust", "docker.io/locustio/locust:2.42.2", 5.36, 224_618_004, False)])
    sim.event(t + 132.0, kn2, "NodeHasSufficientMemory", f"Node {NODES['n2']} status is now: NodeHasSufficientMemory", k2)

    # 09:30 team-b-prod/orders-db-1 moves to n1 while its EBS volume is still attached to n3
    t = hms(30, 5.5)
    odb_sts = Obj("StatefulSet", "orders-db", "team-b-prod", "apps/v1", new_uid(), -86400 * 50)
    odb = pod("team-b-prod", "orders-db-1", "n1", t)
    sim.event(t, odb_sts, "SuccessfulCreate", "create Pod orders-db-1 in StatefulSet orders-db successful", ctrl("statefulset-controller"))
    schedule(odb, t + 0.2)
    vol = f"pvc-{new_uid()}"
    ma = sim.event(t + 0.5, odb, "FailedAttachVolume",
                   f'Multi-Attach error for volume "{vol}" Volume is already exclusively attached to one node and can\'t be attached to another',
                   ctrl("attachdetach-controller"), type="Warning", tag="count-bump")
    sim.bump(ma, t + 61.9)
    sim.bump(ma, t + 183.2)
    relist_picks["r2"].append(ma)
    sim.event(t + 121.6, odb, "FailedMount",
              "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data], failed to process volumes=[]: "
              "timed out waiting for the condition", kubelet("n1"), type="Warning")
    sim.event(t + 371.4, odb, "SuccessfulAttachVolume", f'AttachVolume.Attach succeeded for volume "{vol}"', ctrl("attachdetach-controller"))
    start_containers(odb, t + 375.2, [("postgres", "docker.io/library/postgres:17.7", 8.93, 158_210_461, False)])

    # 09:31 team-b-prod/ml-serving: an init container command with AWS keys inlined (read through events.k8s.io/v1)
    t = hms(31, 20.3)
    mls_rs = Obj("ReplicaSet", "ml-serving-7f8d6c5b9", "team-b-prod", "apps/v1", new_uid(), t - 2)
    mls = rs_create(mls_rs, "n1", t)
    schedule(mls, t + 0.2)
    key_id, secret = fake_aws_keys()
    fp = "spec.initContainers{fetch-artifacts}"
    sim.event(t + 1.8, mls, "Pulled", 'Container image "docker.io/amazon/aws-cli:2.31.2" already present on machine and can be accessed by the pod',
              kubelet("n1"), field_path=fp)
    sim.event(t + 2.1, mls, "Created", "Created container: fetch-artifacts", kubelet("n1"), field_path=fp)
    argv0 = f"AWS_ACCESS_KEY_ID={key_id} AWS_SECRET_ACCESS_KEY={secret} aws s3 sync s3://acme-ml-models/prod/ /models"
    aws = sim.event(t + 2.3, mls, "Failed",
                    "Error: failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: "
                    f'unable to start container process: exec: "{argv0}": executable file not found in $PATH: unknown',
                    kubelet("n1"), type="Warning", field_path=fp, tag="leak-aws-key")
    mbo = sim.event(t + 3.4, mls, "BackOff", f"Back-off restarting failed container fetch-artifacts in pod {mls.name}_team-b-prod({mls.uid})",
                    kubelet("n1"), type="Warning", field_path=fp, tag="count-bump")
    sim.bump(aws, t + 17.0)
    sim.bump(mbo, t + 18.1)
    relist_picks["r2"].append(aws)

    # 09:31:47 the scheduler's 30-minute series refresh of feature-backfill's FailedScheduling
    sim.series(fs, fs_refresh[0] - 6.1, fs_refresh[1], fs_refresh[0])

    # 09:32 Kyverno flags another Secret
    sim.event(hms(32, 15.4), Obj("Secret", "grafana-admin", "monitoring", "v1", new_uid(), -86400 * 300), "PolicyViolation",
              "policy require-secret-owner/check-owner fail: validation error: Secrets must carry the label 'owner'. "
              "rule check-owner failed at path /metadata/labels/owner/", kyverno, type="Warning", tag="secret-object", form="v1")

    # 09:35 team-a-dev/report-api 2.7.0 (the tag that exists) replaces the broken rollout
    t = hms(35, 8.0)
    rolling = replicaset("team-a-dev", "report-api", t)
    scale_rs(ra_dep, rolling, 0, 1, t)
    good = rs_create(rolling, "n2", t + 0.05)
    schedule(good, t + 0.15)
    end = start_containers(good, t + 1.3, [("report-api", "registry.acme-shop.internal/team-a/report-api:2.7.0", 3.05, 91_004_318, False)])
    scale_rs(ra_dep, ra_rs, 1, 0, end + 6)
    sim.event(end + 6.2, ra_rs, "SuccessfulDelete", f"Deleted pod: {bad.name}", ctrl("replicaset-controller"))

    # 09:37 checkout load drops: HPA 7 -> 4
    t = hms(37, 31.0)
    sim.event(t, hpa, "SuccessfulRescale", "New size: 4; reason: All metrics below target", ctrl("horizontal-pod-autoscaler"))
    scale_rs(co_dep, co_rs, 7, 4, t + 0.1)
    for p in (pend, co_pods[1], sick):
        sim.event(t + 0.2, co_rs, "SuccessfulDelete", f"Deleted pod: {p.name}", ctrl("replicaset-controller"))
        for c in ("web", "auth-proxy"):
            sim.event(t + rng.uniform(0.4, 1.2), p, "Killing", f"Stopping container {c}", kubelet(p.node), field_path=f"spec.containers{{{c}}}")

    # 09:38-09:40 monitoring: alertmanager restarts after a config change
    t = hms(38, 12.0)
    am_sts = Obj("StatefulSet", "alertmanager-main", "monitoring", "apps/v1", new_uid(), -86400 * 30)
    for i, node in enumerate(("n3", "n1")):
        old = Obj("Pod", f"alertmanager-main-{i}", "monitoring", "v1", new_uid(), -86400 * 3, node)
        sim.event(t, old, "Killing", "Stopping container alertmanager", kubelet(node), field_path="spec.containers{alertmanager}")
        newp = pod("monitoring", f"alertmanager-main-{i}", node, t + 3.1)
        sim.event(t + 3.1, am_sts, "SuccessfulCreate", f"create Pod alertmanager-main-{i} in StatefulSet alertmanager-main successful",
                  ctrl("statefulset-controller"))
        schedule(newp, t + 3.3)
        t = start_containers(newp, t + 4.6, [
            ("alertmanager", "quay.io/prometheus/alertmanager:v0.29.0", None, 0, False),
            ("config-reloader", "quay.io/prometheus-operator/prometheus-config-reloader:v0.86.1", None, 0, False),
        ]) + 31.0
    return relist_picks


# ------------------------------------------------------------------ relists

def stale_events() -> tuple[list[Event], list[Event]]:
    """Events from before the watch began. A relist (after 410 Gone) returns them
    because they are still stored (event TTL 1h); they were never seen before."""
    out1, out2 = [], []

    def old(t: float, obj: Obj, reason: str, msg: str, prod: Producer, count: int, first: float, bucket: list, **kw) -> None:
        ev = sim.event(first, obj, reason, msg, prod, tag="stale", **kw)
        sim.versions.pop()  # not watched: only its current state appears, in the relist
        if not prod.native:
            ev.count, ev.last = count, t
        bucket.append(ev)

    nx = Obj("Pod", f"nightly-export-{cron_job_name('x', hms(-40))[2:]}-{safe(5)}", "team-b-prod", "v1", new_uid(), hms(-40), "n3")
    old(hms(-18, -5.2), nx, "BackOff", f"Back-off restarting failed container export in pod {nx.name}_team-b-prod({nx.uid})",
        kubelet("n3"), 9, hms(-37, -50.0), out1, type="Warning", field_path="spec.containers{export}")
    hw = Obj("Pod", "hello-web-7f9c8d6b5-xq4lm", "default", "v1", new_uid(), hms(-25), "n1")
    old(hms(-25, 3.0), hw, "Killing", "Stopping container web", kubelet("n1"), 1, hms(-25, 3.0), out1,
        field_path="spec.containers{web}")
    dns = Obj("Pod", "coredns-5c9f8b7d46-n8w2k", "kube-system", "v1", new_uid(), hms(-60), "n2")
    old(hms(-15, -30.0), dns, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", kubelet("n2"), 3,
        hms(-16, -50.0), out1, type="Warning", field_path="spec.containers{coredns}")

    lrj = Obj("Job", cron_job_name("ledger-reconcile", hms(-15)), "payments", "batch/v1", new_uid(), hms(-15))
    old(hms(-14, -40.0), lrj, "Completed", "Job completed", ctrl("job-controller"), 1, hms(-14, -40.0), out2)
    rwo = Obj("Pod", "report-worker-5b7d9f4c6d-t6r8v", "team-a-dev", "v1", new_uid(), hms(-9), "n1")
    old(hms(-8, -50.0), rwo, "FailedMount", 'MountVolume.SetUp failed for volume "config" : configmap "app-config" not found',
        kubelet("n1"), 4, hms(-8, -65.0), out2, type="Warning", form="events.k8s.io/v1")
    bj = Obj("Pod", f"feature-backfill-{safe(5)}", "team-b-prod", "v1", new_uid(), hms(-3), "n1")
    old(hms(-3, 31.4), bj, "FailedScheduling", "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod.", SCHEDULER, 0, hms(-3, 31.4), out2, type="Warning", action="Scheduling")
    old(hms(-10, 33.0), Obj("Node", NODES["n1"], None, None, NODES["n1"]), "FreeDiskSpaceFailed",
        "Failed to garbage collect required amount of images. Attempted to free 1288490188 bytes, but only found 0 bytes eligible to free.",
        kubelet("n1"), 2, hms(-15, 33.0), out2, type="Warning")
    return out1, out2


# -------------------------------------------------------------------- main

def build() -> tuple[list[str], list[dict]]:
    picks = story()
    stale1, stale2 = stale_events()
    # One recorder per process sends its events one after another: a producer's
    # writes keep the order in which it observed them (writes of different
    # producers interleave, so lastTimestamp is only mostly increasing).
    by_producer: dict[Producer, list[Version]] = defaultdict(list)
    for v in sim.versions:
        by_producer[v.ev.producer].append(v)
    for vs in by_producer.values():
        vs.sort(key=lambda v: (observed(v), v.seq))
        for a, b in zip(vs, vs[1:]):
            b.write = max(b.write, a.write + 0.003)
    sim.versions.sort(key=lambda v: (v.write, v.seq))
    prev = 0
    for v in sim.versions:
        v.rv = prev = max(prev + 1, rv_at(v.write) + rng.randint(0, 6))

    lines: list[str] = []
    meta: list[dict] = []  # per line: event, kind of line
    latest: dict[str, int] = {}  # uid -> index in lines of its latest version
    relists = [(hms(18, 21.0), picks["r1"], stale1), (hms(33, 40.0), picks["r2"], stale2)]
    for v in sim.versions:
        while relists and v.write > relists[0][0]:
            at_t, dups, stale = relists.pop(0)
            burst = []
            for ev in dups:
                i = latest[ev.uid]
                burst.append((ev, lines[i], "duplicate"))
            for ev in stale:
                ev_last = ev.last if ev.last is not None else ev.event_time
                ver = Version(ev_last, 0, ev, {k: getattr(ev, k) for k in ("count", "first", "last", "event_time", "series_count",
                                                                           "series_last", "message")}, rv_at(ev_last))
                burst.append((ev, go_json(render(ver)), "stale"))
            # a list returns items in storage-key order: namespace, then name
            for ev, line, what in sorted(burst, key=lambda b: (b[0].namespace, b[0].name)):
                lines.append(line)
                meta.append({"ev": ev, "what": what, "relist": at_t})
        lines.append(go_json(render(v)))
        meta.append({"ev": v.ev, "what": "watch", "count": v.state["count"] or v.state["series_count"]})
        latest[v.ev.uid] = len(lines) - 1
    return lines, meta


def observed(v: Version) -> float:
    s = v.state
    return s["series_last"] or (s["last"] if s["last"] is not None else s["event_time"])


def verify(lines: list[str], meta: list[dict]) -> None:
    """The sample's promises, checked so a change to the story cannot break them silently."""
    newest = -math.inf
    seen: dict[tuple, int] = {}
    for i, (line, m) in enumerate(zip(lines, meta)):
        d = json.loads(line)
        t = effective_time(d)
        assert t is not None, f"line {i + 1} has no time"
        age = newest - t
        key = (d["metadata"]["uid"], d["metadata"]["resourceVersion"])
        if m["what"] == "stale":
            assert 30 * 60 <= age <= 60 * 60, f"line {i + 1}: stale event only {age:.0f}s old"
        else:
            assert age <= MAX_AGE, f"line {i + 1}: unintended stale event ({age:.0f}s behind)"
        if m["what"] == "duplicate":
            assert key in seen and lines[seen[key]] == line, f"line {i + 1}: duplicate of nothing"
        else:
            assert key not in seen, f"line {i + 1}: unintended duplicate"
            seen[key] = i
        newest = max(newest, t)
    assert 300 <= len(lines) <= 500, len(lines)


def statistics(lines: list[str], meta: list[dict]) -> str:
    docs = [json.loads(line) for line in lines]
    out = []

    def table(title: str, counter: Counter) -> None:
        out.append(f"{title}:")
        for k, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"  {n:4d}  {k}")

    out.append(f"lines: {len(lines)}   distinct Event objects (uids): {len({d['metadata']['uid'] for d in docs})}   "
               f"watch versions: {sum(m['what'] == 'watch' for m in meta)}   relist duplicates: "
               f"{sum(m['what'] == 'duplicate' for m in meta)}   stale: {sum(m['what'] == 'stale' for m in meta)}")
    first = min(effective_time(d) for d in docs)
    last = max(effective_time(d) for d in docs)
    out.append(f"time span: {micro(first)[:19]}Z .. {micro(last)[:19]}Z")
    table("by apiVersion (lines)", Counter(d["apiVersion"] for d in docs))
    table("by type (lines)", Counter(d["type"] for d in docs))
    uniq = {d["metadata"]["uid"]: d for d in docs}
    table("by type (distinct Event objects)", Counter(d["type"] for d in uniq.values()))
    table("by reason (lines)", Counter(f"{d['type']:<7} {d['reason']}" for d in docs))
    table("by namespace (lines)", Counter(d["metadata"]["namespace"] for d in docs))
    table("by involved kind (lines)", Counter((d.get("involvedObject") or d.get("regarding"))["kind"] for d in docs))
    return "\n".join(out)


def interesting(lines: list[str], meta: list[dict]) -> str:
    rows: dict[str, list] = defaultdict(list)
    info: dict[str, tuple] = {}
    for i, (line, m) in enumerate(zip(lines, meta)):
        ev = m["ev"]
        d = json.loads(line)
        count = d.get("count") or d.get("deprecatedCount") or (d.get("series") or {}).get("count") or "-"
        rows[ev.uid].append(f"{i + 1}{'' if m['what'] == 'watch' else '(' + m['what'][0:3] + ')'}:{count}")
        info[ev.uid] = (ev.tag, d["apiVersion"], d["metadata"]["namespace"], ev.regarding.kind, ev.regarding.name, ev.reason, d["type"])
    out = ["uid  tag  apiVersion  namespace  kind/name  type reason  lines (line:count; dup=relist duplicate, sta=stale)"]
    multi = {u for u, r in rows.items() if len(r) > 1}
    for uid in sorted(rows, key=lambda u: int(rows[u][0].split(":")[0].split("(")[0])):
        tag, api, ns, kind, name, reason, typ = info[uid]
        if tag or uid in multi:
            label = tag or ("count-bump" if any(":" in r and "(" not in r for r in rows[uid][1:]) else "relist-duplicate")
            out.append(f"{uid}  {label}  {api}  {ns}  {kind}/{name}  {typ} {reason}  {' '.join(rows[uid])}")
    return "\n".join(out)


# ------------------------------------------- what the design's default chain predicts

# config/default.yaml at the time of writing: Warning only, these reasons, max age 5m,
# secret guard, the design document's severity table.
DEFAULT_REASONS = {
    "OOMKilled", "CrashLoopBackOff", "BackOff", "Failed", "Unhealthy", "FailedPostStartHook", "FailedPreStopHook",
    "FailedKillPod", "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InspectFailed", "FailedScheduling",
    "Evicted", "Preempted", "EvictionThresholdMet", "FailedMount", "FailedAttachVolume", "FailedMapVolume",
    "VolumeResizeFailed", "ProvisioningFailed", "FailedCreatePodSandBox", "FailedCreatePodContainer", "FailedSync",
    "FailedCreate", "FailedDelete", "NodeNotReady", "NetworkNotReady", "SystemOOM", "Rebooted", "ContainerGCFailed",
    "ImageGCFailed", "FreeDiskSpaceFailed",
}
SEVERITY = {"OOMKilled": "critical", "CrashLoopBackOff": "critical", "ImagePullBackOff": "high", "ErrImagePull": "high",
            "FailedScheduling": "high", "Unhealthy": "medium", "BackOff": "medium", "FailedMount": "medium"}
SECRET_MARKERS = ("Bearer ey", "AKIA", "password=")


def expected_default_run(lines: list[str]) -> str:
    """A model of the design's rules (not the implementation): occurrence core
    (fingerprint TTL 5m, count bumps, escalation at 5, relist duplicates), then
    type filter, reason filter, time filter (max age 5m against the replay
    clock, which follows the newest event seen), secret guard, severity table."""
    ttl, now = 300, -math.inf
    cache: dict[tuple, dict] = {}
    fate: Counter = Counter()
    published: list[tuple] = []
    for n, line in enumerate(lines, 1):
        d = json.loads(line)
        ref = d.get("involvedObject") or d["regarding"]
        count = (d.get("series") or {}).get("count") or d.get("count") or d.get("deprecatedCount") or 1
        t = effective_time(d)
        now = max(now, math.floor(t))
        fp = (d["metadata"]["namespace"], ref["kind"], ref["name"], d["reason"])
        uid = d["metadata"]["uid"]
        st = cache.get(fp)
        if st is not None and now - st["seen"] > ttl:
            st = None
        repeated = None
        if st is None:
            cache[fp] = {"objs": {uid: count}, "occ": count, "esc": count >= ESCALATION, "seen": now}
            new, repeated = True, (count if count >= ESCALATION else None)
        else:
            st["seen"] = now
            if uid in st["objs"]:
                new = count > st["objs"][uid]
                if new:
                    st["occ"] += count - st["objs"][uid]
                    st["objs"][uid] = count
                    st["esc"] |= st["occ"] >= ESCALATION
                    repeated = st["occ"] if st["occ"] >= ESCALATION else None
            else:
                st["objs"][uid] = count
                st["occ"] += count
                new = st["occ"] >= ESCALATION and not st["esc"]
                if new:
                    st["esc"], repeated = True, st["occ"]
        if not new:
            fate["deduplicated"] += 1
        elif d["type"] != "Warning":
            fate["dropped: Normal"] += 1
        elif d["reason"] not in DEFAULT_REASONS:
            fate["dropped: reason not listed"] += 1
        elif now - t > 300:
            fate["dropped: older than 5m"] += 1
        elif ref["kind"] == "Secret":
            fate["dropped: about a Secret"] += 1
        else:
            msg = d.get("message") or d.get("note") or ""
            sev = SEVERITY.get(d["reason"], "low")
            if d["reason"] == "BackOff" and "restarting failed container" in msg:
                sev = "critical"
            if repeated and sev not in ("critical",):
                sev = "high"
            fate["published"] += 1
            published.append((n, d["reason"], sev, repeated, any(m in msg for m in SECRET_MARKERS)))
    out = ["expected from the design's default chain (a model; the implementation decides):"]
    out += [f"  {k:<28}{v:4d}" for k, v in sorted(fate.items(), key=lambda kv: -kv[1])]
    out.append("  published by reason: " + ", ".join(f"{r} {c}" for r, c in Counter(p[1] for p in published).most_common()))
    out.append("  published by severity: " + ", ".join(f"{s} {c}" for s, c in Counter(p[2] for p in published).most_common()))
    out.append("  escalated (line:reason:repeated_count): " + " ".join(f"{p[0]}:{p[1]}:{p[3]}" for p in published if p[3]))
    out.append("  published with a secret to redact (line:reason): " + " ".join(f"{p[0]}:{p[1]}" for p in published if p[4]))
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if events.jsonl differs from what this script writes")
    ap.add_argument("--interesting", action="store_true", help="also list the uids a golden test cares about")
    ap.add_argument("--expect", action="store_true", help="also model what the design's default chain should publish")
    args = ap.parse_args()
    lines, meta = build()
    verify(lines, meta)
    text = "\n".join(lines) + "\n"
    if args.check:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
    else:
        OUT.write_text(text, encoding="utf-8")
    print(statistics(lines, meta))
    if args.interesting:
        print()
        print(interesting(lines, meta))
    if args.expect:
        print()
        print(expected_default_run(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
