{{/* The release's name for everything the chart makes, at most 63 characters. */}}
{{- define "interlink-dispatcher.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "interlink-dispatcher.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "interlink-dispatcher.labels" -}}
{{ include "interlink-dispatcher.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Prometheus' annotation-based discovery, merged with the annotations given: a YAML map, maybe empty. */}}
{{- define "interlink-dispatcher.annotations" -}}
{{- $a := deepCopy (.extra | default dict) -}}
{{- if .root.Values.metrics.scrapeAnnotations -}}
{{- $_ := set $a "prometheus.io/scrape" "true" -}}
{{- $_ := set $a "prometheus.io/port" (toString .root.Values.metrics.port) -}}
{{- $_ := set $a "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- with $a -}}
{{- toYaml . -}}
{{- end -}}
{{- end -}}

{{/*
data_dir, in the pod: the hostPath's own path when there is one, since the Docker backend hands dockerd on the
node paths beneath it; else /var/lib/interlink-dispatcher.
*/}}
{{- define "interlink-dispatcher.dataDir" -}}
{{- .Values.dataDir.hostPath | default "/var/lib/interlink-dispatcher" -}}
{{- end -}}

{{/*
The shim the node's dockerd bind-mounts into every container: a path on the node, which the pod sees at the
same path (it is beneath data_dir).
*/}}
{{- define "interlink-dispatcher.dockerShim" -}}
{{- .Values.dockerSocket.shim | default (printf "%s/interlink-shim" (include "interlink-dispatcher.dataDir" .)) -}}
{{- end -}}

{{/*
The dispatcher's config.yaml: .Values.config with the keys the chart owns set from the other values, and
<binDir>/backend-<name> for each backend stanza that names no binary, and the node's shim for the stanza named
docker when it uses the node's Docker socket and names no shim.
*/}}
{{- define "interlink-dispatcher.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $listen := get $cfg "listen" | default dict -}}
{{- $_ := set $listen "tcp" (printf "0.0.0.0:%d" (int .Values.service.port)) -}}
{{- $_ := set $listen "unix" "" -}}
{{- $_ := set $cfg "listen" $listen -}}
{{- $metrics := get $cfg "metrics" | default dict -}}
{{- $_ := set $metrics "listen" (printf "0.0.0.0:%d" (int .Values.metrics.port)) -}}
{{- $_ := set $cfg "metrics" $metrics -}}
{{- $_ := set $cfg "data_dir" (include "interlink-dispatcher.dataDir" .) -}}
{{- if and .Values.dockerSocket.enabled (not .Values.dataDir.hostPath) -}}
{{- fail "dockerSocket.enabled needs dataDir.hostPath: the node's dockerd bind-mounts the pods' volumes and the shim from data_dir, so it must be the same directory on the node" -}}
{{- end -}}
{{- if not $cfg.backends -}}
{{- fail "config.backends must list at least one backend (values.yaml has examples)" -}}
{{- end -}}
{{- $backends := list -}}
{{- range $b := $cfg.backends -}}
{{- $b = deepCopy $b -}}
{{- if not $b.name -}}
{{- fail "every entry of config.backends needs a name" -}}
{{- end -}}
{{- if not $b.binary -}}
{{- $_ := set $b "binary" (printf "%s/backend-%s" $.Values.binDir $b.name) -}}
{{- end -}}
{{- if and (eq $b.name "docker") $.Values.dockerSocket.enabled -}}
{{- $bc := $b.config | default dict -}}
{{- if not $bc.shim -}}
{{- $_ := set $bc "shim" (include "interlink-dispatcher.dockerShim" $) -}}
{{- end -}}
{{- $_ := set $b "config" $bc -}}
{{- end -}}
{{- $backends = append $backends $b -}}
{{- end -}}
{{- $_ := set $cfg "backends" $backends -}}
{{- toYaml $cfg -}}
{{- end -}}
