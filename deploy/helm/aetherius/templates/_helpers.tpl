{{- define "aetherius.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "aetherius.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "aetherius.labels" -}}
{{ include "aetherius.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The checkpoint ConfigMap's and each Lease's names. */}}
{{- define "aetherius.checkpoint" -}}
{{- printf "%s-checkpoint" (include "aetherius.fullname" .) -}}
{{- end -}}

{{- define "aetherius.lease" -}}
{{- printf "%s-%s" (include "aetherius.fullname" .root) .id | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The native config the chart builds from its values. */}}
{{- define "aetherius.config" -}}
{{- $pipeline := .Files.Get "files/pipeline.yaml" | fromYaml -}}
{{- $clusters := list -}}
{{- $ids := list .Values.cluster.id -}}
{{- range .Values.extraClusters }}{{ $ids = append $ids .id }}{{ end -}}
{{- range $i, $id := $ids -}}
{{- $cluster := dict "id" $id "checkpoint_configmap" (dict "namespace" $.Release.Namespace "name" (include "aetherius.checkpoint" $)) -}}
{{- if eq $i 0 -}}
{{- $_ := set $cluster "in_cluster" true -}}
{{- with $.Values.cluster.namespaces }}{{ $_ := set $cluster "namespaces" . }}{{ end -}}
{{- with $.Values.cluster.resyncPeriod }}{{ $_ := set $cluster "resync_period" . }}{{ end -}}
{{- else -}}
{{- $_ := set $cluster "kubeconfig" (printf "/etc/aetherius/clusters/%s/kubeconfig" $id) -}}
{{- end -}}
{{- if $.Values.leaderElection.enabled -}}
{{- $_ := set $cluster "leader_election" (dict "namespace" $.Release.Namespace "name" (include "aetherius.lease" (dict "root" $ "id" $id)) "duration" $.Values.leaderElection.duration "retry_period" $.Values.leaderElection.retryPeriod) -}}
{{- end -}}
{{- $clusters = append $clusters $cluster -}}
{{- end -}}
{{- $config := dict "plugins" $pipeline.plugins "chains" $pipeline.chains "sinks" .Values.sinks "clusters" $clusters "plugin_runtime" (dict "plugin_dir" "/etc/aetherius/plugins" "cache_dir" "/var/cache/aetherius") "server" (dict "health_listen" "0.0.0.0:8080" "metrics_listen" "0.0.0.0:9090" "shutdown_grace" "25s") -}}
{{- toYaml (mergeOverwrite $config (deepCopy .Values.config)) -}}
{{- end -}}
