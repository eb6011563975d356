package integrations

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/vigiltest"
	"github.com/vigilhq/vigil/vigiltest/vcsim"
)

// vcRig is vigil serve, a simulated vCenter, the two vCenter integrations
// installed against it and a pool "shop" with one static server.
type vcRig struct {
	t   *testing.T
	s   *vigiltest.Server
	sim *vcsim.Sim
	dir string
}

const vcPool = "shop"

// vcParams are the parameters the tests install the integrations with:
// short timeouts and polls so that a failure shows in a second.
var vcParams = map[string]string{
	"VCENTER_TEMPLATE": vcsim.Template,
	"SERVER_PORT":      "8080",
	"CLONE_TIMEOUT":    "20",
	"IP_TIMEOUT":       "20",
	"TASK_TIMEOUT":     "20",
	"DRAIN_SECONDS":    "0",
	"POLL_INTERVAL":    "0.05",
}

// startVCenter starts the rig. withCA gives the vcenter Secret the
// simulator's certificate as vcenter_ca; without it VCENTER_INSECURE is
// true unless set says otherwise. set overrides parameters of both
// integrations.
func startVCenter(t *testing.T, withCA bool, set map[string]string) *vcRig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the runner's sandbox needs root")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import pyVmomi").Run(); err != nil {
		t.Skip("no pyVmomi for /usr/bin/python3 (scripts/deps installs python3-pyvmomi)")
	}
	r := &vcRig{t: t, sim: vcsim.Start(t), dir: t.TempDir()}
	r.s = vigiltest.Start(t, vigilBin, t.TempDir(), nil)

	var docs []string
	add := func(kind, name string, spec any) {
		b, err := json.Marshal(map[string]any{"kind": kind, "name": name, "spec": spec})
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	data := map[string]string{"vcenter_url": r.sim.URL, "vcenter_user": r.sim.User, "vcenter_password": r.sim.Password}
	if withCA {
		data["vcenter_ca"] = r.sim.CertificatePEM()
	}
	add("Secret", "vcenter", map[string]any{"data": data})
	add("Pool", vcPool, map[string]any{"servers": []map[string]any{{"ip": "10.0.0.1", "port": 8080, "hostname": "static-1"}}})
	for _, name := range []string{"vcenter-scale-out", "vcenter-scale-in"} {
		in, err := Get(name)
		if err != nil {
			t.Fatal(err)
		}
		vals := map[string]string{}
		if !withCA {
			vals["VCENTER_INSECURE"] = "true"
		}
		for _, p := range in.Parameters {
			if v, ok := vcParams[p.Name]; ok {
				vals[p.Name] = v
			}
			if v, ok := set[p.Name]; ok {
				vals[p.Name] = v
			}
		}
		objs, err := in.Build(vals)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			var spec any
			if err := json.Unmarshal(o.Spec, &spec); err != nil {
				t.Fatal(err)
			}
			add(o.Kind, o.Name, spec)
		}
	}
	if out, errOut, code := r.s.CLI(t, strings.Join(docs, "\n---\n"), "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %d %s %s", code, out, errOut)
	}
	return r
}

// alertFile writes alert to a file and returns its path.
func (r *vcRig) alertFile(alert map[string]any) string {
	r.t.Helper()
	b, err := json.Marshal(alert)
	if err != nil {
		r.t.Fatal(err)
	}
	f := filepath.Join(r.dir, fmt.Sprintf("alert-%d.json", time.Now().UnixNano()))
	if err := os.WriteFile(f, b, 0o600); err != nil {
		r.t.Fatal(err)
	}
	return f
}

// run runs script with alert through vigil and returns its output and exit code.
func (r *vcRig) run(script string, alert map[string]any) (string, int) {
	r.t.Helper()
	out, errOut, code := r.s.CLI(r.t, "", "run", script, "--alert", r.alertFile(alert), "--wait")
	r.t.Logf("%s (exit %d):\n%s%s", script, code, out, errOut)
	return out + errOut, code
}

type vcServer struct {
	IP       string `json:"ip"`
	Port     int    `json:"port"`
	Hostname string `json:"hostname"`
	Enabled  *bool  `json:"enabled"`
}

