// Package vcsim serves a simulated vCenter for tests: govmomi's simulator
// with its VPX inventory, over TLS on a loopback port, plus a template to
// clone, guest IPs on demand, clones that fail half-way and helpers to
// inspect the virtual machines. Import it from _test.go files only, so the
// simulator stays out of the vigil binary.
//
// The inventory is the VPX model's (one of each, named by the model):
//
//	/DC0                          the datacenter
//	/DC0/vm                       its VM folder (Folder), where clones go by default
//	/DC0/vm/web-template          the template (TemplatePath), powered off, config.template true
//	/DC0/host/DC0_C0              a cluster of three hosts
//	/DC0/host/DC0_C0/Resources    the cluster's root resource pool (ResourcePool)
//	/DC0/host/DC0_H0              a standalone host
//	/DC0/datastore/LocalDS_0      the datastore
//	/DC0/network/VM Network       the network the template's NIC is on
//
// The model's own VMs (DC0_H0_VM0, DC0_H0_VM1, DC0_C0_RP0_VM0,
// DC0_C0_RP0_VM1) are there too, powered on. The template is a clone of
// DC0_C0_RP0_VM0 (one NIC, one disk) on a host of the cluster; like a real
// template it has no resource pool, so a clone of it must name one.
//
// ServiceContent.TenantManager is nil: pyVmomi 6.7 does not know its type
// and cannot read a ServiceContent that has one.
package vcsim

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Inventory paths of the simulated vCenter.
const (
	Datacenter   = "DC0"
	Folder       = "/DC0/vm"
	Cluster      = "/DC0/host/DC0_C0"
	ResourcePool = "/DC0/host/DC0_C0/Resources"
	Template     = "web-template"
	TemplatePath = Folder + "/" + Template
)

// Login of the simulated vCenter.
const (
	User     = "vigil@vsphere.local"
	Password = "vcsim-pass"
)

// VM is what a test sees of a virtual machine.
type VM struct {
	Name       string
	PowerState string // poweredOn, poweredOff or suspended
	IP         string // guest.ipAddress, "" when the guest reported none
	Template   bool
}

// Sim is a running simulated vCenter.
type Sim struct {
	// URL is the SDK endpoint, https://127.0.0.1:<port>/sdk.
	URL      string
	User     string
	Password string

	model  *simulator.Model
	server *simulator.Server

	mu        sync.Mutex
	ready     bool   // the template is made: clones from now on count
	clones    int    // CloneVM_Task calls seen since FailClones
	failAfter int    // clones that succeed before the rest fail; <0: none fail
	failMsg   string // the reason a failing clone gives
	rules     []*ipRule
	nextIP    netip.Addr

	stop chan struct{}
	done chan struct{}
}

type ipRule struct {
	prefix string
	delay  time.Duration
	next   *netip.Addr          // the rule's next address; nil: the shared sequence
	seen   map[string]time.Time // when a VM was first seen powered on
}

// Start serves a simulated vCenter until the test ends.
func Start(tb testing.TB) *Sim {
	tb.Helper()
	m := simulator.VPX()
	m.ServiceContent.TenantManager = nil
	if err := m.Create(); err != nil {
		tb.Fatalf("vcsim: create model: %v", err)
	}
	m.Service.TLS = new(tls.Config)
	s := &Sim{
		User: User, Password: Password, model: m, failAfter: -1, nextIP: netip.MustParseAddr("10.20.0.10"),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	m.Map().Handler = s.handler
	ctx := s.context()
	for _, e := range ctx.Map.All("VirtualMachine") {
		if vm, ok := e.(*simulator.VirtualMachine); ok {
			ctx.WithLock(vm, func() { fillRuntime(vm) })
		}
	}
	m.Map().AddHandler(runtimeFiller{})
	m.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(User, Password)}
	s.server = m.Service.NewServer()
	s.URL = (&url.URL{Scheme: s.server.URL.Scheme, Host: s.server.URL.Host, Path: s.server.URL.Path}).String()
	go s.guestLoop()
	tb.Cleanup(s.close)
	if err := s.makeTemplate(); err != nil {
		tb.Fatalf("vcsim: %v", err)
	}
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
	return s
}

func (s *Sim) close() {
	close(s.stop)
	<-s.done
	s.server.Close()
	s.model.Remove()
}

// CertificatePEM returns the simulator's TLS certificate, PEM-encoded: a
// self-signed CA certificate for 127.0.0.1, ::1 and example.com, so that a
// client given it as its only CA verifies the simulator by its URL.
func (s *Sim) CertificatePEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.server.Certificate().Raw}))
}

