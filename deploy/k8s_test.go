package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"mpim/chaos/export"
)

// manifests are the decoded documents of deploy/k8s, by kind.
type manifests struct {
	namespaces   []corev1.Namespace
	secrets      []corev1.Secret
	services     []corev1.Service
	deployments  []appsv1.Deployment
	statefulSets []appsv1.StatefulSet
}

// kustomization mirrors the fields of kustomize's Kustomization
// (kustomize.config.k8s.io/v1beta1) that deploy/k8s uses; decoding it
// strictly catches a misspelt field.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// documents splits a YAML stream into its non-empty documents.
func documents(t *testing.T, data []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			t.Fatal(err)
		}
		if len(probe) > 0 {
			out = append(out, doc)
		}
	}
}

// decode reads the documents of a stream strictly into the k8s.io/api type
// of each one's apiVersion and kind: an unknown field, a value of the
// wrong type or a kind this package does not expect fails.
func (m *manifests) decode(t *testing.T, name string, data []byte) {
	t.Helper()
	for i, doc := range documents(t, data) {
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s, document %d: %v", name, i+1, err)
		}
		var err error
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			var o corev1.Namespace
			err = yaml.UnmarshalStrict(doc, &o)
			m.namespaces = append(m.namespaces, o)
		case "v1 Secret":
			var o corev1.Secret
			err = yaml.UnmarshalStrict(doc, &o)
			m.secrets = append(m.secrets, o)
		case "v1 Service":
			var o corev1.Service
			err = yaml.UnmarshalStrict(doc, &o)
			m.services = append(m.services, o)
		case "apps/v1 Deployment":
			var o appsv1.Deployment
			err = yaml.UnmarshalStrict(doc, &o)
			m.deployments = append(m.deployments, o)
		case "apps/v1 StatefulSet":
			var o appsv1.StatefulSet
			err = yaml.UnmarshalStrict(doc, &o)
			m.statefulSets = append(m.statefulSets, o)
		default:
			t.Fatalf("%s, document %d: unexpected %s %s (teach this test its type)", name, i+1, tm.APIVersion, tm.Kind)
		}
		if err != nil {
			t.Errorf("%s, document %d (%s): does not decode strictly into k8s.io/api: %v", name, i+1, tm.Kind, err)
		}
	}
}

func readKustomization(t *testing.T) kustomization {
	t.Helper()
	data, err := os.ReadFile("k8s/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("k8s/kustomization.yaml: %v", err)
	}
	return k
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{}
	for _, f := range readKustomization(t).Resources {
		data, err := os.ReadFile(filepath.Join("k8s", f))
		if err != nil {
			t.Fatal(err)
		}
		m.decode(t, f, data)
	}
	return m
}

// TestManifestsDecodeStrictly: every document of every manifest decodes
// into its k8s.io/api type with unknown fields refused.
func TestManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)
	if len(m.namespaces) != 1 || len(m.secrets) != 2 || len(m.services) != 3 || len(m.deployments) != 2 || len(m.statefulSets) != 1 {
		t.Errorf("deploy/k8s holds %d namespaces, %d secrets, %d services, %d deployments, %d statefulsets; want 1, 2, 3, 2, 1",
			len(m.namespaces), len(m.secrets), len(m.services), len(m.deployments), len(m.statefulSets))
	}
}