func (r *vcRig) servers() []vcServer {
	r.t.Helper()
	out, errOut, code := r.s.CLI(r.t, "", "get", "pool", vcPool, "-o", "json")
	if code != 0 {
		r.t.Fatalf("get pool: %d %s", code, errOut)
	}
	var p struct {
		Spec struct {
			Servers []vcServer `json:"servers"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		r.t.Fatalf("get pool: %v\n%s", err, out)
	}
	return p.Spec.Servers
}

// events returns the event_details of the events with id eventID, in order.
func (r *vcRig) events(eventID string) []map[string]any {
	r.t.Helper()
	out, errOut, code := r.s.CLI(r.t, "", "events", "list", "--event-id", eventID, "-o", "json")
	if code != 0 {
		r.t.Fatalf("events list: %d %s", code, errOut)
	}
	var list []struct {
		Data struct {
			EventDetails map[string]map[string]any `json:"event_details"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		r.t.Fatalf("events list: %v\n%s", err, out)
	}
	var details []map[string]any
	for _, e := range list {
		for _, d := range e.Data.EventDetails {
			details = append(details, d)
		}
	}
	return details
}

func scaleOutAlert(requestID string, n int) map[string]any {
	return map[string]any{
		"name": "vcenter-scale-out", "level": "ALERT_HIGH", "reason": "threshold_exceeded",
		"obj_name": vcPool, "obj_uuid": "pool-0001",
		"events": []map[string]any{{
			"event_id": "SERVER_AUTOSCALE_OUT", "obj_type": "pool", "obj_name": vcPool, "obj_uuid": "pool-0001",
			"report_timestamp": 1764090000,
			"event_details": map[string]any{"server_autoscaleout_info": map[string]any{
				"pool_ref": "pool-0001", "pool": vcPool, "num_scaleout_servers": n, "num_servers_up": 1,
				"alertconfig_name": "shop-busy", "reason": "requests_per_sec above 50", "request_id": requestID,
			}},
		}},
	}
}

// vmsOf returns the simulator's VMs of pool (named <pool>-...).
func (r *vcRig) vmsOf() []vcsim.VM { return r.sim.VMs(vcPool + "-") }

func TestVCenterScaleOut(t *testing.T) {
	r := startVCenter(t, true, nil)
	r.sim.AssignIPs(vcPool+"-", 100*time.Millisecond)
	start := time.Now()
	out, code := r.run("vcenter-scale-out", scaleOutAlert("req-a", 2))
	t.Logf("scale-out of 2 took %s", time.Since(start))
	if code != 0 {
		t.Fatalf("scale-out exited %d", code)
	}
	vms := r.vmsOf()
	if len(vms) != 2 {
		t.Fatalf("VMs: %+v", vms)
	}
	servers := r.servers()
	if len(servers) != 3 || servers[0].Hostname != "static-1" {
		t.Fatalf("pool servers: %+v", servers)
	}
	for i, vm := range vms {
		if vm.PowerState != "poweredOn" || vm.IP == "" || vm.Template {
			t.Fatalf("VM %+v", vm)
		}
		s := servers[i+1]
		if s.Hostname != vm.Name || s.IP != vm.IP || s.Port != 8080 {
			t.Fatalf("server %d is %+v, VM %+v", i+1, s, vm)
		}
	}
	for _, want := range []string{"clone started", "address", "pool updated", "scale-out complete"} {
		if !strings.Contains(out, want) {
			t.Fatalf("no %q progress line", want)
		}
	}
	done := r.events("SERVER_AUTOSCALE_OUT_COMPLETE")
	if len(done) != 1 || done[0]["request_id"] != "req-a" || done[0]["nscaleout"] != float64(2) || done[0]["pool"] != vcPool {
		t.Fatalf("SERVER_AUTOSCALE_OUT_COMPLETE: %+v", done)
	}
	got := done[0]["scaled_out_servers"].([]any)
	first := got[0].(map[string]any)
	if first["hostname"] != vms[0].Name || first["ip"].(map[string]any)["addr"] != vms[0].IP || first["port"] != float64(8080) {
		t.Fatalf("scaled_out_servers: %+v", got)
	}
	r.logPeakMemory()
}

func scaleInAlert(requestID string, candidates ...vcServer) map[string]any {
	var cands []map[string]any
	for _, c := range candidates {
		cands = append(cands, map[string]any{"ip": map[string]any{"addr": c.IP, "type": "V4"}, "port": c.Port, "hostname": c.Hostname})
	}
	return map[string]any{
		"name": "vcenter-scale-in", "level": "ALERT_LOW", "reason": "threshold_exceeded",
		"obj_name": vcPool, "obj_uuid": "pool-0001",
		"events": []map[string]any{{
			"event_id": "SERVER_AUTOSCALE_IN", "obj_type": "pool", "obj_name": vcPool, "obj_uuid": "pool-0001",
			"report_timestamp": 1764093600,
			"event_details": map[string]any{"server_autoscalein_info": map[string]any{
				"pool_ref": "pool-0001", "pool": vcPool, "num_scalein_servers": len(candidates),
				"scalein_server_candidates": cands, "alertconfig_name": "shop-idle",
				"reason": "requests_per_sec below 5", "request_id": requestID,
			}},
		}},
	}
}

// logPeakMemory logs the largest peak_memory of the runs so far and how
// their memory limit was enforced.
func (r *vcRig) logPeakMemory() {
	r.t.Helper()
	out, _, _ := r.s.CLI(r.t, "", "executions", "list", "-o", "json")
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		r.t.Fatalf("executions list: %v\n%s", err, out)
	}
	var peak int64
	var mech string
	for _, it := range list.Items {
		out, _, _ := r.s.CLI(r.t, "", "executions", "show", it.ID, "-o", "json")
		var ex struct {
			PeakMemory  int64             `json:"peak_memory"`
			Enforcement map[string]string `json:"enforcement"`
		}
		if err := json.Unmarshal([]byte(out), &ex); err != nil {
			r.t.Fatalf("executions show: %v\n%s", err, out)
		}
		peak, mech = max(peak, ex.PeakMemory), ex.Enforcement["memory"]
	}
	r.t.Logf("peak memory of %d runs: %.1f MiB (memory limit enforced by %s)", len(list.Items), float64(peak)/(1<<20), mech)
}

