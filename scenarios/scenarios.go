// Package scenarios is the built-in library of chaos scenarios, one YAML
// file each, embedded in the binary so that `mpim chaos run NAME` needs no
// files on disk. Package mpim/chaos/scenario reads them (Builtin, List);
// README.md describes the format and what each scenario teaches.
package scenarios

import "embed"

// FS holds the library's scenario files, named NAME.yaml.
//
//go:embed *.yaml
var FS embed.FS
