// Package fleet holds the Kubernetes manifests of a fleet of mux instances
// (a StatefulSet behind a Service) and the test that checks they fit
// together. They are JSON, which kubectl accepts, so that the test needs
// no YAML library.
package fleet

import (
	"encoding/json"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/muxpg/mux/config"
)

type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Items      []object          `json:"items"`
	StringData map[string]string `json:"stringData"`
	Spec       json.RawMessage   `json:"spec"`
}

type selector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

type serviceSpec struct {
	ClusterIP                string            `json:"clusterIP"`
	PublishNotReadyAddresses bool              `json:"publishNotReadyAddresses"`
	Selector                 map[string]string `json:"selector"`
	Ports                    []struct {
		Port       int    `json:"port"`
		TargetPort string `json:"targetPort"`
	} `json:"ports"`
}

type probe struct {
	HTTPGet struct {
		Path string `json:"path"`
		Port string `json:"port"`
	} `json:"httpGet"`
}

type container struct {
	Args  []string `json:"args"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	ReadinessProbe probe `json:"readinessProbe"`
	LivenessProbe  probe `json:"livenessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep struct {
				Seconds int `json:"seconds"`
			} `json:"sleep"`
		} `json:"preStop"`
	} `json:"lifecycle"`
	VolumeMounts []struct {
		Name, MountPath string
	} `json:"volumeMounts"`
}

type statefulSetSpec struct {
	ServiceName string   `json:"serviceName"`
	Replicas    int      `json:"replicas"`
	Selector    selector `json:"selector"`
	Template    struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			TerminationGracePeriodSeconds int         `json:"terminationGracePeriodSeconds"`
			Containers                    []container `json:"containers"`
			Volumes                       []struct {
				Name   string `json:"name"`
				Secret struct {
					SecretName string `json:"secretName"`
				} `json:"secret"`
			} `json:"volumes"`
		} `json:"spec"`
	} `json:"template"`
}

type pdbSpec struct {
	MinAvailable int      `json:"minAvailable"`
	Selector     selector `json:"selector"`
}

// load reads every manifest in the directory, lists flattened, by kind.
func load(t *testing.T) map[string][]object {
	t.Helper()
	files := []string{"config.json", "services.json", "statefulset.json", "pdb.json"}
	byKind := map[string][]object{}
	var add func(o object)
	add = func(o object) {
		if o.Kind == "List" {
			for _, it := range o.Items {
				add(it)
			}
			return
		}
		byKind[o.Kind] = append(byKind[o.Kind], o)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := json.Unmarshal(data, &o); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		add(o)
	}
	return byKind
}

func spec[T any](t *testing.T, o object) T {
	t.Helper()
	var s T
	if err := json.Unmarshal(o.Spec, &s); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Metadata.Name, err)
	}
	return s
}

// matches reports whether sel selects a pod with labels.
func matches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

func TestManifests(t *testing.T) {
	objs := load(t)
	for kind, n := range map[string]int{"Secret": 1, "Service": 2, "StatefulSet": 1, "PodDisruptionBudget": 1} {
		if len(objs[kind]) != n {
			t.Fatalf("%d %s objects, want %d", len(objs[kind]), kind, n)
		}
	}
	sts := objs["StatefulSet"][0]
	ss := spec[statefulSetSpec](t, sts)
	pod := ss.Template.Metadata.Labels
	if ss.Replicas != 3 {
		t.Errorf("replicas %d, want 3", ss.Replicas)
	}
	if !matches(ss.Selector.MatchLabels, pod) {
		t.Errorf("StatefulSet selector %v does not select its pods %v", ss.Selector.MatchLabels, pod)
	}
	pdb := spec[pdbSpec](t, objs["PodDisruptionBudget"][0])
	if !matches(pdb.Selector.MatchLabels, pod) || pdb.MinAvailable != ss.Replicas-1 {
		t.Errorf("PodDisruptionBudget: selector %v, minAvailable %d; want the pods and %d", pdb.Selector.MatchLabels, pdb.MinAvailable, ss.Replicas-1)
	}
	cfg := muxConfig(t, objs["Secret"][0], ss)
	c := checkContainer(t, ss, cfg)

	var headless string
	for _, svc := range objs["Service"] {
		s := spec[serviceSpec](t, svc)
		if !matches(s.Selector, pod) {
			t.Errorf("Service %s does not select the pods", svc.Metadata.Name)
		}
		if len(s.Ports) != 1 || s.Ports[0].Port != listenPort(t, cfg) || containerPort(c, s.Ports[0].TargetPort) != listenPort(t, cfg) {
			t.Errorf("Service %s: ports %+v do not lead to mux's listen port", svc.Metadata.Name, s.Ports)
		}
		if s.ClusterIP == "None" {
			headless = svc.Metadata.Name
			if !s.PublishNotReadyAddresses {
				t.Error("the headless Service must publish draining pods: their clients' cancels must reach them")
			}
		}
	}
	if headless == "" || ss.ServiceName != headless {
		t.Fatalf("StatefulSet serviceName %q, headless Service %q", ss.ServiceName, headless)
	}
	// The peers' DNS names are the StatefulSet's pods under the headless Service.
	want := sts.Metadata.Name + "-{ordinal}." + headless
	if cfg.PeersDNS != want && !strings.HasPrefix(cfg.PeersDNS, want+".") {
		t.Errorf("peers_dns %q, want %q (pod names under the headless Service)", cfg.PeersDNS, want)
	}
	if addr, ok := cfg.LookupPeer(3); !ok || addr.Address != net.JoinHostPort(sts.Metadata.Name+"-2."+headless, strconv.Itoa(listenPort(t, cfg))) {
		t.Errorf("peer 3 is at %+v, want pod %s-2's listen address", addr, sts.Metadata.Name)
	}
}

