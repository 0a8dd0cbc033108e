//go:build tools

// Package tools pins the real pd-server into this wrapper module so that
// `go build github.com/tikv/pd/cmd/pd-server` resolves through the Go module
// proxy (reference/pd-keyspace-api.md §6: `go install pkg@version` fails
// because PD's go.mod carries a replace directive).
package tools

import _ "github.com/tikv/pd/cmd/pd-server"