func TestVCenterScaleOutTwiceClonesOnce(t *testing.T) {
	r := startVCenter(t, false, map[string]string{"VCENTER_RESOURCE_POOL": "DC0_C0"})
	r.sim.AssignIPs(vcPool+"-", 0)
	alert := scaleOutAlert("req-b", 2)
	if _, code := r.run("vcenter-scale-out", alert); code != 0 {
		t.Fatalf("first run exited %d", code)
	}
	vms, servers := r.vmsOf(), r.servers()
	if len(vms) != 2 || len(servers) != 3 || r.sim.Clones() != 2 {
		t.Fatalf("after the first run: VMs %+v, servers %+v, %d clones", vms, servers, r.sim.Clones())
	}
	out, code := r.run("vcenter-scale-out", alert)
	if code != 0 {
		t.Fatalf("second run exited %d", code)
	}
	if got := r.vmsOf(); !slices.Equal(got, vms) || r.sim.Clones() != 2 {
		t.Fatalf("the second run cloned: VMs %+v, %d clones", got, r.sim.Clones())
	}
	if got := r.servers(); !slices.EqualFunc(got, servers, func(a, b vcServer) bool {
		return a.IP == b.IP && a.Port == b.Port && a.Hostname == b.Hostname
	}) {
		t.Fatalf("the second run changed the pool: %+v, was %+v", got, servers)
	}
	if strings.Count(out, " reuse ") != 2 || strings.Contains(out, "clone started") || !strings.Contains(out, "scale-out complete duplicate=True") {
		t.Fatal("the second run did not report reusing both VMs and a duplicate _COMPLETE")
	}
	if done := r.events("SERVER_AUTOSCALE_OUT_COMPLETE"); len(done) != 1 {
		t.Fatalf("%d SERVER_AUTOSCALE_OUT_COMPLETE events, want 1: %+v", len(done), done)
	}
}

