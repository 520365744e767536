//go:build tools

// The upstream e2e suite (e2e.test) is built with `go test -c k8s.io/kubernetes/test/e2e`;
// importing its test's packages here keeps their requirements in go.mod and go.sum.
package tools

import (
	_ "k8s.io/kubernetes/test/e2e"
	_ "k8s.io/kubernetes/test/e2e/network"
	_ "k8s.io/kubernetes/test/e2e/network/netpol"
)
