// Command pd-bootstrap bootstraps a single pd-server that runs without TiKV,
// so that PD's keyspace API (behind BootstrapChecker) starts answering.
//
// It follows reference/pd-keyspace-api.md §5.2 / §10.1: read the cluster id
// from GET /pd/api/v1/cluster, then call the gRPC /pdpb.PD/Bootstrap with one
// synthetic store and one region with a single peer. ALREADY_BOOTSTRAPPED is
// success, so the command is idempotent.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func clusterID(httpAddr string) (uint64, error) {
	resp, err := http.Get("http://" + httpAddr + "/pd/api/v1/cluster")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /pd/api/v1/cluster: HTTP %d", resp.StatusCode)
	}
	// The id is above 2^53: decode into uint64 directly, never via float64.
	var body struct {
		ID uint64 `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	if body.ID == 0 {
		return 0, fmt.Errorf("cluster id is 0")
	}
	return body.ID, nil
}

func main() {
	addr := flag.String("pd", "127.0.0.1:2379", "PD client address (host:port)")
	timeout := flag.Duration("timeout", 60*time.Second, "overall deadline")
	flag.Parse()

	deadline := time.Now().Add(*timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		lastErr = bootstrap(*addr)
		if lastErr == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "pd-bootstrap: %v\n", lastErr)
	os.Exit(1)
}

func bootstrap(addr string) error {
	id, err := clusterID(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// grpc v1.62 (pinned by PD's dependency graph) predates grpc.NewClient;
	// DialContext is non-blocking here, the RPC below carries the deadline.
	conn, err := grpc.DialContext(ctx, addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := pdpb.NewPDClient(conn)
	resp, err := client.Bootstrap(ctx, &pdpb.BootstrapRequest{
		Header: &pdpb.RequestHeader{ClusterId: id},
		Store:  &metapb.Store{Id: 1, Address: "mock://tikv-1:1"},
		Region: &metapb.Region{Id: 2, Peers: []*metapb.Peer{{Id: 3, StoreId: 1}}},
	})
	if err != nil {
		// A follower or a server still electing answers Unavailable: retry.
		return err
	}
	if h := resp.GetHeader(); h != nil && h.GetError() != nil {
		e := h.GetError()
		if e.GetType() == pdpb.ErrorType_ALREADY_BOOTSTRAPPED || strings.Contains(e.GetMessage(), "already bootstrapped") {
			fmt.Println("pd-bootstrap: cluster already bootstrapped")
			return nil
		}
		return fmt.Errorf("bootstrap: %s: %s", e.GetType(), e.GetMessage())
	}
	fmt.Printf("pd-bootstrap: bootstrapped cluster %d\n", id)
	return nil
}