func TestVCenterScaleOutCloneFailsCleansUp(t *testing.T) {
	r := startVCenter(t, false, nil)
	r.sim.AssignIPs(vcPool+"-", 0)
	r.sim.FailClones(1, "datastore LocalDS_0 is full")
	out, code := r.run("vcenter-scale-out", scaleOutAlert("req-c", 3))
	if code == 0 {
		t.Fatal("a failed clone exited 0")
	}
	if r.sim.Clones() != 3 {
		t.Fatalf("%d clones, want 3", r.sim.Clones())
	}
	if n := strings.Count(out, "destroyed vm="); n != 3 {
		t.Fatalf("%d VMs destroyed, want 3 (one whole, two half-made)", n)
	}
	if vms := r.vmsOf(); len(vms) != 0 {
		t.Fatalf("VMs left behind: %+v", vms)
	}
	if servers := r.servers(); len(servers) != 1 {
		t.Fatalf("pool servers: %+v", servers)
	}
	failed := r.events("SERVER_AUTOSCALE_OUT_FAILED")
	if len(failed) != 1 || failed[0]["request_id"] != "req-c" || failed[0]["num_servers"] != float64(3) ||
		!strings.Contains(failed[0]["reason"].(string), "datastore LocalDS_0 is full") {
		t.Fatalf("SERVER_AUTOSCALE_OUT_FAILED: %+v", failed)
	}
	if done := r.events("SERVER_AUTOSCALE_OUT_COMPLETE"); len(done) != 0 {
		t.Fatalf("SERVER_AUTOSCALE_OUT_COMPLETE after a failure: %+v", done)
	}
}

func TestVCenterScaleOutNoIPCleansUp(t *testing.T) {
	r := startVCenter(t, false, map[string]string{"IP_TIMEOUT": "1"})
	start := time.Now()
	_, code := r.run("vcenter-scale-out", scaleOutAlert("req-e", 2))
	if code == 0 {
		t.Fatal("no guest IP exited 0")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("IP_TIMEOUT 1 took %s", d)
	}
	if vms := r.vmsOf(); len(vms) != 0 {
		t.Fatalf("VMs left behind: %+v", vms)
	}
	if r.sim.Clones() != 2 {
		t.Fatalf("%d clones, want 2", r.sim.Clones())
	}
	if servers := r.servers(); len(servers) != 1 {
		t.Fatalf("pool servers: %+v", servers)
	}
	failed := r.events("SERVER_AUTOSCALE_OUT_FAILED")
	if len(failed) != 1 || failed[0]["request_id"] != "req-e" || !strings.Contains(failed[0]["reason"].(string), "no IPv4 address") {
		t.Fatalf("SERVER_AUTOSCALE_OUT_FAILED: %+v", failed)
	}
}

func TestVCenterUntrustedCertificate(t *testing.T) {
	r := startVCenter(t, false, map[string]string{"VCENTER_INSECURE": "false"})
	if _, code := r.run("vcenter-scale-out", scaleOutAlert("req-tls", 1)); code == 0 {
		t.Fatal("an untrusted certificate was accepted")
	}
	failed := r.events("SERVER_AUTOSCALE_OUT_FAILED")
	if len(failed) != 1 || !strings.Contains(failed[0]["reason"].(string), "CERTIFICATE_VERIFY_FAILED") {
		t.Fatalf("SERVER_AUTOSCALE_OUT_FAILED: %+v", failed)
	}
	if r.sim.Clones() != 0 {
		t.Fatalf("%d clones", r.sim.Clones())
	}
}

