// The test cluster's own small image program: the pod sandbox (pause) and the
// network probes of tests/e2e. Standard library only.
module stowage.dev/hack/kube-tools/probe

go 1.25.0
