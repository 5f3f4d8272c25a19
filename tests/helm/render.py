"""Renders or lints the aetherius chart with Helm's own engine (helm-python-sdk
bundles Helm v4 as a library; no helm binary is packaged for Debian).

  render.py render CHART RELEASE NAMESPACE [VALUES.yaml ...]   manifests on stdout
  render.py lint CHART [VALUES.yaml ...]                       findings; exit 1 on any
  render.py manifests CHART OUTDIR                             deploy/'s manifests

`manifests` writes the chart's default render (release and namespace
`aetherius`; the Prometheus Operator objects enabled) as one file per
template into OUTDIR, without Helm's bookkeeping labels: the plain manifests
`kubectl apply -k deploy/` uses (scripts/render-manifests.sh).

Values files are merged in order over the chart's values and validated
against its values.schema.json, as `helm install -f` does.
"""
import sys

import helm_python as helm


def values(files):
    merged = {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            merged = deep_merge(merged, helm.values_from_yaml(f.read()))
    return merged


def deep_merge(base, over):
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# Labels that say Helm manages an object: not true of `kubectl apply -k`.
HELM_ONLY = ("app.kubernetes.io/managed-by: Helm", "helm.sh/chart: ")

HEADER = """\
# Generated from the Helm chart deploy/helm/aetherius with its default values
# by scripts/render-manifests.sh: edit the chart, then run the script
# (tests/helm.rs fails while this file differs from the chart's render).
"""


def write_manifests(chart_dir, out_dir):
    import os

    chart = helm.Chart.load(chart_dir)
    monitoring = {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}
    rendered = chart.render(monitoring, name="aetherius", namespace="aetherius", is_install=True)
    for name in sorted(rendered):
        text = rendered[name].strip()
        if name.endswith("NOTES.txt") or not text:
            continue
        lines = [
            line
            for line in text.splitlines()
            if not line.strip().startswith(HELM_ONLY) and not line.startswith("# Source: ")
        ]
        path = os.path.join(out_dir, os.path.basename(name))
        with open(path, "w", encoding="utf-8") as f:
            f.write(HEADER + "\n".join(lines) + "\n")
    return 0


def main(argv):
    command = argv[1]
    if command == "render":
        chart_dir, release, namespace, files = argv[2], argv[3], argv[4], argv[5:]
        chart = helm.Chart.load(chart_dir)
        user = values(files)
        try:
            chart.validate_schema(chart.merge_values(user))
        except Exception as error:  # the message names the key
            print(f"values do not match values.schema.json: {error}", file=sys.stderr)
            return 2
        manifests = chart.render(user, name=release, namespace=namespace, is_install=True)
        for name in sorted(manifests):
            text = manifests[name].strip()
            if name.endswith("NOTES.txt") or not text:
                continue
            print(f"---\n# Source: {name}\n{text}")
        return 0
    if command == "manifests":
        return write_manifests(argv[2], argv[3])
    if command == "lint":
        chart_dir, files = argv[2], argv[3:]
        report = helm.lint(chart_dir, values(files), strict=True)
        problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
        for m in problems:
            print(f"{m.get('path')}: {m.get('error')}", file=sys.stderr)
        for e in report.get("errors") or []:
            print(e, file=sys.stderr)
        return 1 if problems or report.get("errors") else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
