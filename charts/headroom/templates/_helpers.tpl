{{/* Names, labels and shared snippets. */}}

{{- define "headroom.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "headroom.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "headroom.agent.fullname" -}}{{ include "headroom.fullname" . }}-agent{{- end -}}
{{- define "headroom.picker.fullname" -}}{{ include "headroom.fullname" . }}-picker{{- end -}}
{{- define "headroom.picker.ingestService" -}}{{ include "headroom.fullname" . }}-picker-ingest{{- end -}}

{{- define "headroom.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "headroom.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: headroom
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels; call with (dict "ctx" $ "component" "agent"). */}}
{{- define "headroom.selectorLabels" -}}
app.kubernetes.io/name: {{ include "headroom.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "headroom.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create -}}
{{- default (include "headroom.agent.fullname" .) .Values.agent.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.agent.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "headroom.picker.serviceAccountName" -}}
{{- if .Values.picker.serviceAccount.create -}}
{{- default (include "headroom.picker.fullname" .) .Values.picker.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.picker.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "headroom.image" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* The InferencePool the picker routes for. */}}
{{- define "headroom.pool.name" -}}
{{- if .Values.picker.pool.name -}}
{{- .Values.picker.pool.name -}}
{{- else if .Values.inferencePoolExample.enabled -}}
{{- .Values.inferencePoolExample.name -}}
{{- end -}}
{{- end -}}

{{- define "headroom.pool.namespace" -}}
{{- default .Release.Namespace .Values.picker.pool.namespace -}}
{{- end -}}

{{- define "headroom.picker.tlsSecret" -}}
{{- if eq .Values.picker.tls.mode "secret" -}}
{{- .Values.picker.tls.secretName -}}
{{- else -}}
{{- include "headroom.picker.fullname" . }}-tls
{{- end -}}
{{- end -}}

{{/* Scrape job names the alert rules select on. */}}
{{- define "headroom.agent.job" -}}{{ include "headroom.agent.fullname" . }}{{- end -}}
{{- define "headroom.picker.job" -}}{{ include "headroom.picker.fullname" . }}{{- end -}}

{{/* Hardening shared by both containers. */}}
{{- define "headroom.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
{{- end -}}

{{/* The agent's scrape labels: a fixed job, and the node (for `up`). */}}
{{- define "headroom.agent.relabelings" -}}
- targetLabel: job
  replacement: {{ include "headroom.agent.job" . }}
- sourceLabels: [__meta_kubernetes_pod_node_name]
  targetLabel: node
{{- end -}}
