{{/* Chart name, 63 characters at most. */}}
{{- define "pg-tikv.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name prefix. Kept to 46 characters so that "<fullname>-tenant-bootstrap"
fits the 63 characters of a label value (the Job controller labels its pods
with the Job name).
*/}}
{{- define "pg-tikv.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 46 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 46 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 46 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pg-tikv.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pg-tikv.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pg-tikv.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pg-tikv.labels" -}}
helm.sh/chart: {{ include "pg-tikv.chart" . }}
{{ include "pg-tikv.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "pg-tikv.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pg-tikv.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "pg-tikv.image" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{/* Names of the PD and TiKV Services (the chart's own PD). */}}
{{- define "pg-tikv.pdName" -}}{{ include "pg-tikv.fullname" . }}-pd{{- end -}}
{{- define "pg-tikv.pdPeerName" -}}{{ include "pg-tikv.fullname" . }}-pd-peer{{- end -}}
{{- define "pg-tikv.tikvPeerName" -}}{{ include "pg-tikv.fullname" . }}-tikv-peer{{- end -}}
{{- define "pg-tikv.bootstrapName" -}}{{ include "pg-tikv.fullname" . }}-tenant-bootstrap{{- end -}}

{{/*
PD client URLs, comma-separated: the existing PD's, or the chart's own PD
client Service.
*/}}
{{- define "pg-tikv.pdEndpoints" -}}
{{- if .Values.pd.deploy -}}
{{- printf "http://%s.%s.svc:%d" (include "pg-tikv.pdName" .) .Release.Namespace (int .Values.pd.clientPort) -}}
{{- else -}}
{{- join "," .Values.pd.endpoints -}}
{{- end -}}
{{- end -}}

{{/* PD endpoints as pg-tikv takes them (host:port, no scheme). */}}
{{- define "pg-tikv.pdHostPorts" -}}
{{- $out := list -}}
{{- range splitList "," (include "pg-tikv.pdEndpoints" .) -}}
{{- $out = append $out (. | trimPrefix "http://" | trimPrefix "https://" | trimSuffix "/") -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/* The pg-tikv Service's in-cluster host name. */}}
{{- define "pg-tikv.sqlHost" -}}
{{- printf "%s.%s.svc" (include "pg-tikv.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/*
Checks that a JSON schema cannot express, each refused with a plain message.
Included by every workload template, so that `helm template` and `helm lint`
refuse the values too.
*/}}
{{- define "pg-tikv.validate" -}}
{{- if and (not .Values.pd.deploy) (empty .Values.pd.endpoints) -}}
{{- fail "pd: set pd.endpoints to the client URLs of an existing PD, or pd.deploy: true to run PD and TiKV in this release" -}}
{{- end -}}
{{- if and .Values.pd.deploy (not (empty .Values.pd.endpoints)) -}}
{{- fail "pd: pd.endpoints and pd.deploy: true exclude each other (pd.deploy runs the release's own PD)" -}}
{{- end -}}
{{- $seen := dict -}}
{{- range .Values.tenants -}}
{{- if hasKey $seen .name -}}
{{- fail (printf "tenants: tenant %q is declared twice; every tenant name must be unique" .name) -}}
{{- end -}}
{{- $_ := set $seen .name true -}}
{{- $tenant := .name -}}
{{- $users := dict -}}
{{- range .users -}}
{{- if hasKey $users .name -}}
{{- fail (printf "tenants: user %q is declared twice in tenant %q; every user name must be unique in its tenant" .name $tenant) -}}
{{- end -}}
{{- $_ := set $users .name true -}}
{{- end -}}
{{- end -}}
{{- if and .Values.pgtikv.tls.enabled (not .Values.pgtikv.tls.secretName) -}}
{{- fail "pgtikv.tls: enabled needs secretName, an existing Secret with the certificate and key" -}}
{{- end -}}
{{- end -}}
