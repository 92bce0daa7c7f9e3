{{/* Names, labels, the image and the pod security every pod shares. */}}

{{- define "stowage.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-stowage", or the release name when it already holds the chart name. */}}
{{- define "stowage.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "stowage.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "stowage.labels" -}}
helm.sh/chart: {{ include "stowage.chart" . }}
app.kubernetes.io/part-of: stowage
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of a component: (dict "root" $ "component" "gateway").
The gateway's name label, stowage-gateway, is what the operator's default
gateway selector (and so every tenant worker's NetworkPolicy) matches.
*/}}
{{- define "stowage.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "stowage-%s" .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "stowage.componentLabels" -}}
{{ include "stowage.labels" .root }}
{{ include "stowage.selectorLabels" . }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The gateway pods' selector as "k=v,k=v", for STOWAGE_OPERATOR_GATEWAY_SELECTOR. */}}
{{- define "stowage.gatewaySelector" -}}
{{- printf "app.kubernetes.io/name=stowage-gateway,app.kubernetes.io/instance=%s" .Release.Name }}
{{- end }}

{{/*
Who may scrape the metrics ports, as a JSON list of NetworkPolicyPeers: the
release's Prometheus (networkPolicy.prometheus) and networkPolicy.metricsFrom.
The chart's policies and, through STOWAGE_OPERATOR_METRICS_FROM, every tenant
worker's policy admit exactly these.
*/}}
{{- define "stowage.metricsPeers" -}}
{{- $np := .Values.networkPolicy }}
{{- $peers := list }}
{{- with $np.prometheus }}
{{- if .enabled }}
{{- $namespaces := .namespaceSelector | default (dict "matchLabels" (dict "kubernetes.io/metadata.name" (required "networkPolicy.prometheus.namespace (or namespaceSelector) names Prometheus's namespace" .namespace))) }}
{{- $pods := .podSelector | default (dict "matchLabels" (dict "app.kubernetes.io/name" "prometheus")) }}
{{- $peers = append $peers (dict "namespaceSelector" $namespaces "podSelector" $pods) }}
{{- end }}
{{- end }}
{{- $all := concat $peers $np.metricsFrom }}
{{- if $all }}{{ toJson $all }}{{ else }}[]{{ end }}
{{- end }}

{{/* The one image: repository:tag (tag defaults to appVersion), or repository@digest. */}}
{{- define "stowage.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{- define "stowage.workerImage" -}}
{{- default (include "stowage.image" .) .Values.operator.workerImage }}
{{- end }}

{{- define "stowage.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (printf "%s-operator" (include "stowage.fullname" .)) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "stowage.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (printf "%s-gateway" (include "stowage.fullname" .)) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- required "gateway.serviceAccount.name is required when gateway.serviceAccount.create is false" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the master key of file links: the given one or the chart's. */}}
{{- define "stowage.gateway.filesKeysSecret" -}}
{{- default (printf "%s-files-keys" (include "stowage.fullname" .)) .Values.gateway.files.existingSecret }}
{{- end }}

{{/* The host of gateway.publicUrl (host[:port]). */}}
{{- define "stowage.gateway.publicHost" -}}
{{- (urlParse .Values.gateway.publicUrl).host }}
{{- end }}

{{/* Redis the gateway uses: "" (in-process limits), the given URL, or the chart's. */}}
{{- define "stowage.redis.url" -}}
{{- if .Values.redis.url }}
{{- .Values.redis.url }}
{{- else if .Values.redis.deploy }}
{{- printf "redis://%s-redis:6379/0" (include "stowage.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Redis port the gateway's NetworkPolicy lets it reach. */}}
{{- define "stowage.redis.port" -}}
{{- $host := (urlParse (include "stowage.redis.url" .)).host }}
{{- if regexMatch ":[0-9]+$" $host }}
{{- regexFind "[0-9]+$" $host }}
{{- else }}6379{{- end }}
{{- end }}

{{/*
Refuse configurations that would run but misbehave. Included by every
workload template, so `helm template` and `helm install` both fail early.
*/}}
{{- define "stowage.validate" -}}
{{- $g := .Values.gateway }}
{{- if $g.enabled }}
{{- $most := ternary $g.autoscaling.maxReplicas $g.replicas $g.autoscaling.enabled | int }}
{{- if and (gt $most 1) (not (include "stowage.redis.url" .)) }}
{{- fail (printf "gateway: %d replicas need Redis to share rate limits between them (each replica would otherwise enforce its own limit, multiplying every tenant's rate by the replica count): set redis.url to an existing Redis, or redis.deploy=true for a small one run by the chart, or gateway.replicas=1" $most) }}
{{- end }}
{{- if ge ($g.preStopSleepSeconds | int) ($g.terminationGracePeriodSeconds | int) }}
{{- if $g.preStopSleepSeconds }}
{{- fail (printf "gateway.preStopSleepSeconds (%v) must be shorter than gateway.terminationGracePeriodSeconds (%v): the pod needs time to finish its requests after the sleep" $g.preStopSleepSeconds $g.terminationGracePeriodSeconds) }}
{{- end }}
{{- end }}
{{- if and $g.autoscaling.enabled (gt ($g.autoscaling.minReplicas | int) ($g.autoscaling.maxReplicas | int)) }}
{{- fail "gateway.autoscaling.minReplicas must not exceed gateway.autoscaling.maxReplicas" }}
{{- end }}
{{- if or (urlParse $g.publicUrl).path (urlParse $g.publicUrl).query }}
{{- if ne (urlParse $g.publicUrl).path "/" }}
{{- fail (printf "gateway.publicUrl must be a base URL without a path (tenants are served under <publicUrl>/t/<tenant>/mcp), got %q" $g.publicUrl) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.redis.existingSecret (not .Values.redis.url) }}
{{- fail "redis.existingSecret holds the password of an existing Redis: set redis.url too" }}
{{- end }}
{{- end }}

{{/* Pod-level securityContext fit for the restricted Pod Security Standard. */}}
{{- define "stowage.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 10001 }}
runAsGroup: {{ .uid | default 10001 }}
fsGroup: {{ .uid | default 10001 }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level securityContext fit for the restricted Pod Security Standard. */}}
{{- define "stowage.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* ServiceMonitor/PodMonitor/PrometheusRule/dashboard labels. */}}
{{- define "stowage.monitoringLabels" -}}
{{ include "stowage.labels" . }}
{{- with .Values.monitoring.additionalLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* One NetworkPolicy egress rule: (dict "to" peers "ports" ports "protocols" list); no peers: any address. */}}
{{/*
The OTEL_* variables of a component that traces (`tracing.*`); nothing while tracing is off.
*/}}
{{- define "stowage.tracingEnv" -}}
{{- with .Values.tracing }}
{{- if .endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ .sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .samplerArg | quote }}
{{- with .resourceAttributes }}
{{- $pairs := list }}
{{- range $key, $value := . }}
{{- $pairs = append $pairs (printf "%s=%s" $key (toString $value)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $pairs | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- define "stowage.np.egress" -}}
- {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    {{- range $port := .ports }}
    {{- range $.protocols }}
    - protocol: {{ . }}
      port: {{ $port }}
    {{- end }}
    {{- end }}
{{- end }}

{{/*
The operator's rules on namespaced objects in the namespaces it serves: the
ClusterRole's in scope=cluster, each watched namespace's Role in scope=namespaced.
*/}}
{{- define "stowage.operator.namespacedRules" -}}
# Secrets: the Regions' admin credentials are read; each tenant's database
# credentials are read, written and deleted with the Tenant. Never listed or
# watched: that would read every Secret in reach.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, patch, delete]
# The worker's policy ConfigMap, Service, Deployment, NetworkPolicy and
# PodDisruptionBudget are applied server-side (an apply that creates needs
# `create`) and deleted with the Tenant. They are listed and watched by the
# operator's label, so that a resync re-applies only what changed or is gone.
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [list, watch, create, patch, delete]
# The ConfigMaps a Tenant's components take their HTML from
# (spec.components[].htmlFrom), read by name to check them.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
# Backups: each tenant's backup and drill CronJobs are applied server-side,
# watched like the worker's objects, and deleted with the Tenant (or when
# its backups are switched off).
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [list, watch, create, patch, delete]
# What those runs ended with, for the Tenant's status.backup and the
# stowage_backup_* metrics: the tenant's finished Jobs (their conditions) and
# their pods (the JSON result in the container's termination message),
# listed and watched by the backup task's label; and the workers' pods (their
# restarts and last exits, the stowage_tenant_worker_* metrics) by the workers'
# label. Read-only, never written.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# kopf posts Events about handler failures on the Tenant.
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create]
{{- end }}

{{/* operator.rbac.scope=namespaced needs named namespaces: a Role cannot follow a glob. */}}
{{- define "stowage.operator.validateRbac" -}}
{{- $op := .Values.operator }}
{{- if not $op.watchNamespaces }}
{{- fail "operator.rbac.scope=namespaced needs operator.watchNamespaces: the namespaces whose Tenants the operator serves, one Role in each (with none it would watch every namespace, which takes a ClusterRole: use scope=cluster)" }}
{{- end }}
{{- range $op.watchNamespaces }}
{{- if regexMatch "[*?\\[!]" . }}
{{- fail (printf "operator.rbac.scope=namespaced needs operator.watchNamespaces to name namespaces, got the pattern %q: a Role is made in each named namespace, and a pattern names none (use scope=cluster for patterns)" .) }}
{{- end }}
{{- end }}
{{- end }}
