// Command upstreamcheck decodes `mpim chaos export` files strictly into
// Chaos Mesh's own Go API types and runs its workflow webhook's
// ValidateCreate on them: the check behind chaos/export's mirrored types,
// against the upstream module itself. It is a module of its own, outside
// the mpim module and its tests, because that API package brings
// controller-runtime, client-go and k8s.io modules of another release.
//
//	mkdir /tmp/exports
//	for s in $(mpim chaos list | awk '{print $1}'); do
//	  mpim chaos export --to chaos-mesh $s --leader n1 -o /tmp/exports/$s.yaml
//	done
//	cd chaos/export/upstreamcheck && go run . /tmp/exports
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: upstreamcheck DIR (of mpim chaos export files, *.yaml)")
		os.Exit(2)
	}
	files, _ := filepath.Glob(filepath.Join(os.Args[1], "*.yaml"))
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "upstreamcheck: no *.yaml in", os.Args[1])
		os.Exit(2)
	}
	bad := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Println(f, err)
			bad++
			continue
		}
		var w v1alpha1.Workflow
		if err := yaml.UnmarshalStrict(b, &w); err != nil {
			fmt.Println(f, "does not decode strictly:", err)
			bad++
			continue
		}
		if _, err := w.ValidateCreate(context.Background(), &w); err != nil {
			fmt.Println(f, "refused by the workflow webhook:", err)
			bad++
			continue
		}
		fmt.Println(f, "ok:", len(w.Spec.Templates), "templates")
	}
	fmt.Printf("%d passed, %d failed\n", len(files)-bad, bad)
	if bad > 0 {
		os.Exit(1)
	}
}
