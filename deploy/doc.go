// Package deploy holds no code: it is where the lab's deployment files
// live, and its tests check them without a cluster or a VM (README.md says
// what was validated how, and that nothing here ran on real Kubernetes or
// real hosts).
//
//   - k8s/: manifests and their kustomization (namespace, credentials
//     placeholder, Redis, the nodes as a StatefulSet with the agent as a
//     sidecar, the gateways as a Deployment). The tests decode every
//     document strictly into the k8s.io/api types, check that the
//     kustomization lists every file, that the pieces refer to each other
//     (selectors, Services, ports, probes, Secrets, volumes, the labels
//     `mpim chaos export` selects by), and that every command line parses
//     with the real mpim binary's flags.
//   - systemd/: units for the agent, a node and a gateway, and the
//     EnvironmentFile example; the tests parse their command lines the same
//     way and run systemd-analyze verify where it exists.
//   - grafana/: the dashboard of docs/observability.md.
package deploy
