{{/* Base name of every object: the release name, or release-hydite when it lacks "hydite". */}}
{{- define "hydite.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "hydite.labels" -}}
app.kubernetes.io/part-of: hydite
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The selector label of one component; call with (list $ "dataplane"). */}}
{{- define "hydite.selector" -}}
app.kubernetes.io/name: {{ include "hydite.fullname" (index . 0) }}-{{ index . 1 }}
{{- end -}}

{{/* A component's image; call with (list $ .Values.dataplane.image). */}}
{{- define "hydite.image" -}}
{{- $root := index . 0 -}}
{{- $repository := index . 1 -}}
{{- $tag := $root.Values.image.tag | default $root.Chart.AppVersion -}}
{{- if $root.Values.image.registry -}}
{{- printf "%s/%s:%s" $root.Values.image.registry $repository $tag -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "hydite.secretName" -}}
{{- if .Values.secrets.create -}}
{{- include "hydite.fullname" . }}-secrets
{{- else -}}
{{- .Values.secrets.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* One env entry read from the chart's Secret; call with (list $ "HYDITE_SALT_KEY" "salt-key"). */}}
{{- define "hydite.secretEnv" -}}
- name: {{ index . 1 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "hydite.secretName" (index . 0) }}
      key: {{ index . 2 }}
{{- end -}}

{{- define "hydite.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "hydite.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Spread a component's pods over zones and nodes; call with (list $ "dataplane"). */}}
{{- define "hydite.topologySpread" -}}
{{- $root := index . 0 -}}
{{- if $root.Values.topologySpread.enabled -}}
topologySpreadConstraints:
  {{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "hydite.selector" (list $root (index $ 1)) | nindent 8 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Egress to DNS, which every pod needs. */}}
{{- define "hydite.dnsEgress" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end -}}