// TestKustomizationListsEveryFile: the kustomization names every manifest
// of deploy/k8s, each once, and nothing else.
func TestKustomizationListsEveryFile(t *testing.T) {
	k := readKustomization(t)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization is %s %s, want kustomize.config.k8s.io/v1beta1 Kustomization", k.APIVersion, k.Kind)
	}
	files, err := filepath.Glob("k8s/*")
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" {
			onDisk = append(onDisk, base)
		}
	}
	listed := slices.Clone(k.Resources)
	slices.Sort(listed)
	if len(slices.Compact(slices.Clone(listed))) != len(listed) {
		t.Errorf("kustomization lists a file twice: %v", k.Resources)
	}
	for _, f := range onDisk {
		if !slices.Contains(listed, f) {
			t.Errorf("k8s/%s is not in the kustomization's resources: kubectl apply -k would skip it", f)
		}
	}
	for _, f := range listed {
		if !slices.Contains(onDisk, f) {
			t.Errorf("the kustomization lists %s, which deploy/k8s does not hold", f)
		}
	}
	if k.Namespace != export.DefaultConfig().Namespace {
		t.Errorf("kustomization namespace %q, but mpim chaos export selects pods in %q by default", k.Namespace, export.DefaultConfig().Namespace)
	}
}

// TestKustomizeBuild renders the kustomization with kubectl's kustomize
// (where kubectl exists) and decodes the result strictly too.
func TestKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not on PATH; the kustomization is checked by TestKustomizationListsEveryFile only")
	}
	out, err := exec.Command(kubectl, "kustomize", "k8s").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl kustomize k8s: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	m := &manifests{}
	m.decode(t, "kubectl kustomize k8s", out)
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "gateway" && c.Image != "mpim:dev" {
				t.Errorf("rendered gateway image %q, want the kustomization's mpim:dev", c.Image)
			}
		}
	}
	for _, s := range m.services {
		if s.Namespace != "mpim" {
			t.Errorf("rendered Service %s in namespace %q, want mpim", s.Name, s.Namespace)
		}
	}
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return len(want) > 0
}

