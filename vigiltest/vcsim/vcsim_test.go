package vcsim

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25/types"
)

func TestCloneIPsAndFaults(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(s.User, s.Password)
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Logout(ctx) //nolint:errcheck // the simulator goes with the test
	f := find.NewFinder(c.Client)
	tmpl, err := f.VirtualMachine(ctx, TemplatePath)
	if err != nil {
		t.Fatal(err)
	}
	folder, err := f.Folder(ctx, Folder)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := f.ResourcePool(ctx, ResourcePool)
	if err != nil {
		t.Fatal(err)
	}
	ref := pool.Reference()
	spec := types.VirtualMachineCloneSpec{Location: types.VirtualMachineRelocateSpec{Pool: &ref}, PowerOn: true}
	clone := func(name string) error {
		task, err := tmpl.Clone(ctx, folder, name, spec)
		if err != nil {
			return err
		}
		return task.Wait(ctx)
	}

	s.AssignIPs("app-", 0)
	if err := clone("app-1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for vms := s.VMs("app-"); len(vms) != 1 || vms[0].IP != "10.20.0.10" || vms[0].PowerState != "poweredOn"; vms = s.VMs("app-") {
		if time.Now().After(deadline) {
			t.Fatalf("no guest IP: %+v", vms)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := clone("other-1"); err != nil {
		t.Fatal(err)
	}
	s.AssignIPsFrom("lb-", 0, "127.0.0.2")
	if err := clone("lb-1"); err != nil {
		t.Fatal(err)
	}
	for vms := s.VMs("lb-"); len(vms) != 1 || vms[0].IP != "127.0.0.2"; vms = s.VMs("lb-") {
		if time.Now().After(deadline) {
			t.Fatalf("no guest IP from AssignIPsFrom: %+v", vms)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if vms := s.VMs("other-"); len(vms) != 1 || vms[0].IP != "" {
		t.Fatalf("a VM outside the prefixes got an IP: %+v", vms)
	}

	s.FailClones(1, "disk full")
	if err := clone("app-2"); err != nil {
		t.Fatalf("the first clone after FailClones(1) failed: %v", err)
	}
	var terr task.Error
	if err := clone("app-3"); !errors.As(err, &terr) {
		t.Fatalf("the second clone: %v", err)
	} else if f, ok := terr.Fault().(*types.SystemError); !ok || f.Reason != "disk full" {
		t.Fatalf("the second clone's fault: %#v", terr.Fault())
	}
	vms := s.VMs("app-3")
	if len(vms) != 1 || vms[0].PowerState != "poweredOn" {
		t.Fatalf("the failed clone left no VM: %+v", vms)
	}
	if n := s.Clones(); n != 2 {
		t.Fatalf("%d clones since FailClones, want 2", n)
	}
	s.FailClones(-1, "")
	if err := clone("app-4"); err != nil {
		t.Fatalf("after FailClones(-1): %v", err)
	}
}