// makeTemplate clones DC0_C0_RP0_VM0 into a powered-off template.
func (s *Sim) makeTemplate() error {
	ctx := context.Background()
	u := *s.server.URL
	u.User = url.UserPassword(s.User, s.Password)
	c, err := govmomi.NewClient(ctx, &u, true)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Logout(ctx) //nolint:errcheck // the session ends with the simulator anyway
	f := find.NewFinder(c.Client)
	src, err := f.VirtualMachine(ctx, Folder+"/DC0_C0_RP0_VM0")
	if err != nil {
		return fmt.Errorf("find the template's source: %w", err)
	}
	folder, err := f.Folder(ctx, Folder)
	if err != nil {
		return fmt.Errorf("find %s: %w", Folder, err)
	}
	task, err := src.Clone(ctx, folder, Template, types.VirtualMachineCloneSpec{Template: true})
	if err != nil {
		return fmt.Errorf("clone %s: %w", Template, err)
	}
	if err := task.Wait(ctx); err != nil {
		return fmt.Errorf("clone %s: %w", Template, err)
	}
	return nil
}

// runtimeFiller gives each new VM what a real vCenter always sets and the
// simulator leaves empty: runtime.faultToleranceState and
// runtime.recordReplayState, enums that pyVmomi 6.7 cannot read empty (a
// VM's runtime and summary properties would not parse).
type runtimeFiller struct{}

func (runtimeFiller) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "VigilRuntimeFiller", Value: "runtime-filler"}
}

// PutObject is called as the simulator registers an object, before any
// client can reach it.
func (runtimeFiller) PutObject(_ *simulator.Context, obj mo.Reference) {
	if vm, ok := obj.(*simulator.VirtualMachine); ok {
		fillRuntime(vm)
	}
}

func (runtimeFiller) UpdateObject(*simulator.Context, mo.Reference, []types.PropertyChange) {}

func (runtimeFiller) RemoveObject(*simulator.Context, types.ManagedObjectReference) {}

func fillRuntime(vm *simulator.VirtualMachine) {
	for _, r := range []*types.VirtualMachineRuntimeInfo{&vm.Runtime, &vm.Summary.Runtime} {
		if r.FaultToleranceState == "" {
			r.FaultToleranceState = types.VirtualMachineFaultToleranceStateNotConfigured
		}
		if r.RecordReplayState == "" {
			r.RecordReplayState = types.VirtualMachineRecordReplayStateInactive
		}
	}
}

// context returns a simulator context of its own, so that its locks are
// not mistaken for those of a request in flight.
func (s *Sim) context() *simulator.Context {
	c := *s.model.Service.Context
	return &c
}

// VMs lists the virtual machines whose name starts with prefix, sorted by
// name; "" lists all of them, the template and the model's VMs included.
func (s *Sim) VMs(prefix string) []VM {
	ctx := s.context()
	var out []VM
	for _, e := range ctx.Map.All("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		ctx.WithLock(vm, func() {
			if !strings.HasPrefix(vm.Name, prefix) {
				return
			}
			v := VM{Name: vm.Name, PowerState: string(vm.Runtime.PowerState), IP: vm.Guest.IpAddress}
			if vm.Config != nil {
				v.Template = vm.Config.Template
			}
			out = append(out, v)
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// AssignIPs makes the guest of every powered-on VM whose name starts with
// prefix report an IPv4 address, delay after it was first seen powered on,
// as VMware Tools would once the guest has booted: guest.ipAddress,
// guest.net[0].ipAddress and ipConfig, guest.toolsRunningStatus and
// guest.guestState change together, so a client waiting on the property
// collector or polling sees them. Addresses are handed out in order from
// 10.20.0.10 and a VM keeps its address. Without a call, clones get none,
// as with the simulator alone. When several calls match a VM, the first
// one made decides.
func (s *Sim) AssignIPs(prefix string, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &ipRule{prefix: prefix, delay: delay, seen: map[string]time.Time{}})
}

// AssignIPsFrom is AssignIPs with addresses of its own, handed out in
// order from first (an IPv4 address such as 127.0.0.2, where a test can
// listen for the traffic the VM's server gets). It panics when first is
// not an IP address.
func (s *Sim) AssignIPsFrom(prefix string, delay time.Duration, first string) {
	next := netip.MustParseAddr(first)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &ipRule{prefix: prefix, delay: delay, next: &next, seen: map[string]time.Time{}})
}

// StopIPs ends every AssignIPs; addresses already given stay.
func (s *Sim) StopIPs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// guestLoop gives guests their addresses until the simulator stops.
func (s *Sim) guestLoop() {
	defer close(s.done)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.assign()
		}
	}
}

