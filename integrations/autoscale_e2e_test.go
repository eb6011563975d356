package integrations

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/client"
	"github.com/vigilhq/vigil/vigiltest"
	"github.com/vigilhq/vigil/vigiltest/vcsim"
)

// backend is a real HTTP server that counts the requests it answers.
type backend struct {
	addr string
	hits atomic.Int64
}

func startBackend(t *testing.T, addr, name string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("backend %s on %s: %v", name, addr, err)
	}
	b := &backend{addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b.hits.Add(1)
		_, _ = io.WriteString(w, name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return b
}

// e2e drives a `vigil serve` through its API and CLI.
type e2e struct {
	t  *testing.T
	s  *vigiltest.Server
	cl *client.Client
}

func (e *e2e) cli(stdin string, args ...string) string {
	e.t.Helper()
	out, errOut, code := e.s.CLI(e.t, stdin, args...)
	if code != 0 {
		e.t.Fatalf("vigil %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (e *e2e) events(id string) []client.EventRecord {
	e.t.Helper()
	page, err := e.cl.ListEvents(context.Background(), client.EventFilter{EventID: id, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]client.EventRecord, 0, len(page.Events))
	for _, raw := range page.Events {
		var ev struct {
			Data client.EventRecord `json:"data"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, ev.Data)
	}
	return out
}

type poolSpec struct {
	Servers []struct {
		IP       string `json:"ip"`
		Port     int    `json:"port"`
		Hostname string `json:"hostname"`
		Enabled  *bool  `json:"enabled"`
	} `json:"servers"`
}

func (e *e2e) pool(name string) poolSpec {
	e.t.Helper()
	obj, err := e.cl.Get(context.Background(), "Pool", name)
	if err != nil {
		e.t.Fatal(err)
	}
	var p poolSpec
	if err := json.Unmarshal(obj.Spec, &p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// outputs are the autoscale actions' outputs on the alerts of an
// AlertConfig.
func (e *e2e) outputs(config string) []string {
	e.t.Helper()
	ctx := context.Background()
	list, err := e.cl.ListAlerts(ctx, client.AlertFilter{Config: config})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, a := range list {
		full, err := e.cl.GetAlert(ctx, a.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, o := range full.Actions {
			if o.Kind == "autoscale" && o.Output != "" {
				out = append(out, o.Output)
			}
		}
	}
	return out
}

func (e *e2e) eventually(what string, timeout time.Duration, ok func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s\nvigil serve's log:\n%s", what, tail(e.s.Logs(), 6000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func anyContains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestAutoscaleEndToEnd is the whole loop with real processes: `vigil
// serve` proxies a virtual service to a pool of one real backend; the
// pool's load raises an alert whose ActionGroup hands it to the autoscale
// manager; SERVER_AUTOSCALE_OUT runs the installed vcenter-scale-out
// integration against a simulated vCenter, which clones a VM whose guest
// address is 127.0.0.2, where a second real backend listens; the proxy
// then sends traffic to both. The cooldown and max_size hold back further
// scale-outs under load; when the load stops, vcenter-scale-in drains and
// removes the server and destroys the VM, and min_size holds.
func TestAutoscaleEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the ControlScript sandbox needs root")
	}
	sim := vcsim.Start(t)
	// The guest reports its address a while after power-on, as a real
	// one does, so the scale-out runs long enough to follow it live.
	sim.AssignIPsFrom("web-", 1500*time.Millisecond, "127.0.0.2")
	b1 := startBackend(t, "127.0.0.1:0", "one")
	port := b1.addr[strings.LastIndexByte(b1.addr, ':')+1:]
	b2 := startBackend(t, "127.0.0.2:"+port, "two")
	vsAddr := vigiltest.FreeAddr(t)

	s := vigiltest.Start(t, vigilBin, t.TempDir(), nil)
	cl, err := client.New(client.Options{Addr: s.API, Token: s.Token})
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{t: t, s: s, cl: cl}

	// The Secret, then the integrations as a user installs them.
	ca, _ := json.Marshal(sim.CertificatePEM())
	e.cli(fmt.Sprintf("kind: Secret\nname: vcenter\nspec:\n  data:\n    vcenter_url: %s\n    vcenter_user: %s\n    vcenter_password: %s\n    vcenter_ca: %s\n",
		sim.URL, sim.User, sim.Password, ca), "apply", "-f", "-")
	out := e.cli("", "integrations", "install", "vcenter-scale-out", "--set", "VCENTER_TEMPLATE="+vcsim.Template,
		"--set", "SERVER_PORT="+port, "--set", "IP_TIMEOUT=60", "--set", "POLL_INTERVAL=0.2")
	for _, want := range []string{"ControlScript/vcenter-scale-out created", "ActionGroup/vcenter-scale-out created", "AlertConfig/vcenter-scale-out created"} {
		if !strings.Contains(out, want) {
			t.Fatalf("install printed %q, want %q", out, want)
		}
	}
	e.cli("", "integrations", "install", "vcenter-scale-in", "--set", "DRAIN_SECONDS=1", "--set", "POLL_INTERVAL=0.2")
	// Installing again keeps what was set and changes what is given.
	out, errOut, code := s.CLI(t, "", "integrations", "install", "vcenter-scale-out", "--set", "IP_TIMEOUT=90")
	if code != 0 || !strings.Contains(out, "ControlScript/vcenter-scale-out updated") ||
		!strings.Contains(errOut, "kept from the installed ControlScript vcenter-scale-out: VCENTER_TEMPLATE, SERVER_PORT, POLL_INTERVAL") {
		t.Fatalf("install again: %d %q %q", code, out, errOut)
	}
	cs, err := cl.Get(context.Background(), "ControlScript", "vcenter-scale-out")
	if err != nil {
		t.Fatal(err)
	}
	var csSpec struct{ Env map[string]string }
	_ = json.Unmarshal(cs.Spec, &csSpec)
	if csSpec.Env["VCENTER_TEMPLATE"] != vcsim.Template || csSpec.Env["IP_TIMEOUT"] != "90" || csSpec.Env["SERVER_PORT"] != port {
		t.Fatalf("env after installing again: %v", csSpec.Env)
	}

	policy := func(maxSize int, cooldown string) string {
		return fmt.Sprintf(`kind: AutoscalePolicy
name: web
spec: {min_size: 1, max_size: %d, scaleout_alertconfigs: [web-load], scalein_alertconfigs: [web-idle],
       scaleout_cooldown: %s, scalein_cooldown: 0s}
`, maxSize, cooldown)
	}
	e.cli(policy(3, "120s")+fmt.Sprintf(`---
kind: Pool
name: web
spec:
  servers: [{ip: 127.0.0.1, port: %s}]
  autoscale_policy: web
  metrics_interval: 300ms
---
kind: VirtualService
name: shop
spec: {listen: "%s", pool: web, access_log: false}
---
kind: ActionGroup
name: autoscale
spec: {autoscale: true}
---
kind: AlertConfig
name: web-load
spec:
  events: [POOL_METRICS]
  obj_type: pool
  obj_name: web
  condition: details.pool_metrics_details.requests_per_sec > 20.0
  throttle: 0s
  action_group: autoscale
---
kind: AlertConfig
name: web-idle
spec:
  events: [POOL_METRICS]
  obj_type: pool
  obj_name: web
  condition: details.pool_metrics_details.requests_per_sec < 1.0
  throttle: 0s
  action_group: autoscale
`, port, vsAddr), "apply", "-f", "-")

	// Load: a steady stream of requests through the virtual service.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var failed atomic.Int64
	hc := &http.Client{Timeout: 5 * time.Second}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, err := hc.Get("http://" + vsAddr + "/")
				if err != nil {
					failed.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	stopLoad := func() {
		if !stop.Swap(true) {
			wg.Wait()
		}
	}
	defer stopLoad()

	// The scale-out's progress lines arrive while it runs.
	live := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		var id string
		for id == "" && ctx.Err() == nil {
			list, _ := cl.ListExecutions(ctx, "vcenter-scale-out", "", 10)
			if len(list) > 0 {
				id = list[0].ID
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		seen := ""
		_, _ = cl.FollowExecutionLogs(ctx, id, func(_ string, data []byte) error {
			if strings.Contains(string(data), "clone started") && seen == "" {
				ex, err := cl.GetExecution(ctx, id)
				if err == nil {
					seen = ex.Status
				}
			}
			return nil
		})
		live <- seen
	}()

	// Scale-out: one VM cloned, its server added, traffic on both.
	e.eventually("the pool to get the cloned server", 90*time.Second, func() bool { return len(e.pool("web").Servers) == 2 })
	added := e.pool("web").Servers[1]
	if added.IP != "127.0.0.2" || fmt.Sprint(added.Port) != port || !strings.HasPrefix(added.Hostname, "web-") {
		t.Fatalf("added server %+v", added)
	}
	clones := func() []vcsim.VM {
		var out []vcsim.VM
		for _, vm := range sim.VMs("web-") {
			if !vm.Template {
				out = append(out, vm)
			}
		}
		return out
	}
	if vms := clones(); len(vms) != 1 || vms[0].Name != added.Hostname || vms[0].PowerState != "poweredOn" || vms[0].IP != "127.0.0.2" {
		t.Fatalf("VMs %+v, want one powered-on %s at 127.0.0.2", vms, added.Hostname)
	}
	select {
	case status := <-live:
		if status != "running" {
			t.Fatalf("the progress line \"clone started\" arrived with the execution %q, want running", status)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("following the scale-out's logs did not end")
	}
	before := b2.hits.Load()
	e.eventually("traffic on the new server", 20*time.Second, func() bool { return b2.hits.Load() > before+20 })
	one := b1.hits.Load()
	e.eventually("traffic on the first server still", 10*time.Second, func() bool { return b1.hits.Load() > one+20 })
	e.eventually("SERVER_AUTOSCALE_OUT_COMPLETE", 10*time.Second, func() bool { return len(e.events("SERVER_AUTOSCALE_OUT_COMPLETE")) == 1 })

	// Under load still: the cooldown holds the next scale-out back.
	e.eventually("a scale-out skipped for the cooldown", 20*time.Second, func() bool {
		return anyContains(e.outputs("web-load"), "skipped: scale-out cooldown until")
	})
	// Without a cooldown, max_size 2 holds it back.
	e.cli(policy(2, "0s"), "apply", "-f", "-")
	e.eventually("a scale-out skipped at max_size", 20*time.Second, func() bool {
		return anyContains(e.outputs("web-load"), "skipped: at max_size 2")
	})
	if n := len(e.events("SERVER_AUTOSCALE_OUT")); n != 1 {
		t.Fatalf("%d SERVER_AUTOSCALE_OUT under load, want 1", n)
	}
	if n := sim.Clones(); n != 1 {
		t.Fatalf("%d clones, want 1", n)
	}

	// The load stops: scale-in drains and removes the server, destroys the VM.
	stopLoad()
	e.eventually("the pool back to its first server", 90*time.Second, func() bool {
		p := e.pool("web")
		return len(p.Servers) == 1 && p.Servers[0].IP == "127.0.0.1"
	})
	e.eventually("the VM destroyed", 30*time.Second, func() bool { return len(clones()) == 0 })
	e.eventually("SERVER_AUTOSCALE_IN_COMPLETE", 10*time.Second, func() bool { return len(e.events("SERVER_AUTOSCALE_IN_COMPLETE")) == 1 })
	in := e.events("SERVER_AUTOSCALE_IN")
	if len(in) != 1 {
		t.Fatalf("%d SERVER_AUTOSCALE_IN, want 1", len(in))
	}
	var info struct {
		Candidates []struct {
			IP       struct{ Addr string } `json:"ip"`
			Hostname string                `json:"hostname"`
		} `json:"scalein_server_candidates"`
	}
	if err := json.Unmarshal(in[0].EventDetails["server_autoscalein_info"], &info); err != nil ||
		len(info.Candidates) != 1 || info.Candidates[0].IP.Addr != "127.0.0.2" || info.Candidates[0].Hostname != added.Hostname {
		t.Fatalf("server_autoscalein_info %s (%v)", in[0].EventDetails["server_autoscalein_info"], err)
	}
	// Idle still: min_size 1 holds.
	e.eventually("a scale-in skipped at min_size", 20*time.Second, func() bool {
		return anyContains(e.outputs("web-idle"), "skipped: at min_size 1")
	})
	if n := len(e.events("SERVER_AUTOSCALE_IN")); n != 1 {
		t.Fatalf("%d SERVER_AUTOSCALE_IN, want 1", n)
	}
	for _, id := range []string{"SERVER_AUTOSCALE_OUT_FAILED", "SERVER_AUTOSCALE_IN_FAILED"} {
		if n := len(e.events(id)); n != 0 {
			t.Fatalf("%d %s", n, id)
		}
	}
}