func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// TestManifestsWireUp: the pieces refer to each other: selectors select
// their pods, Services reach named ports, probes hit /healthz on a port
// the container has, every Secret, key and volume referred to exists, the
// nodes' StatefulSet has stable identities behind its headless Service,
// the agent sidecar has NET_ADMIN and runs --no-members, and the pods
// carry the labels mpim chaos export selects them by.
func TestManifestsWireUp(t *testing.T) {
	m := loadManifests(t)
	ns := export.DefaultConfig().Namespace
	if m.namespaces[0].Name != ns {
		t.Errorf("namespace %q, want %q", m.namespaces[0].Name, ns)
	}
	secretKeys := map[string][]string{}
	for _, s := range m.secrets {
		for k := range s.StringData {
			secretKeys[s.Name] = append(secretKeys[s.Name], k)
		}
		for k := range s.Data {
			secretKeys[s.Name] = append(secretKeys[s.Name], k)
		}
	}
	type workload struct {
		name      string
		component string
		selector  map[string]string
		pod       corev1.PodTemplateSpec
		claims    []string
	}
	var ws []workload
	for _, d := range m.deployments {
		ws = append(ws, workload{d.Name, d.Labels[export.LabelComponent], d.Spec.Selector.MatchLabels, d.Spec.Template, nil})
	}
	for _, s := range m.statefulSets {
		var claims []string
		for _, c := range s.Spec.VolumeClaimTemplates {
			claims = append(claims, c.Name)
		}
		ws = append(ws, workload{s.Name, s.Labels[export.LabelComponent], s.Spec.Selector.MatchLabels, s.Spec.Template, claims})
	}
	components := map[string]bool{}
	for _, w := range ws {
		labels := w.pod.Labels
		components[labels[export.LabelComponent]] = true
		if !hasLabels(labels, w.selector) {
			t.Errorf("%s: selector %v does not select its own pods (labels %v)", w.name, w.selector, labels)
		}
		if labels[export.LabelPartOf] != export.PartOf || labels[export.LabelComponent] != w.component {
			t.Errorf("%s: pods labelled %v; mpim chaos export selects by %s=%s and %s=%s", w.name, labels, export.LabelPartOf, export.PartOf, export.LabelComponent, w.component)
		}
		// A Service selects these pods, and every port it targets is a named container port.
		var svc *corev1.Service
		for i := range m.services {
			if hasLabels(labels, m.services[i].Spec.Selector) {
				svc = &m.services[i]
			}
		}
		if svc == nil {
			t.Errorf("%s: no Service selects its pods", w.name)
			continue
		}
		ports := map[string]bool{}
		for _, c := range w.pod.Spec.Containers {
			for _, p := range c.Ports {
				ports[p.Name] = true
			}
		}
		for _, p := range svc.Spec.Ports {
			if !ports[p.TargetPort.String()] {
				t.Errorf("Service %s port %s targets %q, which no container of %s names", svc.Name, p.Name, p.TargetPort.String(), w.name)
			}
		}
		volumes := map[string]bool{}
		for _, v := range w.pod.Spec.Volumes {
			volumes[v.Name] = true
			if v.Secret != nil {
				if _, ok := secretKeys[v.Secret.SecretName]; !ok {
					t.Errorf("%s: volume %s mounts Secret %s, which deploy/k8s does not define", w.name, v.Name, v.Secret.SecretName)
				}
			}
		}
		for _, c := range w.claims {
			volumes[c] = true
		}
		for _, c := range w.pod.Spec.Containers {
			for _, vm := range c.VolumeMounts {
				if !volumes[vm.Name] {
					t.Errorf("%s/%s mounts %s, which is neither a volume nor a claim template", w.name, c.Name, vm.Name)
				}
			}
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil {
					keys := secretKeys[e.SecretRef.Name]
					if !slices.Contains(keys, "MPIM_SECRET") || !slices.Contains(keys, "MPIM_REDIS_PASSWORD") {
						t.Errorf("%s/%s takes its environment from Secret %s, which lacks MPIM_SECRET or MPIM_REDIS_PASSWORD (has %v)", w.name, c.Name, e.SecretRef.Name, keys)
					}
				}
			}
			for _, e := range c.Env {
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && !slices.Contains(secretKeys[r.SecretKeyRef.Name], r.SecretKeyRef.Key) {
					t.Errorf("%s/%s: %s from Secret %s key %s, which deploy/k8s does not define", w.name, c.Name, e.Name, r.SecretKeyRef.Name, r.SecretKeyRef.Key)
				}
			}
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if p == nil {
					continue
				}
				port := ""
				switch {
				case p.HTTPGet != nil:
					port = p.HTTPGet.Port.String()
					if p.HTTPGet.Path != "/healthz" {
						t.Errorf("%s/%s probes %s; members serve /healthz", w.name, c.Name, p.HTTPGet.Path)
					}
				case p.TCPSocket != nil:
					port = p.TCPSocket.Port.String()
				}
				if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == port }) {
					t.Errorf("%s/%s probes port %q, which the container does not name", w.name, c.Name, port)
				}
			}
			if c.Name == "node" || c.Name == "gateway" {
				if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil {
					t.Errorf("%s/%s: want HTTP readiness and liveness probes on /healthz", w.name, c.Name)
				}
			}
		}
		// A non-root container reads a Secret volume whose files others
		// may not read only through the pod's fsGroup.
		for _, v := range w.pod.Spec.Volumes {
			if v.Secret == nil || v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o004 != 0 {
				continue
			}
			for _, c := range w.pod.Spec.Containers {
				root := c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil && *c.SecurityContext.RunAsUser == 0
				mounts := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == v.Name })
				if mounts && !root && (w.pod.Spec.SecurityContext == nil || w.pod.Spec.SecurityContext.FSGroup == nil) {
					t.Errorf("%s/%s cannot read Secret volume %s (mode %o) as a non-root user without the pod's fsGroup", w.name, c.Name, v.Name, *v.Secret.DefaultMode)
				}
			}
		}
		tls := slices.ContainsFunc(w.pod.Spec.Volumes, func(v corev1.Volume) bool {
			return v.Secret != nil && slices.Contains(secretKeys[v.Secret.SecretName], "member-key.pem")
		})
		if w.component != export.ComponentRedis && !tls {
			t.Errorf("%s: no volume holds the cluster's TLS credentials (ca.pem, member.pem, member-key.pem)", w.name)
		}
	}
	for _, c := range []string{export.ComponentNode, export.ComponentGateway, export.ComponentRedis} {
		if !components[c] {
			t.Errorf("no pods labelled %s=%s", export.LabelComponent, c)
		}
	}
	checkNodes(t, m)
}

