package client

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// Manifests are the pods, ConfigMaps and Secrets of one or more manifest files, in the order they came.
type Manifests struct {
	Pods       []*v1.Pod
	ConfigMaps []v1.ConfigMap
	Secrets    []v1.Secret
}

// ManifestError is a document that is not a manifest dispatcherctl can apply, with where it is.
type ManifestError struct {
	Source string // the file, "-" for stdin
	Doc    int    // 1-based document number in the file
	Msg    string
}

func (e *ManifestError) Error() string {
	return fmt.Sprintf("%s, document %d: %s", e.Source, e.Doc, e.Msg)
}

// Read adds the documents of one file (YAML, or JSON, several separated by --- lines; a v1 List is read
// item by item) to m.
func (m *Manifests) Read(source string, r io.Reader) error {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for doc := 1; ; doc++ {
		raw, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &ManifestError{Source: source, Doc: doc, Msg: fmt.Sprintf("cannot be read: %v", err)}
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			doc-- // an empty document (a leading ---, a comment) is not counted
			continue
		}
		if err := m.add(raw); err != nil {
			return &ManifestError{Source: source, Doc: doc, Msg: err.Error()}
		}
	}
}

func stripComments(raw []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// add decodes one document. Fields unknown to its kind are refused, as kubectl's server-side validation
// does: a misspelt field would otherwise be dropped and the pod run without it.
func (m *Manifests) add(raw []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(raw, &tm); err != nil {
		return fmt.Errorf("is not a YAML or JSON object: %v", trimYAMLError(err))
	}
	if tm.Kind == "" {
		return errors.New("has no kind; a manifest is a Pod, a ConfigMap or a Secret with apiVersion: v1 and kind set")
	}
	if tm.APIVersion != "v1" && tm.Kind != "List" {
		if tm.APIVersion == "" {
			return fmt.Errorf("the %s has no apiVersion; use apiVersion: v1", tm.Kind)
		}
		return fmt.Errorf("is a %s of apiVersion %s; dispatcherctl applies only v1 Pods, ConfigMaps and Secrets", tm.Kind, tm.APIVersion)
	}
	switch tm.Kind {
	case "Pod":
		var p v1.Pod
		if err := yaml.UnmarshalStrict(raw, &p); err != nil {
			return fmt.Errorf("is not a valid Pod: %v", trimYAMLError(err))
		}
		m.Pods = append(m.Pods, &p)
	case "ConfigMap":
		var cm v1.ConfigMap
		if err := yaml.UnmarshalStrict(raw, &cm); err != nil {
			return fmt.Errorf("is not a valid ConfigMap: %v", trimYAMLError(err))
		}
		if cm.Name == "" {
			return errors.New("the ConfigMap has no metadata.name")
		}
		m.ConfigMaps = append(m.ConfigMaps, cm)
	case "Secret":
		var s v1.Secret
		if err := yaml.UnmarshalStrict(raw, &s); err != nil {
			return fmt.Errorf("is not a valid Secret: %v", trimYAMLError(err))
		}
		if s.Name == "" {
			return errors.New("the Secret has no metadata.name")
		}
		// As the API server does: stringData is written into data, winning over it.
		for k, v := range s.StringData {
			if s.Data == nil {
				s.Data = map[string][]byte{}
			}
			s.Data[k] = []byte(v)
		}
		s.StringData = nil
		if s.Type == "" {
			s.Type = v1.SecretTypeOpaque
		}
		m.Secrets = append(m.Secrets, s)
	case "List":
		var l struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := yaml.Unmarshal(raw, &l); err != nil {
			return fmt.Errorf("is not a valid List: %v", trimYAMLError(err))
		}
		for i, it := range l.Items {
			if err := m.add(it); err != nil {
				return fmt.Errorf("item %d %v", i+1, err)
			}
		}
	case "Deployment", "Job", "StatefulSet", "DaemonSet", "ReplicaSet", "CronJob":
		return fmt.Errorf("is a %s; dispatcherctl runs bare pods: apply its pod template as a Pod", tm.Kind)
	default:
		return fmt.Errorf("is a %s, not a Pod, a ConfigMap or a Secret", tm.Kind)
	}
	return nil
}

// trimYAMLError drops the "error converting YAML to JSON: " prefix that says nothing to the user.
func trimYAMLError(err error) string {
	s := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "error unmarshaling JSON: while decoding JSON: ", "error unmarshaling JSON: ", "json: "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// BuildOptions change what Build makes of a pod.
type BuildOptions struct {
	Namespace string // for a pod (and objects) without one; "" is "default"
	// RoutingAnnotation and Backend: when Backend is set the pod gets RoutingAnnotation: Backend.
	RoutingAnnotation, Backend string
	// Warn receives what Build left out or could not do as Kubernetes would (nil: dropped).
	Warn func(string)
}

// DefaultRoutingAnnotation is the dispatcher's default routing.annotation.
const DefaultRoutingAnnotation = "dispatcher.interlink.eu/backend"

// Build makes the create request of p as interLink would send it: the pod defaulted as the API server
// would, envFrom and ConfigMap/Secret key references resolved into env, downwardAPI volumes turned into
// projected ones, and per container (init containers first) the ConfigMaps, Secrets and projected volume
// maps it mounts. p is changed (UID, namespace, defaults). A missing ConfigMap or Secret that is not optional
// is an error that names it.
func (m *Manifests) Build(p *v1.Pod, o BuildOptions) (*interlink.RetrievedPodData, error) {
	if err := prepare(p, o); err != nil {
		return nil, err
	}
	b := &builder{m: m, p: p, warn: o.Warn}
	if b.warn == nil {
		b.warn = func(string) {}
	}
	return b.build()
}

func prepare(p *v1.Pod, o BuildOptions) error {
	if p.Name == "" && p.GenerateName == "" {
		return errors.New("the pod has no metadata.name")
	}
	if p.Name == "" {
		p.Name = p.GenerateName + randomSuffix()
	}
	if p.Namespace == "" {
		p.Namespace = o.Namespace
	}
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	if o.Namespace != "" && p.Namespace != o.Namespace {
		return fmt.Errorf("pod %s is in namespace %s, but -n says %s", p.Name, p.Namespace, o.Namespace)
	}
	if len(p.Spec.Containers) == 0 {
		return fmt.Errorf("pod %s has no containers; list at least one under spec.containers, with a name and an image", p.Name)
	}
	seen := map[string]bool{}
	for _, cs := range [][]v1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i, c := range cs {
			switch {
			case c.Name == "":
				return fmt.Errorf("pod %s: container %d has no name", p.Name, i+1)
			case c.Image == "":
				return fmt.Errorf("pod %s: container %s has no image", p.Name, c.Name)
			case seen[c.Name]:
				return fmt.Errorf("pod %s: two containers are called %s; container names must differ", p.Name, c.Name)
			}
			seen[c.Name] = true
		}
	}
	if p.UID == "" {
		p.UID = types.UID(uuid.NewString())
	}
	if o.Backend != "" {
		ann := o.RoutingAnnotation
		if ann == "" {
			ann = DefaultRoutingAnnotation
		}
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[ann] = o.Backend
	}
	if p.CreationTimestamp.IsZero() {
		p.CreationTimestamp = metav1.Now()
	}
	applyDefaults(p)
	return nil
}

func randomSuffix() string {
	const chars = "bcdfghjklmnpqrstvwxz2456789" // as the API server's generateName
	b := make([]byte, 5)
	rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}
