package pod

import (
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// Objects are the configMaps, secrets and projected volume maps interLink sent with a pod, merged over all
// its containers (interLink repeats an object for each container that mounts it).
type Objects struct {
	ConfigMaps map[string]*v1.ConfigMap
	Secrets    map[string]*v1.Secret
	// Projected maps a pod volume name to the files interLink computed for it (service-account token,
	// ca.crt, namespace, downward-API files).
	Projected map[string]*v1.ConfigMap
}

// NewObjects merges the objects of every RetrievedContainer of a create request.
func NewObjects(containers []interlink.RetrievedContainer) *Objects {
	o := &Objects{
		ConfigMaps: map[string]*v1.ConfigMap{},
		Secrets:    map[string]*v1.Secret{},
		Projected:  map[string]*v1.ConfigMap{},
	}
	for i := range containers {
		c := &containers[i]
		for j := range c.ConfigMaps {
			o.ConfigMaps[c.ConfigMaps[j].Name] = &c.ConfigMaps[j]
		}
		for j := range c.Secrets {
			o.Secrets[c.Secrets[j].Name] = &c.Secrets[j]
		}
		for j := range c.ProjectedVolumeMaps {
			o.Projected[c.ProjectedVolumeMaps[j].Name] = &c.ProjectedVolumeMaps[j]
		}
	}
	return o
}

// configMapValue returns key of configMap name, as bytes; ok is false when the object or key is missing.
func (o *Objects) configMapValue(name, key string) ([]byte, bool) {
	if o == nil {
		return nil, false
	}
	cm, found := o.ConfigMaps[name]
	if !found {
		return nil, false
	}
	if v, ok := cm.Data[key]; ok {
		return []byte(v), true
	}
	v, ok := cm.BinaryData[key]
	return v, ok
}

// configMapData returns every key of configMap name.
func (o *Objects) configMapData(name string) (map[string][]byte, bool) {
	if o == nil {
		return nil, false
	}
	cm, found := o.ConfigMaps[name]
	if !found {
		return nil, false
	}
	return configMapBytes(cm), true
}

// secretData returns every key of secret name; StringData (never sent by the API server, but accepted) is
// merged in.
func (o *Objects) secretData(name string) (map[string][]byte, bool) {
	if o == nil {
		return nil, false
	}
	s, found := o.Secrets[name]
	if !found {
		return nil, false
	}
	data := make(map[string][]byte, len(s.Data)+len(s.StringData))
	for k, v := range s.Data {
		data[k] = v
	}
	for k, v := range s.StringData {
		data[k] = []byte(v)
	}
	return data, true
}

// configMapBytes returns every key of cm, text (Data) and binary (BinaryData) alike.
func configMapBytes(cm *v1.ConfigMap) map[string][]byte {
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return data
}
