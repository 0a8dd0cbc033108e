{{/*
The provision playbook's vars file. Passwords are Jinja lookups of the files
the Job mounts from the referenced Secrets; the playbook gets the mount
point as pgtikv_secrets_dir. Only "merged": create what is missing and
converge what is listed, never disable anything.
*/}}
{{- define "pg-tikv.tenantsFile" -}}
# Rendered by the pg-tikv chart for release {{ .Release.Name }}. No password is
# in this file: each one is read from a file mounted from a Secret.
pgtikv_tenants:
{{- range .Values.tenants }}
{{- $tname := .name }}
  - name: {{ .name | toJson }}
    {{- with .config }}
    config: {{ toJson . }}
    {{- end }}
    admin_password: {{ printf "{{ lookup('ansible.builtin.file', pgtikv_secrets_dir ~ '/%s/admin') }}" .name | toJson }}
    users:
    {{- range .users }}
      - name: {{ .name | toJson }}
        password: {{ printf "{{ lookup('ansible.builtin.file', pgtikv_secrets_dir ~ '/%s/users/%s') }}" $tname .name | toJson }}
    {{- else }} []
    {{- end }}
{{- end }}
# Create what is missing and converge what is listed; never disable anything.
tenants_state: merged
tenants_max_workers: {{ int .Values.bootstrap.maxWorkers }}
# Writable scratch for the tenants role's secrets store (nothing is generated:
# every password is declared).
tenants_secrets_file: "{{ "{{" }} pgtikv_state_dir {{ "}}" }}/tenants-secrets.yml"
{{- if .Values.pgtikv.tls.enabled }}
tenants_ssl_mode: require
{{- end }}
{{- end -}}

{{/* Secret files: <tenant>/admin and <tenant>/users/<user>. */}}
{{- define "pg-tikv.secretSources" -}}
{{- range .Values.tenants }}
{{- $tname := .name }}
- secret:
    name: {{ .adminPasswordSecret.name }}
    items:
      - key: {{ .adminPasswordSecret.key }}
        path: {{ $tname }}/admin
{{- range .users }}
- secret:
    name: {{ .passwordSecret.name }}
    items:
      - key: {{ .passwordSecret.key }}
        path: {{ $tname }}/users/{{ .name }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "pg-tikv.bootstrapEnv" -}}
- name: PD_ENDPOINTS
  value: {{ include "pg-tikv.pdEndpoints" . | quote }}
- name: PG_HOST
  value: {{ include "pg-tikv.sqlHost" . | quote }}
- name: PG_PORT
  value: {{ .Values.pgtikv.port | quote }}
- name: BOOTSTRAP_WAIT_SECONDS
  value: {{ .Values.bootstrap.waitSeconds | quote }}
{{- end -}}

{{- define "pg-tikv.restrictedContainer" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