func (s *Sim) assign() {
	s.mu.Lock()
	rules := len(s.rules)
	s.mu.Unlock()
	if rules == 0 {
		return
	}
	ctx := s.context()
	now := time.Now()
	for _, e := range ctx.Map.All("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		var name string
		var on, hasIP bool
		ctx.WithLock(vm, func() {
			name = vm.Name
			on = vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
			hasIP = vm.Guest.IpAddress != ""
		})
		if !on || hasIP {
			continue
		}
		ip, ok := s.due(name, now)
		if !ok {
			continue
		}
		ctx.AutoUpdate(vm, func() {
			if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
				return
			}
			addr := ip.String()
			vm.Guest.IpAddress = addr
			vm.Guest.HostName = name
			vm.Guest.GuestState = string(types.VirtualMachineGuestStateRunning)
			vm.Guest.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
			vm.Summary.Guest.IpAddress = addr
			vm.Summary.Guest.HostName = name
			if len(vm.Guest.Net) > 0 {
				nic := &vm.Guest.Net[0]
				nic.IpAddress = []string{addr}
				nic.IpConfig = &types.NetIpConfigInfo{IpAddress: []types.NetIpConfigInfoIpAddress{{
					IpAddress: addr, PrefixLength: 24, State: string(types.NetIpConfigInfoIpAddressStatusPreferred),
				}}}
			}
		})
	}
}

// due returns the address of a powered-on VM named name that has none,
// when the first rule that matches it says its delay has passed.
func (s *Sim) due(name string, now time.Time) (netip.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rules {
		if !strings.HasPrefix(name, r.prefix) {
			continue
		}
		first, ok := r.seen[name]
		if !ok {
			r.seen[name] = now
			first = now
		}
		if now.Sub(first) < r.delay {
			return netip.Addr{}, false
		}
		next := &s.nextIP
		if r.next != nil {
			next = r.next
		}
		ip := *next
		*next = ip.Next()
		return ip, true
	}
	return netip.Addr{}, false
}

// FailClones makes clones fail half-way from now on: the first after
// CloneVM_Task calls work, and every later one makes its VM (powered on if
// the clone spec asked for it) and then fails its task with a SystemError
// whose reason is reason, leaving that VM behind, as a real vCenter can
// when a clone fails after its VM was registered (customization or
// power-on failures, a datastore filling up). after < 0 ends it.
func (s *Sim) FailClones(after int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clones, s.failAfter, s.failMsg = 0, after, reason
}

// Clones returns how many CloneVM_Task calls the simulator took since the
// last FailClones (or since it started).
func (s *Sim) Clones() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clones
}

// handler is the registry's method hook: it counts clones and makes those
// that are to fail go to a failingClone. What the hook returns is not used
// for a caller that is logged in (the simulator looks the object up in the
// caller's session first, and that falls back to the inventory), so the
// failingClone is put in the caller's session registry, which is looked at
// first, and takes itself out again as its call starts.
func (s *Sim) handler(ctx *simulator.Context, m *simulator.Method) (mo.Reference, types.BaseMethodFault) {
	if m.Name != "CloneVM_Task" {
		return nil, nil
	}
	s.mu.Lock()
	if !s.ready {
		s.mu.Unlock()
		return nil, nil
	}
	s.clones++
	fail := s.failAfter >= 0 && s.clones > s.failAfter
	reason := s.failMsg
	s.mu.Unlock()
	if !fail || ctx.Session == nil {
		return nil, nil
	}
	vm, ok := ctx.Map.Get(m.This).(*simulator.VirtualMachine)
	if !ok {
		return nil, nil
	}
	var self types.ManagedObjectReference
	ctx.WithLock(vm, func() { self = vm.Self })
	ctx.Session.Put(&failingClone{VirtualMachine: vm, Self: self, reason: reason})
	return nil, nil
}

// failingClone is a VirtualMachine whose CloneVMTask makes the clone and
// then fails.
//
// Registering an object writes its Self field and its entity's statuses;
// the wrapper has its own of both, so that registering it leaves the VM,
// which other requests and the guest loop read, untouched.
type failingClone struct {
	Self   types.ManagedObjectReference
	entity mo.ManagedEntity
	*simulator.VirtualMachine
	reason string
}

// Reference returns the VM's reference, which the wrapper stands for.
func (vm *failingClone) Reference() types.ManagedObjectReference { return vm.Self }

// Entity returns the wrapper's own entity fields.
func (vm *failingClone) Entity() *mo.ManagedEntity { return &vm.entity }

// CloneVMTask runs the simulator's clone to its end, then fails the task.
func (vm *failingClone) CloneVMTask(ctx *simulator.Context, req *types.CloneVM_Task) soap.HasFault {
	ctx.Session.Remove(ctx, vm.Self)
	task := simulator.CreateTask(vm.VirtualMachine, "cloneVm", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		body, ok := vm.VirtualMachine.CloneVMTask(ctx, req).(*methods.CloneVM_TaskBody)
		if !ok || body.Res == nil {
			return nil, &types.SystemError{Reason: vm.reason}
		}
		if inner, ok := ctx.Map.Get(body.Res.Returnval).(*simulator.Task); ok {
			inner.Wait()
		}
		return nil, &types.SystemError{RuntimeFault: types.RuntimeFault{MethodFault: types.MethodFault{
			FaultMessage: []types.LocalizableMessage{{Key: "vcsim.clone.failed", Message: vm.reason}},
		}}, Reason: vm.reason}
	})
	return &methods.CloneVM_TaskBody{Res: &types.CloneVM_TaskResponse{Returnval: task.Run(ctx)}}
}
