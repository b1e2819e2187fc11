package export

// The Chaos Mesh API types this package writes, mirrored from the upstream
// Go module github.com/chaos-mesh/chaos-mesh/api at
// v0.0.0-20260906172039-d70b66ad97ac (package v1alpha1, files
// workflow_types.go, networkchaos_types.go, podnetworkchaos_types.go
// (TcParameter), podchaos_types.go and selector.go). That module is
// served, but its v1alpha1 package imports controller-runtime and, through
// it, client-go, and the module requires k8s.io modules of another release
// (v0.35.3) than the v0.37.2 deploy/ is tested with; the mpim binary would
// carry all of it to write a few YAML fields. So the fields are copied here, with their JSON
// names, types and omitempty exactly as upstream, and only the fields
// this package can write: a strict decode of an export into these types
// (the tests do it) checks that every field written is an upstream field
// of the right type. Fields upstream has and this package never writes
// (Reorder, Duplicate, Corrupt, Bandwidth, Rate, RemoteCluster, a
// Template's Task, ConditionalBranches, Schedule, StatusCheck, the other
// chaos kinds) are left out.

// APIVersion is the group and version of every Chaos Mesh resource.
const APIVersion = "chaos-mesh.org/v1alpha1"

// Workflow is a Chaos Mesh Workflow: templates run from Entry, Serial ones
// one child after another, Parallel ones all children at once, Suspend
// ones waiting their Deadline, chaos ones injecting their spec for their
// Deadline.
type Workflow struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Metadata   ObjectMeta   `json:"metadata"`
	Spec       WorkflowSpec `json:"spec"`
}

// ObjectMeta is the part of Kubernetes object metadata an export sets.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// WorkflowSpec names the entry template and lists every template.
type WorkflowSpec struct {
	Entry     string     `json:"entry"`
	Templates []Template `json:"templates"`
}

// TemplateType is a template's kind.
type TemplateType string

// The template types an export uses.
const (
	TypeSerial       TemplateType = "Serial"
	TypeParallel     TemplateType = "Parallel"
	TypeSuspend      TemplateType = "Suspend"
	TypeNetworkChaos TemplateType = "NetworkChaos"
	TypePodChaos     TemplateType = "PodChaos"
)

// Template is one step of a workflow. Upstream embeds the chaos specs
// (EmbedChaos, inline): a NetworkChaos template carries networkChaos, a
// PodChaos one podChaos.
type Template struct {
	Name         string            `json:"name"`
	Type         TemplateType      `json:"templateType"`
	Deadline     *string           `json:"deadline,omitempty"`
	Children     []string          `json:"children,omitempty"`
	NetworkChaos *NetworkChaosSpec `json:"networkChaos,omitempty"`
	PodChaos     *PodChaosSpec     `json:"podChaos,omitempty"`
}

// NetworkChaosAction is what a NetworkChaos does to the packets.
type NetworkChaosAction string

// The network actions an export uses: netem is delay and loss at once.
const (
	ActionPartition NetworkChaosAction = "partition"
	ActionDelay     NetworkChaosAction = "delay"
	ActionLoss      NetworkChaosAction = "loss"
	ActionNetem     NetworkChaosAction = "netem"
)

// Direction says which packets between the selected pods and the target
// pods are hit: To those from the selected pods to the targets, From
// those from the targets to the selected pods, Both both.
type Direction string

// The directions.
const (
	DirectionTo   Direction = "to"
	DirectionFrom Direction = "from"
	DirectionBoth Direction = "both"
)

// NetworkChaosSpec is a NetworkChaos's spec. In a workflow its Duration
// stays unset (upstream's webhook refuses it there): the template's
// Deadline is how long it lasts.
type NetworkChaosSpec struct {
	PodSelector       `json:",inline"`
	Action            NetworkChaosAction `json:"action"`
	PartitionBehavior string             `json:"partitionBehavior,omitempty"`
	Device            string             `json:"device,omitempty"`
	Duration          *string            `json:"duration,omitempty"`
	// TcParameter, inline upstream.
	Delay           *DelaySpec   `json:"delay,omitempty"`
	Loss            *LossSpec    `json:"loss,omitempty"`
	Direction       Direction    `json:"direction,omitempty"`
	Target          *PodSelector `json:"target,omitempty"`
	TargetDevice    string       `json:"targetDevice,omitempty"`
	ExternalTargets []string     `json:"externalTargets,omitempty"`
}

// DelaySpec is netem's delay: Latency and Jitter as Go durations
// ("50ms"), Correlation a percentage as a string.
type DelaySpec struct {
	Latency     string `json:"latency"`
	Correlation string `json:"correlation,omitempty"`
	Jitter      string `json:"jitter,omitempty"`
}

// LossSpec is netem's loss: Loss a percentage as a string ("10").
type LossSpec struct {
	Loss        string `json:"loss"`
	Correlation string `json:"correlation,omitempty"`
}

// PodChaosAction is what a PodChaos does to the pods.
type PodChaosAction string

// The pod actions. An export uses PodFailure only (killInjection says
// why).
const (
	PodKill       PodChaosAction = "pod-kill"
	PodFailure    PodChaosAction = "pod-failure"
	ContainerKill PodChaosAction = "container-kill"
)

// PodChaosSpec is a PodChaos's spec (upstream: ContainerSelector inline,
// itself PodSelector inline plus containerNames).
type PodChaosSpec struct {
	PodSelector    `json:",inline"`
	ContainerNames []string       `json:"containerNames,omitempty"`
	Action         PodChaosAction `json:"action"`
	Duration       *string        `json:"duration,omitempty"`
	GracePeriod    int64          `json:"gracePeriod,omitempty"`
}

// SelectorMode says how many of the selected pods are hit.
type SelectorMode string

// ModeAll hits every selected pod; an export uses no other mode, since
// each selector names exactly the pods of the lab's members.
const ModeAll SelectorMode = "all"

// PodSelector selects pods and says how many of them to hit.
type PodSelector struct {
	Selector PodSelectorSpec `json:"selector"`
	Mode     SelectorMode    `json:"mode"`
	Value    string          `json:"value,omitempty"`
}

// PodSelectorSpec selects pods: every given criterion must hold.
type PodSelectorSpec struct {
	Namespaces          []string                   `json:"namespaces,omitempty"`
	FieldSelectors      map[string]string          `json:"fieldSelectors,omitempty"`
	LabelSelectors      map[string]string          `json:"labelSelectors,omitempty"`
	ExpressionSelectors []LabelSelectorRequirement `json:"expressionSelectors,omitempty"`
	AnnotationSelectors map[string]string          `json:"annotationSelectors,omitempty"`
	Nodes               []string                   `json:"nodes,omitempty"`
	Pods                map[string][]string        `json:"pods,omitempty"`
	NodeSelectors       map[string]string          `json:"nodeSelectors,omitempty"`
	PodPhaseSelectors   []string                   `json:"podPhaseSelectors,omitempty"`
}

// LabelSelectorRequirement mirrors Kubernetes' metav1 type of that name:
// Operator is In, NotIn, Exists or DoesNotExist.
type LabelSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}