// checkNodes: the StatefulSet behind mpim chaos export's pod names.
func checkNodes(t *testing.T, m *manifests) {
	t.Helper()
	s := m.statefulSets[0]
	if s.Name != export.NodeStatefulSet {
		t.Fatalf("StatefulSet %s; mpim chaos export names the nodes' pods %s-I", s.Name, export.NodeStatefulSet)
	}
	var headless *corev1.Service
	for i := range m.services {
		if m.services[i].Name == s.Spec.ServiceName {
			headless = &m.services[i]
		}
	}
	switch {
	case headless == nil:
		t.Errorf("StatefulSet serviceName %q names no Service", s.Spec.ServiceName)
	case headless.Spec.ClusterIP != corev1.ClusterIPNone:
		t.Errorf("Service %s is not headless (clusterIP %q): the pods get no DNS names of their own", headless.Name, headless.Spec.ClusterIP)
	case !headless.Spec.PublishNotReadyAddresses:
		t.Errorf("Service %s does not publish unready pods: no node is ready before a majority find each other", headless.Name)
	}
	if s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q: with OrderedReady the second node waits for the first to be ready, which needs a majority", s.Spec.PodManagementPolicy)
	}
	node := container(t, s.Spec.Template.Spec, "node")
	env := map[string]string{}
	for _, e := range node.Env {
		env[e.Name] = e.Value
	}
	if replicas := strconv.Itoa(int(*s.Spec.Replicas)); env["MPIM_NODE_COUNT"] != replicas {
		t.Errorf("MPIM_NODE_COUNT %q but %s replicas: the peer list would name nodes that do not exist, or miss some", env["MPIM_NODE_COUNT"], replicas)
	}
	if !slices.ContainsFunc(node.VolumeMounts, func(v corev1.VolumeMount) bool { return v.Name == "data" && v.MountPath == "/var/lib/mpim" }) {
		t.Errorf("the node's claim template data is not mounted at its --data /var/lib/mpim")
	}
	agent := container(t, s.Spec.Template.Spec, "agent")
	if sc := agent.SecurityContext; sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Add, "NET_ADMIN") {
		t.Errorf("the agent sidecar lacks capabilities.add NET_ADMIN (nft, ip and tc need it)")
	}
	if !slices.Contains(agent.Command, "--no-members") {
		t.Errorf("the agent sidecar runs without --no-members: %v", agent.Command)
	}
	for _, c := range s.Spec.Template.Spec.Containers {
		if c.Name != "agent" && c.SecurityContext != nil && c.SecurityContext.Capabilities != nil && len(c.SecurityContext.Capabilities.Add) > 0 {
			t.Errorf("container %s adds capabilities %v; only the agent needs one", c.Name, c.SecurityContext.Capabilities.Add)
		}
	}
	// The gateways dial every node by its stable name.
	for _, d := range m.deployments {
		if d.Name != "mpim-gateway" {
			continue
		}
		gw := container(t, d.Spec.Template.Spec, "gateway")
		i := slices.Index(gw.Command, "--nodes")
		if i < 0 {
			t.Fatalf("the gateway has no --nodes: %v", gw.Command)
		}
		var want []string
		for j := 0; j < int(*s.Spec.Replicas); j++ {
			want = append(want, fmt.Sprintf("%s-%d.%s:7101", s.Name, j, headless.Name))
		}
		if got := gw.Command[i+1]; got != strings.Join(want, ",") {
			t.Errorf("gateway --nodes %s, want every node by its headless name: %s", got, strings.Join(want, ","))
		}
	}
}
