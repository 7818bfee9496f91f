// Package redistest connects the module's tests to a real Redis, the same
// way everywhere: $REDIS_URL (default the local server); without a
// reachable server a test is skipped, unless KEYGATE_REQUIRE_REDIS=1 (as
// in CI) makes it fail, so CI never silently skips the Redis tests. A
// Redis Cluster is found at $KEYGATE_REDIS_CLUSTER (a comma list of
// nodes), required by KEYGATE_REQUIRE_REDIS_CLUSTER=1.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// URL is where the tests find Redis.
func URL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Client returns a client of the test Redis, closed after the test, or
// skips (fails under KEYGATE_REQUIRE_REDIS=1) when none answers.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(URL())
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	opts.ContextTimeoutEnabled = true
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		if os.Getenv("KEYGATE_REQUIRE_REDIS") == "1" {
			t.Fatalf("KEYGATE_REQUIRE_REDIS=1 but Redis at %s is unreachable: %v", URL(), err)
		}
		t.Skipf("no Redis at %s (%v); set REDIS_URL to run the Redis tests", URL(), err)
	}
	return client
}

// Cluster returns a client of the test Redis Cluster, closed after the
// test, or skips (fails under KEYGATE_REQUIRE_REDIS_CLUSTER=1) when none
// is configured or answers.
func Cluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	nodes := os.Getenv("KEYGATE_REDIS_CLUSTER")
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("KEYGATE_REQUIRE_REDIS_CLUSTER") == "1" {
			t.Fatalf("KEYGATE_REQUIRE_REDIS_CLUSTER=1 but "+format, args...)
		}
		t.Skipf(format, args...)
	}
	if nodes == "" {
		skip("KEYGATE_REDIS_CLUSTER names no Redis Cluster; set it (host:port,...) to run the Cluster tests")
	}
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(nodes, ","), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() }); err != nil {
		skip("the Redis Cluster at %s is unreachable: %v", nodes, err)
	}
	return client
}

// Name returns a name no other test uses, "kgtest-<kind>-<random>", for a
// namespace or key prefix, and deletes every key containing it after the
// test.
func Name(t testing.TB, client redis.UniversalClient, kind string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "kgtest-" + kind + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		clean := func(ctx context.Context, c redis.UniversalClient) error {
			iter := c.Scan(ctx, 0, "*"+name+"*", 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
			return nil
		}
		if cc, ok := client.(*redis.ClusterClient); ok { // a SCAN reaches one node
			_ = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return clean(ctx, c) })
			return
		}
		_ = clean(ctx, client)
	})
	return name
}

// Server starts a private redis-server on a free loopback port with the
// given extra arguments (for example "--maxmemory-policy",
// "allkeys-lru"), stopped after the test, and returns a client of it
// (which honours context deadlines) and the server's process. It skips
// without a redis-server binary, unless KEYGATE_REQUIRE_REDIS=1.
func Server(t testing.TB, args ...string) (*redis.Client, *os.Process) {
	t.Helper()
	bin := serverBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(bin, append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", t.TempDir()}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for client.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d did not start", port)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return client, cmd.Process
}

// serverBinary finds redis-server, or skips (fails under
// KEYGATE_REQUIRE_REDIS=1).
func serverBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("KEYGATE_REQUIRE_REDIS") == "1" {
			t.Fatalf("KEYGATE_REQUIRE_REDIS=1 but redis-server is not installed: %v", err)
		}
		t.Skipf("redis-server is not installed: %v", err)
	}
	return bin
}

// Deployments are the test Redis deployments a suite runs on, by name:
// the single node ([Client]) and the Cluster ([Cluster]).
var Deployments = []struct {
	Name    string
	Connect func(t testing.TB) redis.UniversalClient
}{
	{"node", func(t testing.TB) redis.UniversalClient { return Client(t) }},
	{"cluster", func(t testing.TB) redis.UniversalClient { return Cluster(t) }},
}

// PrivateCluster is a Redis Cluster of three masters, no replicas, on
// loopback ports of its own, started by [StartCluster] for a test that
// stops and restarts its nodes. Nodes keep their data on disk (append
// only, fsync always), so a restarted master comes back with its slots
// and keys.
type PrivateCluster struct {
	// Addrs are the masters' host:port.
	Addrs []string
	t     testing.TB
	bin   string
	args  [][]string
	cmds  []*exec.Cmd
	nodes []*redis.Client // one per node, reconnecting after a restart
}