// muxConfig parses mux.toml from the Secret the pods mount, with peer_id
// = "ordinal" (which needs a pod's host name) replaced by 1.
func muxConfig(t *testing.T, secret object, ss statefulSetSpec) *config.Config {
	t.Helper()
	vol := ss.Template.Spec.Volumes
	if len(vol) != 1 || vol[0].Secret.SecretName != secret.Metadata.Name {
		t.Fatalf("pods mount %+v, want the Secret %s", vol, secret.Metadata.Name)
	}
	text := secret.StringData["mux.toml"]
	if !strings.Contains(text, "\npeer_id = \"ordinal\"\n") {
		t.Fatal("mux.toml does not take peer_id from the pod's ordinal")
	}
	cfg, err := config.Parse([]byte(strings.Replace(text, "\npeer_id = \"ordinal\"\n", "\npeer_id = 1\n", 1)))
	if err != nil {
		t.Fatalf("mux.toml: %v", err)
	}
	return cfg
}

// checkContainer checks the mux container's arguments, probes and the
// grace it gets to drain.
func checkContainer(t *testing.T, ss statefulSetSpec, cfg *config.Config) container {
	t.Helper()
	cs := ss.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	c := cs[0]
	if len(c.Args) != 2 || c.Args[1] != "/etc/mux/mux.toml" || len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/mux" {
		t.Errorf("mux reads %v with %+v mounted, want /etc/mux/mux.toml", c.Args, c.VolumeMounts)
	}
	_, hp, _ := net.SplitHostPort(cfg.HTTPListen)
	for path, p := range map[string]probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if p.HTTPGet.Path != path || strconv.Itoa(containerPort(c, p.HTTPGet.Port)) != hp {
			t.Errorf("probe %+v, want %s on http_listen's port %s", p.HTTPGet, path, hp)
		}
	}
	if !strings.HasPrefix(cfg.HTTPListen, "0.0.0.0:") {
		t.Errorf("http_listen %q: the kubelet cannot reach it", cfg.HTTPListen)
	}
	grace := time.Duration(ss.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	drain := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second + cfg.ShutdownTimeout.D()
	if c.Lifecycle.PreStop.Sleep.Seconds < 5 || grace <= drain {
		t.Errorf("preStop sleep %ds + shutdown_timeout %v must be under terminationGracePeriodSeconds %v, the sleep at least 5s",
			c.Lifecycle.PreStop.Sleep.Seconds, cfg.ShutdownTimeout, grace)
	}
	return c
}

func containerPort(c container, name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return -1
}

func listenPort(t *testing.T, cfg *config.Config) int {
	t.Helper()
	if len(cfg.Listen) != 1 {
		t.Fatalf("listen %v, want one address", cfg.Listen)
	}
	_, p, _ := net.SplitHostPort(cfg.Listen[0])
	n, _ := strconv.Atoi(p)
	if n != cfg.PeersDNSPort {
		t.Errorf("peers_dns_port %d is not the listen port %d", cfg.PeersDNSPort, n)
	}
	return n
}
