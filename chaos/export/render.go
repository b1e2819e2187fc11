package export

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// build names the templates and lays out the workflow: a Parallel entry
// whose children each wait (Suspend) until their injection's start, then
// inject it for its length (the chaos template's deadline, after which
// Chaos Mesh removes the chaos). Injections at 0s need no wait.
func (x *exporter) build(injections []injection) *Export {
	name := "mpim-" + k8sName(x.sc.Name)
	e := &Export{Scenario: x.sc.Name, Notes: x.notes}
	e.Workflow = Workflow{APIVersion: APIVersion, Kind: "Workflow",
		Metadata: ObjectMeta{Name: name, Namespace: x.cfg.Namespace,
			Labels:      map[string]string{LabelPartOf: PartOf},
			Annotations: map[string]string{"mpim/scenario": x.sc.Name}},
		Spec: WorkflowSpec{Entry: name}}
	entry := Template{Name: name, Type: TypeParallel}
	var templates []Template
	for i, in := range injections {
		stem := "f" + strconv.Itoa(i+1)
		top := stem + "-" + in.verb
		deadline := duration(in.End - in.Start)
		child := top
		if in.Start > 0 {
			wait := Template{Name: stem + "-wait", Type: TypeSuspend, Deadline: duration(in.Start)}
			serial := Template{Name: stem, Type: TypeSerial, Children: []string{wait.Name, top}}
			templates = append(templates, serial, wait)
			child = stem
		}
		if len(in.chaos) == 1 {
			t := in.chaos[0]
			t.Name, t.Deadline = top, deadline
			templates = append(templates, t)
		} else {
			par := Template{Name: top, Type: TypeParallel}
			var parts []Template
			for j, t := range in.chaos {
				t.Name, t.Deadline = top+"-"+strconv.Itoa(j+1), deadline
				par.Children = append(par.Children, t.Name)
				parts = append(parts, t)
			}
			templates = append(templates, par)
			templates = append(templates, parts...)
		}
		entry.Children = append(entry.Children, child)
		in.Template, in.Resources = top, len(in.chaos)
		e.Schedule = append(e.Schedule, in.Entry)
	}
	e.Workflow.Spec.Templates = append([]Template{entry}, templates...)
	return e
}

func duration(d time.Duration) *string {
	s := d.String()
	return &s
}

var notName = regexp.MustCompile(`[^a-z0-9-]+`)

// k8sName turns a scenario name into a DNS label fragment.
func k8sName(s string) string {
	s = strings.Trim(notName.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 40 {
		s = strings.TrimRight(s[:40], "-")
	}
	if s == "" {
		s = "scenario"
	}
	return s
}

// YAML is the export as one YAML document, for kubectl apply, headed by
// comments that say what it injects when and what differs from a lab run.
func (e *Export) YAML(command string) ([]byte, error) {
	body, err := yaml.Marshal(e.Workflow)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Scenario %s as a Chaos Mesh Workflow", e.Scenario)
	if command != "" {
		fmt.Fprintf(&b, ", written by `%s`", command)
	}
	fmt.Fprintf(&b, ".\n# Apply it once the lab of deploy/k8s runs in namespace %s, on a cluster with\n", e.Workflow.Metadata.Namespace)
	b.WriteString("# Chaos Mesh: kubectl apply -f FILE. The workflow starts at once; its times\n")
	b.WriteString("# count from then. It carries the faults only: run your own clients, the\n")
	b.WriteString("# workload and checks of `mpim chaos run` are not part of it.\n")
	b.WriteString("#\n# Pods: node nI is mpim-node-(I-1) (label " + LabelPodName + "),\n")
	b.WriteString("# redis the pod labelled " + LabelComponent + "=" + ComponentRedis + ".\n#\n# Schedule:\n")
	for _, s := range e.Schedule {
		res := ""
		if s.Resources > 1 {
			res = fmt.Sprintf(" x%d", s.Resources)
		}
		fmt.Fprintf(&b, "#   %6s - %-6s %-16s %s%s  <- %s\n", s.Start, s.End, s.Template, s.Kind, res, strings.Join(s.Faults, "; "))
	}
	if len(e.Notes) > 0 {
		b.WriteString("#\n# Notes:\n")
		for _, n := range e.Notes {
			b.WriteString(wrapComment(n, "#   - ", "#     ", 76))
		}
	}
	b.WriteString("---\n")
	b.Write(body)
	return b.Bytes(), nil
}

// wrapComment wraps s into comment lines of at most width characters.
func wrapComment(s, first, rest string, width int) string {
	var b strings.Builder
	line := first
	fresh := true
	for _, w := range strings.Fields(s) {
		if !fresh && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line, fresh = rest, true
		}
		if !fresh {
			line += " "
		}
		line += w
		fresh = false
	}
	b.WriteString(line + "\n")
	return b.String()
}