// StartCluster starts a [PrivateCluster] with the given extra
// redis-server arguments on every node, stopped after the test. It skips
// without a redis-server binary, unless KEYGATE_REQUIRE_REDIS=1.
func StartCluster(t testing.TB, args ...string) *PrivateCluster {
	t.Helper()
	c := &PrivateCluster{t: t, bin: serverBinary(t)}
	t.Cleanup(func() {
		for _, cmd := range c.cmds {
			if cmd != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		}
	})
	for i := range 3 {
		port := clusterPort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		c.Addrs = append(c.Addrs, addr)
		c.args = append(c.args, append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--dir", t.TempDir(), "--save", "", "--appendonly", "yes", "--appendfsync", "always",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"}, args...))
		c.cmds = append(c.cmds, nil)
		node := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = node.Close() })
		c.nodes = append(c.nodes, node)
		c.Start(i)
	}
	ctx := context.Background()
	first := c.nodes[0]
	for i, addr := range c.Addrs {
		node := c.nodes[i]
		lo, hi := i*16384/3, (i+1)*16384/3-1
		if err := node.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("assigning slots to %s: %v", addr, err)
		}
		// Distinct epochs, as redis-cli gives them, so that no node has
		// to settle a collision after joining.
		if err := node.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			t.Fatalf("setting the epoch of %s: %v", addr, err)
		}
		if i > 0 {
			host, port, _ := net.SplitHostPort(addr)
			if err := first.ClusterMeet(ctx, host, port).Err(); err != nil {
				t.Fatalf("joining %s: %v", addr, err)
			}
		}
	}
	// Every node must say the cluster is ok and know every master's
	// slots before a client loads its map from any of them.
	deadline := time.Now().Add(20 * time.Second)
	for i, node := range c.nodes {
		for {
			info, _ := node.ClusterInfo(ctx).Result()
			shards, err := node.ClusterShards(ctx).Result()
			if strings.Contains(info, "cluster_state:ok") && err == nil && len(shards) == len(c.Addrs) &&
				!slices.ContainsFunc(shards, func(s redis.ClusterShard) bool { return len(s.Slots) == 0 }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: the cluster did not form: %s", c.Addrs[i], info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c
}

// clusterPort returns a free loopback port whose cluster bus port
// (+10000) is free too.
func clusterPort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if port+10000 > 65535 {
			continue
		}
		if bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
			_ = bus.Close()
			return port
		}
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

// Listening returns the nodes on which channel has a subscriber.
func (c *PrivateCluster) Listening(channel string) []int {
	c.t.Helper()
	var nodes []int
	for i, node := range c.nodes {
		subs, err := node.PubSubNumSub(context.Background(), channel).Result()
		if err == nil && subs[channel] > 0 {
			nodes = append(nodes, i)
		}
	}
	return nodes
}

// Client returns a client of the cluster, closed after the test, that
// fails at once on a node that is down (no retry, a short dial timeout).
func (c *PrivateCluster) Client() *redis.ClusterClient {
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, ContextTimeoutEnabled: true,
		DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	c.t.Cleanup(func() { _ = client.Close() })
	return client
}

// Start starts node i, which must be stopped, with extra arguments for
// this start, and waits until it answers.
func (c *PrivateCluster) Start(i int, args ...string) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append(slices.Clone(c.args[i]), args...)...)
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.cmds[i] = cmd
	deadline := time.Now().Add(10 * time.Second)
	for c.nodes[i].Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			c.t.Fatalf("redis-server at %s did not start", c.Addrs[i])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill kills node i with SIGKILL, as a crash would.
func (c *PrivateCluster) Kill(i int) {
	c.t.Helper()
	_ = c.cmds[i].Process.Kill()
	_ = c.cmds[i].Wait()
	c.cmds[i] = nil
}

// Pause stops node i with SIGSTOP, as a hung host would: connections
// stay open and nothing answers. Resume undoes it.
func (c *PrivateCluster) Pause(i int) {
	c.t.Helper()
	if err := c.cmds[i].Process.Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = c.cmds[i].Process.Signal(syscall.SIGCONT) })
}

// Resume continues node i after Pause.
func (c *PrivateCluster) Resume(i int) {
	c.t.Helper()
	if err := c.cmds[i].Process.Signal(syscall.SIGCONT); err != nil {
		c.t.Fatal(err)
	}
}