func TestVCenterScaleIn(t *testing.T) {
	r := startVCenter(t, false, map[string]string{"DRAIN_SECONDS": "2"})
	r.sim.AssignIPs(vcPool+"-", 0)
	if _, code := r.run("vcenter-scale-out", scaleOutAlert("req-d", 2)); code != 0 {
		t.Fatalf("scale-out exited %d", code)
	}
	servers := r.servers()
	if len(servers) != 3 {
		t.Fatalf("pool servers: %+v", servers)
	}
	gone, kept := servers[2], servers[1]

	// The manager names the last server; the script drains it, then
	// removes it, then destroys its VM.
	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	f := r.alertFile(scaleInAlert("req-d-in", gone))
	go func() {
		cmd := exec.Command(r.s.Bin, "run", "vcenter-scale-in", "--alert", f, "--wait")
		cmd.Env = append(os.Environ(), "VIGIL_ADDR="+r.s.API, "VIGIL_TOKEN="+r.s.Token)
		out, err := cmd.CombinedOutput()
		code := -1
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		}
		done <- result{fmt.Sprintf("%s%v", out, err), code}
	}()
	drained := false
	for deadline := time.Now().Add(15 * time.Second); !drained && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, s := range r.servers() {
			if s.Hostname == gone.Hostname && s.Enabled != nil && !*s.Enabled {
				drained = true
			}
		}
	}
	if !drained {
		t.Fatal("the server was never seen disabled in the pool")
	}
	for _, vm := range r.vmsOf() {
		if vm.Name == gone.Hostname && vm.PowerState != "poweredOn" {
			t.Fatalf("the VM went before the drain ended: %+v", vm)
		}
	}
	if n := len(r.vmsOf()); n != 2 {
		t.Fatalf("%d VMs while draining, want 2", n)
	}
	res := <-done
	t.Logf("vcenter-scale-in (exit %d):\n%s", res.code, res.out)
	if res.code != 0 {
		t.Fatalf("scale-in exited %d", res.code)
	}
	for _, want := range []string{"draining", "removed from pool", "powered off vm=" + gone.Hostname, "destroyed vm=" + gone.Hostname} {
		if !strings.Contains(res.out, want) {
			t.Fatalf("no %q progress line", want)
		}
	}
	if got := r.servers(); len(got) != 2 || got[1].Hostname != kept.Hostname {
		t.Fatalf("pool servers after the scale-in: %+v", got)
	}
	if vms := r.vmsOf(); len(vms) != 1 || vms[0].Name != kept.Hostname {
		t.Fatalf("VMs after the scale-in: %+v", vms)
	}
	in := r.events("SERVER_AUTOSCALE_IN_COMPLETE")
	if len(in) != 1 || in[0]["request_id"] != "req-d-in" || in[0]["nscalein"] != float64(1) {
		t.Fatalf("SERVER_AUTOSCALE_IN_COMPLETE: %+v", in)
	}

	// The same request again finds nothing left to do and still reports.
	out, code := r.run("vcenter-scale-in", scaleInAlert("req-d-in", gone))
	if code != 0 || !strings.Contains(out, "no VM vm="+gone.Hostname) || len(r.servers()) != 2 || len(r.vmsOf()) != 1 {
		t.Fatalf("the repeated scale-in: exit %d", code)
	}

	// A server the scale-out did not make is refused, and nothing changes.
	static := r.servers()[0]
	out, code = r.run("vcenter-scale-in", scaleInAlert("req-d-static", static))
	if code == 0 || !strings.Contains(out, "refusing to remove static-1") {
		t.Fatalf("removing a static server: exit %d", code)
	}
	if got := r.servers(); len(got) != 2 || got[0].Enabled != nil {
		t.Fatalf("pool servers after the refusal: %+v", got)
	}
	failed := r.events("SERVER_AUTOSCALE_IN_FAILED")
	if len(failed) != 1 || failed[0]["request_id"] != "req-d-static" {
		t.Fatalf("SERVER_AUTOSCALE_IN_FAILED: %+v", failed)
	}
}

// TestVCenterScaleOutFromEvent publishes SERVER_AUTOSCALE_OUT as the
// autoscale manager would: the integration's AlertConfig runs the script.
func TestVCenterScaleOutFromEvent(t *testing.T) {
	r := startVCenter(t, true, map[string]string{
		"VCENTER_DATACENTER": vcsim.Datacenter, "VCENTER_FOLDER": "", "VCENTER_RESOURCE_POOL": "DC0_C0/Resources",
	})
	r.sim.AssignIPs(vcPool+"-", 0)
	details := `{"server_autoscaleout_info": {"pool_ref": "/api/v1/objects/Pool/shop", "pool": "shop", "num_scaleout_servers": 1, "num_servers_up": 1, "alertconfig_name": "shop-busy", "reason": "busy", "request_id": "req-ev"}}`
	if _, errOut, code := r.s.CLI(t, "", "events", "publish", "SERVER_AUTOSCALE_OUT", "--obj-type", "pool", "--obj-name", vcPool, "--details", details, "--id", "req-ev"); code != 0 {
		t.Fatalf("events publish: %d %s", code, errOut)
	}
	var done []map[string]any
	for deadline := time.Now().Add(30 * time.Second); len(done) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		done = r.events("SERVER_AUTOSCALE_OUT_COMPLETE")
	}
	if len(done) != 1 || done[0]["request_id"] != "req-ev" || done[0]["nscaleout"] != float64(1) {
		out, _, _ := r.s.CLI(t, "", "executions", "list")
		t.Fatalf("SERVER_AUTOSCALE_OUT_COMPLETE: %+v\nexecutions:\n%s", done, out)
	}
	if vms, servers := r.vmsOf(), r.servers(); len(vms) != 1 || len(servers) != 2 || servers[1].Hostname != vms[0].Name {
		t.Fatalf("VMs %+v, servers %+v", vms, servers)
	}
	r.logPeakMemory()
}
